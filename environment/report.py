"""The report of a run database: series derived from its tables, rich tables, PNG plots.

Everything is read from the database, so a report can be made of a run made elsewhere or
still running. The series are computed on whole frames:

- trust over time, by the trustee's user type: the trust table stores changes only, so the
  value of a (truster, trustee) pair at step t is its latest change up to t; the mean at t is
  a running sum of per-step changes over a running count of known pairs. The trust agent
  leaves sweep changes under 0.01 out of the table, so these means can drift from the
  ``mean_trust`` metric (the agent's own state) by about that much;
- reputation over time, by user type: the mean of the reputation rows of each step;
- the cold-start curve: every listed item, by the number of target-domain ratings its user
  had when the list was made (``available_step <= step``), with the error of the prediction
  against the rating given and the share felt as serendipitous;
- the trust network at a step: the latest value of every pair up to that step.

User types: ``adversarial`` (the user table's kind), else ``cold-start`` (arrived with few
target ratings), else ``honest``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from environment import plots
from environment.compare import metric_names
from storage.repository import Repository
from storage.tables import (
    DomainRecord,
    FeedbackRecord,
    MetricRecord,
    RatingRecord,
    RecommendationRecord,
    ReputationRecord,
    TrustRecord,
    UserRecord,
)

USER_TYPES: tuple[str, ...] = ("honest", "cold-start", "adversarial")
RATING_BINS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 10, 20, 50)


class ReportError(Exception):
    """A database that cannot be reported on; the message is one readable line."""


@dataclass
class ReportData:
    """The frames of a run database a report needs (every frame has ``run_id``)."""

    db: str
    runs: pd.DataFrame  # run_id, label, variant, seed, status, last_step, n_steps, error
    metrics: pd.DataFrame  # run_id, step, name, group, value
    users: pd.DataFrame  # run_id, user_id, kind, cold_start, arrival_step, user_type
    trust: pd.DataFrame  # run_id, id, step, truster, trustee, value
    reputation: pd.DataFrame  # run_id, step, user_id, value
    lists: pd.DataFrame  # run_id, step, user_id, item_id, prediction, consumed, rating, ...


@dataclass
class Report:
    """What ``report`` shows and writes."""

    tables: list[Table]
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def _read(repo: Repository, table: Any, columns: Sequence[str], order: str = "id") -> pd.DataFrame:
    c = table.__table__.c
    statement = select(*(c[name] for name in columns)).order_by(c[order])
    with repo.engine.connect() as conn:
        rows = conn.execute(statement).all()
    return pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(columns))


def user_types(users: pd.DataFrame) -> pd.Series:
    """Each user's type: adversarial, else cold-start, else honest."""
    kinds = np.where(
        users["kind"].to_numpy() == "adversarial",
        "adversarial",
        np.where(users["cold_start"].to_numpy(bool), "cold-start", "honest"),
    )
    return pd.Series(kinds, index=users.index, name="user_type")


def target_ratings_at(ratings: pd.DataFrame, queries: pd.DataFrame) -> np.ndarray:
    """How many target ratings each (run, user) had visible at a step.

    Args:
        ratings: Target-domain ratings: ``run_id``, ``user_id``, ``available_step``.
        queries: ``run_id``, ``user_id``, ``step``.

    Returns:
        ``(Q,)`` int counts of ratings with ``available_step <= step``.
    """
    if queries.empty:
        return np.zeros(0, dtype=np.int64)
    # One sorted key (run, user, step) for all ratings; two binary searches per query.
    avail = np.clip(ratings["available_step"].to_numpy(np.int64), 0, None)
    steps = queries["step"].to_numpy(np.int64)
    span = int(max(avail.max(initial=0), steps.max())) + 2
    users = ratings["user_id"].to_numpy(np.int64)
    n_users = int(max(users.max(initial=0), queries["user_id"].max())) + 1

    def owner(frame: pd.DataFrame) -> np.ndarray:
        run = frame["run_id"].to_numpy(np.int64)
        return (run * n_users + frame["user_id"].to_numpy(np.int64)) * span

    keys = np.sort(owner(ratings) + avail)
    base = owner(queries)
    return np.searchsorted(keys, base + steps, side="right") - np.searchsorted(keys, base)


