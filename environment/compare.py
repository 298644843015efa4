"""Comparing runs across seeds: mean and 95% confidence interval per variant, paired tests.

The unit of replication is a database: one scenario run, i.e. one world drawn from one seed,
on which every recommender variant ran. A variant's whole-run metric (step = -1 in the metric
table) across databases gives the mean and a t-distribution confidence interval; two variants
are compared on the databases where both completed (a paired design: same users, same
arrivals), with the paired t-test (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank
test (``scipy.stats.wilcoxon``, exact for small samples without ties).

``python main.py compare`` reads databases already made; ``sweep`` feeds its own runs through
the same functions, so both print the same table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table
from scipy import stats
from sqlalchemy import select

from environment.metrics import SUMMARY_METRICS
from storage.repository import Repository
from storage.tables import MetricRecord

CONFIDENCE = 0.95
TABLE_METRICS: tuple[str, ...] = SUMMARY_METRICS
RUN_COLUMNS: tuple[str, ...] = ("db", "run_id", "variant", "seed", "name", "group", "value")
TESTS_NOTE = (
    "paired over databases (same world, same seed): t = paired t-test (scipy ttest_rel), "
    "W = Wilcoxon signed-rank (scipy wilcoxon, exact for small n)"
)


GROUPS: tuple[str, ...] = ("all", "cold", "warm", "adversarial")


def metric_names(names: Sequence[str]) -> list[str]:
    """The metrics of a table: :data:`TABLE_METRICS` first, then any others present, sorted.

    ``requests`` (a count, the same for every variant) is left out.
    """
    extra = sorted(set(names) - set(TABLE_METRICS) - {"requests"})
    return [*TABLE_METRICS, *extra]


class CompareError(Exception):
    """A database that cannot be compared; the message is one readable line."""


def parse_groups(text: str) -> list[str]:
    """``all,cold`` -> ``["all", "cold"]``; raises ValueError on an unknown group."""
    groups = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if not groups or unknown:
        raise ValueError(
            f"--groups {text!r}: expected a comma-separated list of {', '.join(GROUPS)}"
        )
    return list(dict.fromkeys(groups))


def read_whole_run_metrics(database: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """The whole-run metrics (step = -1) of every completed run in one database.

    Args:
        database: A SQLite path or SQLAlchemy URL of a SerenSim database.

    Returns:
        A frame with :data:`RUN_COLUMNS` (``db`` is ``database`` as given; a missing metric
        value is NaN) and one note per run left out because it did not complete.

    Raises:
        CompareError: The database does not exist or is not a SerenSim database.
    """
    try:
        repo = Repository(str(database), create=False)
    except (FileNotFoundError, ValueError) as err:
        raise CompareError(str(err)) from None
    notes: list[str] = []
    try:
        runs = {r.id: r for r in repo.runs()}
        done = [i for i, r in runs.items() if r.status == "completed"]
        for r in runs.values():
            if r.status != "completed":
                notes.append(f"{database}: run {r.id} ({r.variant}) left out: {r.status}")
        columns = MetricRecord.__table__.c  # type: ignore[attr-defined]
        statement = (
            select(columns.run_id, columns.name, columns.group, columns.value)
            .where(columns.step == -1, columns.run_id.in_(done))
            .order_by(columns.id)
        )
        with repo.session() as session:
            rows = [tuple(row) for row in session.execute(statement).all()]
    finally:
        repo.close()
    frame = pd.DataFrame.from_records(rows, columns=["run_id", "name", "group", "value"])
    frame["variant"] = frame["run_id"].map({i: runs[i].variant for i in done})
    frame["seed"] = frame["run_id"].map({i: runs[i].seed for i in done})
    frame["db"] = str(database)
    frame = frame.astype({"value": "float64", "run_id": "int64", "seed": "int64"})
    return frame[list(RUN_COLUMNS)], notes


def read_databases(databases: Sequence[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """:func:`read_whole_run_metrics` over several databases, stacked in the order given."""
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    for database in databases:
        frame, more = read_whole_run_metrics(database)
        frames.append(frame)
        notes += more
    return pd.concat(frames, ignore_index=True), notes


def mean_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, int]:
    """Mean and half-width of the t-distribution confidence interval of the finite values.

    The half-width is ``t_{(1+c)/2, n-1} * s / sqrt(n)`` with the sample standard deviation
    ``s`` (ddof = 1); it is NaN for fewer than two values.

    Returns:
        ``(mean, half_width, n)``.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    t = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1))
    return float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(n), n


