"""Comparing runs across seeds: means, t confidence intervals and paired tests, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import stats

from environment.compare import (
    TABLE_METRICS,
    CompareError,
    comparison_table,
    mean_ci,
    metric_names,
    paired_p_values,
    paired_tests,
    parse_groups,
    point_tables,
    read_databases,
    read_whole_run_metrics,
    summarise,
)
from storage.repository import Repository
from storage.tables import MetricRecord

T_975_DF2 = 4.302652729911275  # t_{0.975} with 2 degrees of freedom, from a t table

# Three databases (seeds); variant a: 0.8, 0.9, 1.0; variant b: 0.7, 0.75, 0.95.
A = {"s1": 0.8, "s2": 0.9, "s3": 1.0}
B = {"s1": 0.7, "s2": 0.75, "s3": 0.95}


def synthetic_frame() -> pd.DataFrame:
    rows = [("a", db, "mae", "all", v) for db, v in A.items()]
    # b listed in another order: pairing must follow the database, not the row order
    rows += [("b", db, "mae", "all", B[db]) for db in ("s3", "s1", "s2")]
    rows += [("a", "s1", "mae", "cold", 1.0), ("a", "s2", "mae", "cold", 1.2)]
    rows += [("b", "s1", "mae", "cold", 1.1), ("b", "s2", "mae", "cold", 1.1)]
    return pd.DataFrame(rows, columns=["variant", "db", "name", "group", "value"])


def render(table: object) -> str:
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()


def test_mean_ci_matches_the_t_interval_by_hand() -> None:
    mean, half, n = mean_ci(np.array([0.8, 0.9, 1.0]))
    assert n == 3
    assert mean == pytest.approx(0.9)
    assert half == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3), rel=1e-9)


def test_mean_ci_edge_cases() -> None:
    assert mean_ci(np.array([np.nan, 2.0])) == (2.0, pytest.approx(math.nan, nan_ok=True), 1)
    mean, half, n = mean_ci(np.array([]))
    assert n == 0 and math.isnan(mean) and math.isnan(half)
    _, half_const, _ = mean_ci(np.array([3.0, 3.0, 3.0]))
    assert half_const == 0.0


def test_summarise_gives_mean_sd_and_ci_per_variant() -> None:
    s = summarise(synthetic_frame()).set_index(["variant", "name", "group"])
    a = s.loc[("a", "mae", "all")]
    assert a["n"] == 3 and a["mean"] == pytest.approx(0.9) and a["sd"] == pytest.approx(0.1)
    assert a["ci_low"] == pytest.approx(0.9 - T_975_DF2 * 0.1 / math.sqrt(3))
    assert a["ci_high"] == pytest.approx(0.9 + T_975_DF2 * 0.1 / math.sqrt(3))
    b = s.loc[("b", "mae", "all")]
    sd_b = math.sqrt(((0.7 - 0.8) ** 2 + (0.75 - 0.8) ** 2 + (0.95 - 0.8) ** 2) / 2)
    assert b["mean"] == pytest.approx(0.8) and b["sd"] == pytest.approx(sd_b)
    assert s.loc[("a", "mae", "cold"), "n"] == 2


def test_paired_tests_pair_by_database_and_match_hand_values() -> None:
    t = paired_tests(synthetic_frame()).set_index(["name", "group"])
    row = t.loc[("mae", "all")]
    assert (row["a"], row["b"], row["n_pairs"]) == ("a", "b", 3)
    # differences a - b per database: 0.1, 0.15, 0.05 -> mean 0.1, sd 0.05
    assert row["mean_diff"] == pytest.approx(0.1)
    t_stat = 0.1 / (0.05 / math.sqrt(3))
    assert row["t_p"] == pytest.approx(2 * stats.t.sf(t_stat, 2), rel=1e-9)
    # all three differences positive: the exact two-sided Wilcoxon p is 2 / 2**3
    assert row["wilcoxon_p"] == pytest.approx(0.25)


def test_paired_p_values_special_cases() -> None:
    assert paired_p_values(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == (1.0, 1.0)
    t_p, w_p = paired_p_values(np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0]))
    assert math.isnan(t_p) and w_p == pytest.approx(0.25)
    assert all(math.isnan(p) for p in paired_p_values(np.array([1.0]), np.array([0.0])))


def test_comparison_table_prints_the_hand_computed_cells() -> None:
    table = comparison_table(
        synthetic_frame(), title="toy", metrics=["mae"], groups=["all", "cold"]
    )
    assert "with 3 pairs W cannot go below 0.25" in str(table.caption)
    text = render(table)
    half_a = T_975_DF2 * 0.1 / math.sqrt(3)
    assert f"0.9000 ± {half_a:.4f}" in text
    assert "mae (all)" in text and "mae (cold)" in text
    assert "a − b" in text and "0.1000" in text and "0.250" in text  # Δ and Wilcoxon p
    assert "(n=3)" in text
    # cold has only two databases: the cell says so; a zero mean difference has no sign
    assert "1.1000 ± 1.2706 (n=2)" in text
    assert "-0.0000" not in text


def test_point_tables_make_one_table_per_point() -> None:
    f = synthetic_frame()
    f = pd.concat([f.assign(point="p1", seed=1), f.assign(point="p2", seed=2)])
    tables = point_tables(f, metrics=["mae"], groups=["all"])
    assert [t.title for t in tables] == ["p1: 1 seed(s)", "p2: 1 seed(s)"]


def test_metric_names_put_the_known_metrics_first() -> None:
    names = metric_names(["zeta", "mae", "requests", "alpha"])
    assert names[: len(TABLE_METRICS)] == list(TABLE_METRICS)
    assert names[len(TABLE_METRICS) :] == ["alpha", "zeta"]


def test_parse_groups() -> None:
    assert parse_groups("all, cold,all") == ["all", "cold"]
    with pytest.raises(ValueError, match="expected"):
        parse_groups("everyone")


def make_db(path: Path, seed: int, values: dict[str, float], status: str = "completed") -> None:
    repo = Repository(str(path))
    with repo.transaction() as s:
        for variant, v in values.items():
            run_id = repo.create_run(
                s,
                name="toy",
                variant=variant,
                scenario_yaml="{}",
                scenario_hash="h",
                seed=seed,
                code_version="test",
                n_steps=1,
                status=status if variant == "b" else "completed",
            )
            repo.insert_rows(
                s,
                MetricRecord,
                [
                    {"run_id": run_id, "step": -1, "name": "mae", "group": "all", "value": v},
                    {"run_id": run_id, "step": 0, "name": "mae", "group": "all", "value": 9.0},
                ],
            )
    repo.close()


def test_read_databases_takes_whole_run_metrics_of_completed_runs(tmp_path: Path) -> None:
    for i, db in enumerate(A, start=1):
        make_db(
            tmp_path / f"{db}.db", i, {"a": A[db], "b": B[db]}, "failed" if i == 3 else "completed"
        )
    frame, notes = read_databases([tmp_path / f"{db}.db" for db in A])
    assert set(frame["step"] if "step" in frame else []) == set()
    assert sorted(frame.loc[frame["variant"] == "a", "value"]) == [0.8, 0.9, 1.0]
    assert sorted(frame.loc[frame["variant"] == "b", "value"]) == [0.7, 0.75]  # seed 3's b failed
    assert list(frame.loc[frame["variant"] == "a", "seed"]) == [1, 2, 3]
    assert len(notes) == 1 and "run 2 (b) left out: failed" in notes[0]
    s = summarise(frame).set_index("variant")
    assert s.loc["a", "mean"] == pytest.approx(0.9)


def test_read_whole_run_metrics_rejects_what_is_not_a_run_database(tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="does not exist"):
        read_whole_run_metrics(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite")
    with pytest.raises(CompareError):
        read_whole_run_metrics(junk)