def load_report_data(database: str | Path) -> ReportData:
    """Read the frames of a run database.

    Raises:
        ReportError: No such database, not a SerenSim database, or no runs in it.
    """
    try:
        repo = Repository(str(database), create=False)
    except (FileNotFoundError, ValueError) as err:
        raise ReportError(str(err)) from None
    try:
        runs = pd.DataFrame(
            [
                (r.id, r.variant, r.seed, r.status, r.last_step, r.n_steps, r.error or "")
                for r in repo.runs()
            ],
            columns=["run_id", "variant", "seed", "status", "last_step", "n_steps", "error"],
        )
        if runs.empty:
            raise ReportError(f"{database}: no runs in this database")
        metrics = _read(repo, MetricRecord, ["run_id", "step", "name", "group", "value"])
        users = _read(repo, UserRecord, ["run_id", "user_id", "kind", "cold_start", "arrival_step"])
        trust = _read(repo, TrustRecord, ["run_id", "id", "step", "truster", "trustee", "value"])
        reputation = _read(repo, ReputationRecord, ["run_id", "step", "user_id", "value"])
        domains = _read(repo, DomainRecord, ["run_id", "domain_id", "is_target"])
        ratings = _read(repo, RatingRecord, ["run_id", "user_id", "domain_id", "available_step"])
        recs = _read(
            repo, RecommendationRecord, ["run_id", "step", "user_id", "item_id", "prediction"]
        )
        feedback = _read(
            repo,
            FeedbackRecord,
            ["run_id", "step", "user_id", "item_id", "consumed", "rating", "serendipitous"],
        )
    finally:
        repo.close()
    counts = runs["variant"].map(runs["variant"].value_counts())
    runs["label"] = np.where(
        counts > 1, runs["variant"] + " (run " + runs["run_id"].astype(str) + ")", runs["variant"]
    )
    users["user_type"] = user_types(users)
    metrics = metrics.astype({"value": "float64"})
    target = domains.loc[domains["is_target"].astype(bool), ["run_id", "domain_id"]]
    target_ratings = ratings.merge(target, on=["run_id", "domain_id"])
    lists = recs.merge(feedback, on=["run_id", "step", "user_id", "item_id"], how="left")
    lists["target_ratings"] = target_ratings_at(target_ratings, lists)
    return ReportData(str(database), runs, metrics, users, trust, reputation, lists)


def _with_type(frame: pd.DataFrame, users: pd.DataFrame, column: str) -> pd.DataFrame:
    types = users[["run_id", "user_id", "user_type"]].rename(columns={"user_id": column})
    return frame.merge(types, on=["run_id", column], how="left")


def trust_over_time(trust: pd.DataFrame, users: pd.DataFrame, last_step: int) -> pd.DataFrame:
    """Mean trust users place in each user type, per run and step (the trustee's type).

    Rebuilt from the trust table's changes (see the module docstring for its precision).

    Returns:
        ``run_id, step, user_type, mean_trust, pairs`` for steps 0..``last_step`` where the
        type has at least one known pair.
    """
    cols = ["run_id", "step", "user_type", "mean_trust", "pairs"]
    if trust.empty:
        return pd.DataFrame(columns=cols)
    pair = ["run_id", "truster", "trustee"]
    t = trust.sort_values([*pair, "step", "id"]).drop_duplicates([*pair, "step"], keep="last")
    previous = t.groupby(pair, sort=False)["value"].shift()
    t = t.assign(delta=t["value"] - previous.fillna(0.0), new=previous.isna().astype(np.int64))
    t = _with_type(t, users, "trustee")
    per_step = t.groupby(["run_id", "user_type", "step"])[["delta", "new"]].sum()
    steps = pd.RangeIndex(0, last_step + 1, name="step")
    total = per_step["delta"].unstack("step").reindex(columns=steps, fill_value=0.0)
    count = per_step["new"].unstack("step").reindex(columns=steps, fill_value=0)
    total, count = total.fillna(0.0).cumsum(axis=1), count.fillna(0).cumsum(axis=1)
    mean = (total / count.where(count > 0)).stack().rename("mean_trust")
    out = pd.concat([mean, count.stack().rename("pairs")], axis=1).dropna().reset_index()
    return out[cols].sort_values(["run_id", "user_type", "step"], ignore_index=True)


