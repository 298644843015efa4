"""Online metrics of a run (FORMULAS.md section 11 plus the online ones), per step and per run.

Each metric is computed for all users and for the cold-start and warm groups alone
(``group`` = all | cold | warm; reputation also for attackers). The per-step values come from
what the step produced; the whole-run values (step = -1) are recomputed from the database,
pooling every event of the run, so they are right after a resume as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlmodel import select

from environment.trust_eval import trust_auc
from models import metrics as m
from storage.repository import Repository
from storage.tables import FeedbackRecord, MetricRecord, RecommendationRecord

if TYPE_CHECKING:
    from environment.world import World
    from environment.world_data import WorldData

MetricKey = tuple[str, str]
# The whole-run metrics every summary, report and comparison table shows, in this order.
SUMMARY_METRICS: tuple[str, ...] = (
    "mae",
    "rmse",
    "precision",
    "recall",
    "f1",
    "unexpectedness",
    "serendipity",
    "hit_rate",
    "acceptance",
    "coverage",
    "mean_trust",
    "mean_reputation",
)
GROUPS = ("all", "cold", "warm")

# name -> (what it is), for tables and the README
DESCRIPTIONS = {
    "requests": "lists asked for",
    "mae": "mean absolute error of predictions against the ratings users gave",
    "rmse": "root mean squared error of the same",
    "precision": "P@N: share of the list the user truly likes (utility >= like threshold)",
    "recall": "R@N: share of the user's unseen liked target items that the list holds",
    "f1": "F@N from the averaged P@N and R@N",
    "unexpectedness": "unexpectedness@N: mean co-occurrence unexpectedness of the list (FORMULAS 9)",
    "serendipity": "serendipity@N: share of the list that is truly unexpected and valuable",
    "hit_rate": "serendipity hit rate: share of recommended items felt as serendipitous",
    "acceptance": "share of recommended items consumed",
    "coverage": "share of the target catalogue recommended so far",
    "mean_trust": "mean trust over the known (truster, trustee) pairs",
    "mean_reputation": "mean reputation of the present users",
    "trust_auc": "AUC of learned trust for real trust edges against random pairs (Ciao)",
    "pushed_share": "share of recommended items that are attackers' pushed items",
}

# Whole-run rows that repeat the final step's value (state, not events).
FINAL_STEP_METRICS = ("coverage", "mean_trust", "mean_reputation", "trust_auc")
# Negative pairs drawn per step for trust_auc.
AUC_NEGATIVES = 20_000


def _frames(world: World) -> pd.DataFrame:
    fb = pd.DataFrame(world.step_log.feedback)
    recs = pd.DataFrame(world.step_log.recommendations)
    if fb.empty:
        return fb
    return fb.merge(
        recs[["user_id", "item_id", "prediction", "unexpectedness"]],
        on=["user_id", "item_id"],
        how="left",
    )


def _group_mask(users: np.ndarray, cold: np.ndarray, group: str) -> np.ndarray:
    if group == "all":
        return np.ones(len(users), dtype=bool)
    return cold[users] if group == "cold" else ~cold[users]


def list_metrics(
    df: pd.DataFrame, n: int, relevant_counts: dict[int, int] | None
) -> dict[str, float]:
    """Metrics of a set of lists (one row per listed item)."""
    out: dict[str, float] = {}
    consumed = df["consumed"].to_numpy(bool)
    pred = df["prediction"].to_numpy(float)
    rating = df["rating"].to_numpy(float)
    ok = consumed & np.isfinite(pred) & np.isfinite(rating)
    out["mae"] = m.mae(pred[ok], rating[ok])
    out["rmse"] = m.rmse(pred[ok], rating[ok])
    out["hit_rate"] = m.hit_rate(df["serendipitous"].to_numpy(bool))
    out["acceptance"] = m.hit_rate(consumed)
    per_list = df.groupby(["step", "user_id"], sort=True) if "step" in df else df.groupby("user_id")
    out["unexpectedness"] = float(per_list["unexpectedness"].mean().mean())
    out["serendipity"] = float((per_list["truly_serendipitous"].sum() / n).mean())
    if relevant_counts is not None:
        hits = per_list["liked_truth"].sum()
        users = hits.index.get_level_values(-1)
        rel = np.asarray([relevant_counts.get(int(u), 0) for u in users], dtype=float)
        keep = rel > 0
        p = float((hits.to_numpy()[keep] / n).mean()) if keep.any() else float("nan")
        r = float((hits.to_numpy()[keep] / rel[keep]).mean()) if keep.any() else float("nan")
        out["precision"], out["recall"] = p, r
        out["f1"] = 2 * p * r / (p + r) if (p + r) > 0 else 0.0
    return out


def step_metrics(world: World) -> dict[MetricKey, float | None]:
    data = world.data
    df = _frames(world)
    values: dict[MetricKey, float | None] = {}
    cold = data.cold_start
    rec_items = np.asarray([r["item_id"] for r in world.step_log.recommendations], dtype=np.int64)
    world_cover = world.covered
    rec_users = np.asarray([r["user_id"] for r in world.step_log.recommendations], dtype=np.int64)
    n_target = len(data.domain_items(data.target_domain))
    relevant = _relevant_counts(world, df)
    for group in GROUPS:
        users_mask = _group_mask(rec_users, cold, group)
        world_cover[group][rec_items[users_mask]] = True
        values[("coverage", group)] = float(world_cover[group].sum() / max(n_target, 1))
        if data.pushed_items.size:
            values[("pushed_share", group)] = pushed_share(rec_items[users_mask], data.pushed_items)
        if df.empty:
            values[("requests", group)] = 0.0
            continue
        sub = df[_group_mask(df["user_id"].to_numpy(), cold, group)]
        values[("requests", group)] = float(sub["user_id"].nunique())
        if sub.empty:
            continue
        for name, v in list_metrics(sub, world.list_length, relevant).items():
            values[(name, group)] = v
    _trust_metrics(world, values)
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in values.items()}


def _relevant_counts(world: World, df: pd.DataFrame) -> dict[int, int]:
    """|REL_u|: unseen target items the user truly likes, for the users who got a list."""
    if df.empty:
        return {}
    data = world.data
    df["liked_truth"] = df["true_utility"].to_numpy(float) >= data.like_threshold
    users = np.unique(df["user_id"].to_numpy(np.int64))
    target = data.domain_items(data.target_domain)
    likes = data.truth.utility(users, target) >= data.like_threshold  # (B, It)
    pos = np.full(data.n_items, -1, dtype=np.int64)
    pos[target] = np.arange(len(target))
    consumed_now = df[df["consumed"]].groupby("user_id")["item_id"].apply(set).to_dict()
    out = {}
    for b, u in enumerate(users.tolist()):
        seen = [
            i for i in world.users[u].consumed if pos[i] >= 0 and i not in consumed_now.get(u, ())
        ]
        row = likes[b].copy()
        row[pos[np.asarray(seen, dtype=np.int64)]] = False
        out[u] = int(row.sum())
    return out


def pushed_share(items: np.ndarray, pushed: np.ndarray) -> float | None:
    """Share of recommended ``items`` that are pushed items; None without recommendations."""
    items = np.asarray(items, dtype=np.int64)
    return float(np.isin(items, pushed).mean()) if items.size else None


def _trust_metrics(world: World, values: dict[MetricKey, float | None]) -> None:
    x, y, tau = world.trust.state_.pairs()
    rep = world.trust.state_.reputation
    data = world.data
    present = world.present
    for group in GROUPS:
        tmask = _group_mask(x, data.cold_start, group)
        values[("mean_trust", group)] = float(tau[tmask].mean()) if tmask.any() else None
        umask = (
            present
            & _group_mask(np.arange(data.n_users), data.cold_start, group)
            & (data.user_kind == 0)
        )
        values[("mean_reputation", group)] = float(rep[umask].mean()) if umask.any() else None
    if (data.user_kind == 1).any():
        values[("mean_reputation", "adversarial")] = float(rep[data.user_kind == 1].mean())
    if data.trust_edges is not None:
        # The same generator every step: while the present users stay the same, so do the
        # negative pairs, and the curve moves only with the learned trust.
        rng = np.random.default_rng(world.run_cfg.seed)
        values[("trust_auc", "all")] = trust_auc(
            x, y, tau, data.trust_edges, data.n_users, rng, AUC_NEGATIVES, present
        )


def run_metrics(
    repo: Repository, run_id: int, data: WorldData, list_length: int
) -> list[dict[str, Any]]:
    """Whole-run metrics (step = -1), pooled from the run's rows in the database."""
    with repo.session() as s:
        fb = pd.DataFrame(
            [
                r.model_dump()
                for r in s.exec(select(FeedbackRecord).where(FeedbackRecord.run_id == run_id))
            ]
        )
        recs = pd.DataFrame(
            [
                {
                    "step": r.step,
                    "user_id": r.user_id,
                    "item_id": r.item_id,
                    "prediction": r.prediction,
                    "unexpectedness": r.unexpectedness,
                }
                for r in s.exec(
                    select(RecommendationRecord).where(RecommendationRecord.run_id == run_id)
                )
            ]
        )
        per_step = pd.DataFrame(
            [
                r.model_dump()
                for r in s.exec(
                    select(MetricRecord).where(
                        MetricRecord.run_id == run_id, MetricRecord.step >= 0
                    )
                )
            ]
        )
    rows: list[dict[str, Any]] = []
    if fb.empty or per_step.empty:
        return rows
    df = fb.merge(recs, on=["step", "user_id", "item_id"], how="left")
    last = per_step["step"].max()
    for group in GROUPS:
        sub = df[_group_mask(df["user_id"].to_numpy(), data.cold_start, group)]
        vals: dict[str, float] = {}
        if not sub.empty:
            vals.update(list_metrics(sub, list_length, None))
        g = per_step[per_step["group"] == group]
        req = g[g["name"] == "requests"].set_index("step")["value"]
        for name in ("precision", "recall"):
            series = g[g["name"] == name].set_index("step")["value"].dropna()
            w = req.reindex(series.index).fillna(0.0)
            vals[name] = float((series * w).sum() / w.sum()) if w.sum() > 0 else float("nan")
        p, r = vals["precision"], vals["recall"]
        vals["f1"] = 2 * p * r / (p + r) if np.isfinite(p + r) and (p + r) > 0 else float("nan")
        vals["requests"] = float(req.sum())
        final = g[g["step"] == last].set_index("name")["value"]
        for name in FINAL_STEP_METRICS:
            if name in final.index:
                vals[name] = final[name]
        if data.pushed_items.size and not recs.empty:
            listed = recs[_group_mask(recs["user_id"].to_numpy(), data.cold_start, group)]
            share = pushed_share(listed["item_id"].to_numpy(), data.pushed_items)
            if share is not None:
                vals["pushed_share"] = share
        for name, v in vals.items():
            value = None if v is None or not np.isfinite(v) else float(v)
            rows.append(
                {"run_id": run_id, "step": -1, "name": name, "group": group, "value": value}
            )
    adv = per_step[(per_step["group"] == "adversarial") & (per_step["step"] == last)]
    for _, r in adv.iterrows():
        rows.append(
            {
                "run_id": run_id,
                "step": -1,
                "name": r["name"],
                "group": "adversarial",
                "value": r["value"],
            }
        )
    return rows