def summarise(frame: pd.DataFrame, by: Sequence[str] = ("variant",)) -> pd.DataFrame:
    """Mean and 95% CI of each metric and group across replicates, per ``by`` key.

    Args:
        frame: Rows with ``by`` columns and ``name``, ``group``, ``value``.
        by: The columns that define a series (``variant``; a sweep adds ``point``).

    Returns:
        One row per (``by``, name, group) with ``n``, ``mean``, ``sd``, ``half_width``,
        ``ci_low``, ``ci_high``, in the order the keys first appear.
    """
    keys = [*by, "name", "group"]
    rows = []
    for key, sub in frame.groupby(keys, sort=False, dropna=False):
        values = sub["value"].to_numpy(float)
        mean, half, n = mean_ci(values)
        finite = values[np.isfinite(values)]
        sd = float(finite.std(ddof=1)) if n > 1 else math.nan
        rows.append((*key, n, mean, sd, half, mean - half, mean + half))
    columns = [*keys, "n", "mean", "sd", "half_width", "ci_low", "ci_high"]
    return pd.DataFrame.from_records(rows, columns=columns)


def paired_p_values(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided p values of the paired t-test and the Wilcoxon signed-rank test of a vs b.

    Returns:
        ``(t_p, wilcoxon_p)``; both are 1 when every difference is 0 (no evidence of a
        difference), NaN with fewer than two pairs; the t-test's is NaN when the differences
        are all equal but not 0 (zero variance).
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2:
        return math.nan, math.nan
    if np.all(d == 0.0):
        return 1.0, 1.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        t_p = float(stats.ttest_rel(a, b).pvalue) if np.ptp(d) > 0 else math.nan
        w_p = float(stats.wilcoxon(a, b).pvalue)
    return t_p, w_p


def paired_tests(frame: pd.DataFrame, by: Sequence[str] = (), unit: str = "db") -> pd.DataFrame:
    """Paired tests between every two variants, per ``by`` key, metric and group.

    Args:
        frame: Rows with ``by`` columns, ``unit``, ``variant``, ``name``, ``group``, ``value``.
        by: Columns within which variants are compared (a sweep's ``point``; none for compare).
        unit: The column that pairs observations: runs on the same world (the database).

    Returns:
        One row per (``by``, name, group, a, b) with ``n_pairs``, ``mean_diff`` (a - b),
        ``t_p`` and ``wilcoxon_p``. Variants keep the order they first appear in.
    """
    keys = [*by, "name", "group"]
    rows = []
    for key, sub in frame.groupby(keys, sort=False, dropna=False):
        wide = sub.pivot_table(
            index=unit, columns="variant", values="value", aggfunc="last", sort=False
        )
        variants = list(dict.fromkeys(sub["variant"]))
        for a, b in combinations(variants, 2):
            pair = wide[[a, b]].dropna()
            x, y = pair[a].to_numpy(float), pair[b].to_numpy(float)
            t_p, w_p = paired_p_values(x, y)
            diff = float((x - y).mean()) if len(pair) else math.nan
            rows.append((*key, a, b, len(pair), diff, t_p, w_p))
    columns = [*keys, "a", "b", "n_pairs", "mean_diff", "t_p", "wilcoxon_p"]
    return pd.DataFrame.from_records(rows, columns=columns)


def _num(v: float, digits: int = 4) -> str:
    if not np.isfinite(v):
        return "-"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and text.strip("-0.") == "" else text  # no -0.0000


def _p(v: float) -> str:
    if not np.isfinite(v):
        return "-"
    return f"{v:.2g}" if v < 0.001 else f"{v:.3f}"


def format_mean_ci(mean: float, half: float, n: int, n_expected: int) -> str:
    """``mean ± half`` (``mean`` alone for one value), with ``(n=k)`` when values are missing."""
    text = _num(mean) if not np.isfinite(half) else f"{_num(mean)} ± {_num(half)}"
    return text if n == n_expected else f"{text} (n={int(n)})"


def comparison_table(
    frame: pd.DataFrame,
    *,
    title: str,
    metrics: Sequence[str] | None = None,
    groups: Sequence[str] = ("all",),
    unit: str = "db",
) -> Table:
    """The table of one comparison: a row per metric (and group), a column per variant.

    Args:
        frame: Rows of the runs to compare (``unit``, ``variant``, ``name``, ``group``,
            ``value``), e.g. one sweep point or the databases given to ``compare``.
        title: The table's title.
        metrics: The metrics to show, in this order (missing ones are skipped; default:
            :func:`metric_names` of the frame).
        groups: The user groups to show (all, cold, warm, adversarial).
        unit: The column that pairs runs across variants.

    Returns:
        A rich table: ``mean ± half-width`` of the 95% CI per variant, then per pair of
        variants the mean difference and the p values of both paired tests.
    """
    metrics = metric_names(frame["name"].unique()) if metrics is None else metrics
    frame = frame[frame["name"].isin(metrics) & frame["group"].isin(groups)]
    summary = summarise(frame, ("variant",)).set_index(["variant", "name", "group"])
    tests = paired_tests(frame, (), unit)
    variants = list(dict.fromkeys(frame["variant"]))
    runs = frame.groupby("variant", sort=False)[unit].nunique()
    table = Table(title=escape(title), header_style="bold")
    table.add_column("metric")
    for v in variants:
        table.add_column(f"{escape(v)}\n(n={runs[v]})", justify="right")
    pairs = list(combinations(variants, 2))
    for a, b in pairs:
        ab = f"{escape(a)}/{escape(b)}"
        table.add_column(f"{escape(a)} − {escape(b)}", justify="right")
        table.add_column(f"t p\n{ab}" if len(pairs) > 1 else "t p", justify="right")
        table.add_column(f"W p\n{ab}" if len(pairs) > 1 else "W p", justify="right")
    test_index = tests.set_index(["name", "group", "a", "b"]) if len(tests) else tests
    present = set(zip(frame["name"], frame["group"], strict=True))
    for name in metrics:
        for group in groups:
            if (name, group) not in present:
                continue
            label = name if len(groups) == 1 else f"{name} ({group})"
            cells = []
            for v in variants:
                key = (v, name, group)
                if key in summary.index:
                    s = summary.loc[key]
                    cells.append(format_mean_ci(s["mean"], s["half_width"], s["n"], runs[v]))
                else:
                    cells.append("-")
            for a, b in pairs:
                key2 = (name, group, a, b)
                if key2 in test_index.index:
                    t = test_index.loc[key2]
                    cells += [_num(t["mean_diff"]), _p(t["t_p"]), _p(t["wilcoxon_p"])]
                else:
                    cells += ["-", "-", "-"]
            table.add_row(label, *cells)
    table.caption = (
        f"mean ± half-width of the {CONFIDENCE:.0%} confidence interval (t distribution) "
        f"across seeds; {TESTS_NOTE}; p = 1 when every difference is 0"
    )
    n_pairs = int(tests["n_pairs"].max()) if len(tests) else 0
    if 0 < n_pairs <= 10:
        # the exact Wilcoxon test cannot go below 2 / 2^n: with few seeds say so
        table.caption += f"; with {n_pairs} pairs W cannot go below {2 / 2**n_pairs:.3g}"
    return table


def point_tables(
    frame: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    groups: Sequence[str] = ("all",),
) -> list[Table]:
    """One :func:`comparison_table` per sweep point (``point`` column) of a sweep's summary."""
    return [
        comparison_table(
            sub, title=f"{point}: {sub['seed'].nunique()} seed(s)", metrics=metrics, groups=groups
        )
        for point, sub in frame.groupby("point", sort=False)
    ]