def reputation_over_time(reputation: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Mean reputation of the present users of each type, per run and step.

    Returns:
        ``run_id, step, user_type, mean_reputation, users``.
    """
    r = _with_type(reputation, users, "user_id")
    g = r.groupby(["run_id", "user_type", "step"])["value"].agg(["mean", "size"])
    out = g.rename(columns={"mean": "mean_reputation", "size": "users"}).reset_index()
    return out[["run_id", "step", "user_type", "mean_reputation", "users"]]


def rating_bin_labels(edges: Sequence[int] = RATING_BINS) -> list[str]:
    """Labels of the target-rating bins: ``0``, ``1``, ..., ``5-9``, ..., ``50+``."""
    pairs = itertools.pairwise(edges)
    labels = [str(a) if b - a == 1 else f"{a}-{b - 1}" for a, b in pairs]
    return [*labels, f"{edges[-1]}+"]


def cold_start_curve(lists: pd.DataFrame, edges: Sequence[int] = RATING_BINS) -> pd.DataFrame:
    """Error and serendipity hit rate of listed items by the user's target ratings.

    Args:
        lists: One row per listed item: ``run_id, step, user_id, target_ratings,
            prediction, consumed, rating, serendipitous``.
        edges: Left edges of the bins of the number of target ratings (the last is open).

    Returns:
        ``run_id, bin, bin_label, lists, items, rated, mae, hit_rate`` per non-empty bin:
        ``mae`` is the mean |prediction - rating| over consumed items with both, ``hit_rate``
        the share of listed items felt as serendipitous.
    """
    labels = rating_bin_labels(edges)
    b = np.searchsorted(np.asarray(edges), lists["target_ratings"].to_numpy(), side="right") - 1
    pred = lists["prediction"].to_numpy(float)
    rating = lists["rating"].to_numpy(float)
    rated = lists["consumed"].fillna(False).to_numpy(bool) & np.isfinite(pred) & np.isfinite(rating)
    frame = pd.DataFrame(
        {
            "run_id": lists["run_id"].to_numpy(),
            "bin": b,
            # one number per list: (step, user)
            "list": lists["step"].to_numpy(np.int64) * (int(lists["user_id"].max()) + 1)
            + lists["user_id"].to_numpy(np.int64),
            "error": np.where(rated, np.abs(pred - rating), np.nan),
            "rated": rated,
            "hit": lists["serendipitous"].fillna(False).to_numpy(float),
        }
    )
    g = frame.groupby(["run_id", "bin"]).agg(
        lists=("list", "nunique"),
        items=("hit", "size"),
        rated=("rated", "sum"),
        mae=("error", "mean"),
        hit_rate=("hit", "mean"),
    )
    out = g.reset_index()
    out.insert(2, "bin_label", [labels[i] for i in out["bin"]])
    return out


def trust_snapshot(trust: pd.DataFrame, run_id: int, step: int) -> pd.DataFrame:
    """Every (truster, trustee) pair's latest trust value up to ``step`` in one run."""
    t = trust[(trust["run_id"] == run_id) & (trust["step"] <= step)]
    t = t.sort_values(["step", "id"]).drop_duplicates(["truster", "trustee"], keep="last")
    return t[["truster", "trustee", "value"]].reset_index(drop=True)


def _fmt(v: float, digits: int = 4) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def runs_table(data: ReportData) -> Table:
    """The runs of the database."""
    t = Table(title=escape(f"Runs in {data.db}"), header_style="bold")
    for col in ("run", "variant", "seed", "status", "steps", "error"):
        t.add_column(col, justify="right" if col in ("run", "seed", "steps") else "left")
    for r in data.runs.itertuples():
        t.add_row(
            str(r.run_id),
            escape(r.variant),
            str(r.seed),
            r.status,
            f"{r.last_step + 1}/{r.n_steps}",
            escape(r.error.splitlines()[0]) if r.error else "",
        )
    return t


def whole_run_table(data: ReportData, groups: Sequence[str] = ("all", "cold", "warm")) -> Table:
    """Whole-run metrics (step -1): a row per metric, a column per run and user group."""
    m = data.metrics[data.metrics["step"] == -1].set_index(["run_id", "name", "group"])["value"]
    t = Table(title="Whole-run metrics (cold = cold-start users)", header_style="bold")
    t.add_column("metric")
    for r in data.runs.itertuples():
        for g in groups:
            t.add_column(f"{escape(r.label)}\n{g}", justify="right")
    for name in ("requests", *metric_names(data.metrics["name"].unique())):
        digits = 0 if name == "requests" else 4
        cells = [
            _fmt(m.get((r.run_id, name, g), math.nan), digits)
            for r in data.runs.itertuples()
            for g in groups
        ]
        t.add_row(name, *cells)
    return t


def user_type_table(trust: pd.DataFrame, reputation: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """Trust received and reputation by user type at each run's last step."""
    t = Table(
        title="By user type at the last step",
        header_style="bold",
        caption="trust rebuilt from the trust table (sweep changes under 0.01 are not logged)",
    )
    t.add_column("run")
    t.add_column("user type")
    for col in ("users", "mean reputation", "trust pairs", "mean trust received"):
        t.add_column(col, justify="right")
    for r in runs.itertuples():
        rep = reputation[(reputation["run_id"] == r.run_id) & (reputation["step"] == r.last_step)]
        tr = trust[(trust["run_id"] == r.run_id) & (trust["step"] == r.last_step)]
        for ut in USER_TYPES:
            a, b = rep[rep["user_type"] == ut], tr[tr["user_type"] == ut]
            if a.empty and b.empty:
                continue
            t.add_row(
                escape(r.label),
                ut,
                str(int(a["users"].sum())) if len(a) else "-",
                _fmt(float(a["mean_reputation"].iloc[0])) if len(a) else "-",
                str(int(b["pairs"].iloc[0])) if len(b) else "-",
                _fmt(float(b["mean_trust"].iloc[0])) if len(b) else "-",
            )
    return t


def cold_start_table(curve: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """The cold-start curve as numbers: lists, MAE and hit rate per bin and run."""
    t = Table(
        title="Cold-start curve: by target ratings when the list was made", header_style="bold"
    )
    t.add_column("target ratings")
    labels = dict(zip(runs["run_id"], runs["label"], strict=True))
    run_ids = list(dict.fromkeys(curve["run_id"]))
    for rid in run_ids:
        for col in ("lists", "MAE", "hit rate"):
            t.add_column(f"{escape(labels[rid])}\n{col}", justify="right")
    c = curve.set_index(["bin", "run_id"])
    for b in sorted(curve["bin"].unique()):
        label = curve.loc[curve["bin"] == b, "bin_label"].iloc[0]
        cells = []
        for rid in run_ids:
            if (b, rid) in c.index:
                row = c.loc[(b, rid)]
                cells += [str(int(row["lists"])), _fmt(row["mae"]), _fmt(row["hit_rate"])]
            else:
                cells += ["-", "-", "-"]
        t.add_row(label, *cells)
    return t


def default_report_folder(database: str | Path) -> Path:
    """``runs/x.db`` -> ``runs/x_report``; a URL's report goes to ``report`` here."""
    text = str(database)
    if "://" in text and not text.startswith("sqlite:///"):
        return Path("report")
    path = Path(text.removeprefix("sqlite:///"))
    return path.with_name(f"{path.stem}_report")


def parse_steps(text: str) -> list[int]:
    """``0,10`` -> ``[0, 10]``; raises ValueError on anything but non-negative integers."""
    steps = [int(part) for part in text.split(",") if part.strip()]
    if not steps or any(s < 0 for s in steps):
        raise ValueError(f"--steps {text!r}: expected non-negative step numbers like 0,10")
    return sorted(set(steps))


def build_report(
    database: str | Path,
    out: Path,
    *,
    snapshot_steps: Sequence[int] | None = None,
    rng: np.random.Generator | None = None,
) -> Report:
    """Read a run database, write its PNG plots under ``out`` and build its tables.

    Args:
        database: The run database (path or URL).
        out: The folder for the PNGs (created).
        snapshot_steps: Steps of the trust-network snapshots (default: first and last).
        rng: Draws the initial network layout (default: seeded with 0, same picture each time).

    Returns:
        The tables, the files written, and notes (steps past a run's end, unfinished runs).

    Raises:
        ReportError: The database cannot be read.
    """
    data = load_report_data(database)
    rng = rng if rng is not None else np.random.default_rng(0)
    last = int(data.runs["last_step"].max())
    trust = trust_over_time(data.trust, data.users, max(last, 0))
    run_end = trust["run_id"].map(
        dict(zip(data.runs["run_id"], data.runs["last_step"], strict=True))
    )
    trust = trust[trust["step"] <= run_end]  # a run that stopped early has no later steps
    reputation = reputation_over_time(data.reputation, data.users)
    curve = cold_start_curve(data.lists)
    notes = [
        f"run {r.run_id} ({r.variant}) is {r.status} at step {r.last_step}: {r.error}".rstrip(": ")
        for r in data.runs.itertuples()
        if r.status != "completed"
    ]
    wanted = list(snapshot_steps) if snapshot_steps else sorted({0, max(last, 0)})
    steps = [s for s in wanted if s <= last]
    notes += [
        f"no trust snapshot at step {s}: the runs end at step {last}" for s in wanted if s > last
    ]
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "metrics_per_step.png": plots.metrics_per_step(data.metrics, data.runs),
        "trust_reputation_by_user_type.png": plots.trust_reputation_by_type(
            trust, reputation, data.runs
        ),
        "cold_start_curve.png": plots.cold_start_curve(curve, data.runs),
        "accuracy_serendipity_tradeoff.png": plots.tradeoff(data.metrics, data.runs),
    }
    if steps:
        for r in data.runs.itertuples():
            snaps = {s: trust_snapshot(data.trust, r.run_id, s) for s in steps}
            name = f"trust_network_{plots.safe_name(r.label)}_steps_{'-'.join(map(str, steps))}.png"
            users = data.users[data.users["run_id"] == r.run_id]
            rep = data.reputation[data.reputation["run_id"] == r.run_id]
            figures[name] = plots.trust_network(snaps, users, rep, r.label, rng)
    files = [plots.save(fig, out / name) for name, fig in figures.items()]
    tables = [
        runs_table(data),
        whole_run_table(data),
        user_type_table(trust, reputation, data.runs),
        cold_start_table(curve, data.runs),
    ]
    return Report(tables, files, notes)
