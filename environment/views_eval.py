"""Rich tables of the offline comparison (``environment/offline.py``): built here, printed
only by main.py. Recommenders sit side by side under each metric; the better value of each
pair is bold (lower for MAE and RMSE, higher for the rest)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.table import Table

from environment.offline import AccuracyResult

LOWER_IS_BETTER = {"mae", "rmse"}
TITLES = {
    "mae": "MAE",
    "rmse": "RMSE",
    "prediction_coverage": "predicted",
    "precision": "P",
    "recall": "R",
    "f1": "F",
    "unexpectedness_co": "unexp co",
    "unexpectedness_pm": "unexp pm",
}


def _cells(values: Sequence[float], metric: str) -> list[str]:
    finite = [v for v in values if np.isfinite(v)]
    best = None
    if len(finite) > 1:
        best = min(finite) if metric in LOWER_IS_BETTER else max(finite)
    out = []
    for v in values:
        text = "-" if not np.isfinite(v) else f"{v:.4f}"
        out.append(f"[bold]{text}[/]" if best is not None and v == best else text)
    return out


def _caption(result: AccuracyResult) -> str:
    s = result.split
    cut = f", test from t >= {s.cutoff:.0f}" if s.cutoff is not None else ""
    return (
        f"split {s.kind} (test share {s.test_share:g}{cut}), seed {s.seed}: "
        f"{s.n_test:,} test ratings ({s.n_cold_start_test:,} cold-start) of "
        f"{s.n_test_users:,} users; {result.seconds:.1f} s"
    )


def _table(result: AccuracyResult, title: str, first: list[str], metrics: list[str]) -> Table:
    t = Table(title=title, header_style="bold", caption=_caption(result))
    for name in first:
        t.add_column(name, justify="right" if name != "bucket" else "left")
    for metric in metrics:
        for rec in result.recommenders:
            t.add_column(f"{TITLES[metric]}\n{rec}", justify="right")
    return t


def _row(result: AccuracyResult, bucket: str, n: int | None, metrics: list[str]) -> list[str]:
    cells: list[str] = []
    for metric in metrics:
        values = [result.value(rec, bucket, metric, n) for rec in result.recommenders]
        cells += _cells(values, metric)
    return cells


def _counts(result: AccuracyResult, bucket: str) -> list[str]:
    rec = result.recommenders[0]
    users = result.value(rec, bucket, "users")
    ratings = result.value(rec, bucket, "test_ratings")
    return [f"{users:,.0f}", f"{ratings:,.0f}"]


def _list_lengths(result: AccuracyResult, metric: str) -> list[int]:
    f = result.frame
    return sorted(int(n) for n in f.loc[f["metric"] == metric, "n"].dropna().unique())


def accuracy_tables(result: AccuracyResult) -> list[Table]:
    """Three tables: MAE/RMSE by bucket, P/R/F@N, unexpectedness@N (buckets as sections)."""
    errors = ["mae", "rmse", "prediction_coverage"]
    t1 = _table(
        result,
        "Rating prediction by cold-start bucket (training target ratings)",
        ["bucket", "users", "test ratings"],
        errors,
    )
    for bucket in result.buckets:
        if bucket == "all":
            t1.add_section()
        t1.add_row(bucket, *_counts(result, bucket), *_row(result, bucket, None, errors))

    top = ["precision", "recall", "f1"]
    t2 = _table(result, "Precision, recall, F@N (relevant: test items rated >= threshold)",
                ["bucket", "N"], top)  # fmt: skip
    unexp = ["unexpectedness_co", "unexpectedness_pm"]
    t3 = _table(result, "Unexpectedness@N (co-occurrence; vs a popularity recommender)",
                ["bucket", "N"], unexp)  # fmt: skip
    for table, metrics in ((t2, top), (t3, unexp)):
        lengths = _list_lengths(result, metrics[0])
        for k, bucket in enumerate(["all", *[b for b in result.buckets if b != "all"]]):
            if k:
                table.add_section()
            for j, n in enumerate(lengths):
                table.add_row(bucket if j == 0 else "", str(n), *_row(result, bucket, n, metrics))
    return [t1, t2, t3]
