"""Sweeps: grid parsing, failed-run isolation, the same numbers in parallel, on Ray and in turn."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from environment.compare import read_whole_run_metrics
from environment.scenario import Scenario, parse_scenario
from environment.sweep import (
    SweepError,
    SweepResult,
    TaskResult,
    db_name,
    grid_points,
    one_line,
    parse_grid,
    plan_sweep,
    point_label,
    run_sweep,
    seeds_of,
)
from environment.sweep_backends import ray_runtime_env

# 60 users, 30 items per domain, 3 steps: a whole scenario run takes well under a second.
TINY: dict[str, Any] = {
    "name": "tiny",
    "world": {
        "kind": "synthetic",
        "users": 60,
        "items_per_domain": 30,
        "history_per_domain": 8,
        "cold_start": {"share": 0.25, "target_ratings": [0, 2], "arrival_steps": [1, 2]},
    },
    "recommenders": [
        {"name": "tfcdsrs", "kind": "tfcdsrs", "neighbours": 10},
        {"name": "cf", "kind": "cf", "neighbours": 10},
    ],
    "run": {"steps": 3, "seed": 1, "active_share": 0.5, "list_length": 5},
    "output": {"trace": "quiet"},
}
GOOD, BAD = "run.active_share=0.5", "run.active_share=2.0"
GRID: dict[str, list[Any]] = {"run.active_share": [0.5, 2.0]}  # 2.0 > 1 does not validate


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return parse_scenario(TINY)


@pytest.fixture(scope="module")
def sweeps(
    tiny: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SweepResult, SweepResult, list[TaskResult]]:
    """The same sweep with 2 worker processes and one run after another in this process.

    The parallel one also has seed 3, whose database path is occupied by a file that is not a
    database: a run that fails inside its worker.
    """
    par, seq = tmp_path_factory.mktemp("parallel"), tmp_path_factory.mktemp("sequential")
    (par / db_name(GOOD, 3)).write_text("occupied")
    seen: list[TaskResult] = []
    parallel = run_sweep(tiny, grid=GRID, seeds=[1, 2, 3], out=par, workers=2, on_done=seen.append)
    sequential = run_sweep(tiny, grid=GRID, seeds=[1, 2], out=seq, workers=1)
    return parallel, sequential, seen


def test_parse_grid_reads_yaml_values() -> None:
    grid = parse_grid(
        ["recommenders.0.neighbours=10, 30", "world.cold_start.arrival_steps=[1, 4],[2, 8]"]
    )
    assert grid == {
        "recommenders.0.neighbours": [10, 30],
        "world.cold_start.arrival_steps": [[1, 4], [2, 8]],
    }
    assert parse_grid(["recommenders.0.scorer=fuzzy,prediction"])["recommenders.0.scorer"] == [
        "fuzzy",
        "prediction",
    ]
    assert parse_grid(["run.active_share=0.25"]) == {"run.active_share": [0.25]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("run.steps", "expected key=value"),
        ("=3", "expected key=value"),
        ("run.steps=3,,4", "empty value"),
        ("run.steps=3,3", "twice"),
        ("run.seed=1,2", "--seeds"),
        ("run.steps=[1, 2", "not a YAML value"),
    ],
)
def test_parse_grid_rejects_malformed_specs(spec: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_grid([spec])


def test_grid_points_labels_and_names() -> None:
    points = grid_points({"a.b": [1, 2], "c": ["x", "y"]})
    assert points == [
        {"a.b": 1, "c": "x"},
        {"a.b": 1, "c": "y"},
        {"a.b": 2, "c": "x"},
        {"a.b": 2, "c": "y"},
    ]
    assert grid_points({}) == [{}]
    assert point_label({}) == "base"
    assert point_label({"a.b": 0.5, "c": [1, 2]}) == "a.b=0.5 c=[1, 2]"
    assert db_name("a.b=0.5 c=[1, 2]", 7) == "a.b=0.5__c=-1-2-_seed7.db"


def test_plan_sweep_validates_every_point(tiny: Scenario, tmp_path: Path) -> None:
    assert seeds_of(tiny, 3) == [1, 2, 3]
    tasks, invalid = plan_sweep(tiny, GRID, [1, 2], tmp_path)
    assert [(t.point, t.seed) for t in tasks] == [(GOOD, 1), (GOOD, 2)]
    assert tasks[1].scenario["run"]["seed"] == 2
    assert tasks[1].scenario["output"] == {
        "db": str(tmp_path.resolve() / db_name(GOOD, 2)),
        "trace": "quiet",
    }
    assert [(r.point, r.seed, r.status) for r in invalid] == [
        (BAD, 1, "failed"),
        (BAD, 2, "failed"),
    ]
    assert invalid[0].error == "run.active_share: Input should be less than or equal to 1"


def test_one_line_keeps_the_first_line_only() -> None:
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert one_line(KeyError()) == "KeyError"
    assert len(one_line(RuntimeError("x" * 1000), limit=50)) == 50


@pytest.mark.slow  # a spawn pool: each worker imports the simulation (~5 s)
def test_parallel_sweep_gives_the_same_numbers_as_one_after_another(
    sweeps: tuple[SweepResult, SweepResult, list[TaskResult]],
) -> None:
    parallel, sequential, _ = sweeps
    assert len(sequential.frame) > 0
    pd.testing.assert_frame_equal(parallel.frame, sequential.frame, check_exact=True)
    assert parallel.summary_csv.read_text() == sequential.summary_csv.read_text()


@pytest.mark.slow  # a spawn pool: each worker imports the simulation (~5 s)
def test_failed_runs_are_reported_and_the_others_go_on(
    sweeps: tuple[SweepResult, SweepResult, list[TaskResult]],
) -> None:
    parallel, _, seen = sweeps
    status = {(r.point, r.seed): r.status for r in parallel.results}
    assert status == {
        (GOOD, 1): "completed",
        (GOOD, 2): "completed",
        (GOOD, 3): "failed",
        (BAD, 1): "failed",
        (BAD, 2): "failed",
        (BAD, 3): "failed",
    }
    occupied = next(r for r in parallel.results if r.seed == 3 and r.point == GOOD)
    assert occupied.error is not None and "\n" not in occupied.error
    assert occupied.error.startswith("RunError:") and "already exists" in occupied.error
    assert sorted((r.point, r.seed) for r in seen) == sorted(status)  # each reported once
    runs = pd.read_csv(parallel.runs_csv)
    assert list(runs["status"]) == [
        status[(p, s)] for p, s in zip(runs["point"], runs["seed"], strict=True)
    ]
    assert runs.loc[runs["status"] == "failed", "error"].str.len().min() > 0


@pytest.mark.slow  # a spawn pool: each worker imports the simulation (~5 s)
def test_summary_holds_every_whole_run_metric_of_every_run(
    sweeps: tuple[SweepResult, SweepResult, list[TaskResult]],
) -> None:
    _, sequential, _ = sweeps
    frame = sequential.frame
    assert list(frame.columns) == [
        "point",
        "run.active_share",
        "seed",
        "db",
        "variant",
        "run_id",
        "name",
        "group",
        "value",
    ]
    assert set(frame["seed"]) == {1, 2} and set(frame["variant"]) == {"tfcdsrs", "cf"}
    for seed in (1, 2):
        db = sequential.out / db_name(GOOD, seed)
        stored, _ = read_whole_run_metrics(db)
        mine = frame[frame["seed"] == seed]
        assert len(mine) == len(stored)
        for (v, n, g), value in zip(
            zip(mine["variant"], mine["name"], mine["group"], strict=True),
            mine["value"],
            strict=True,
        ):
            row = stored[(stored["variant"] == v) & (stored["name"] == n) & (stored["group"] == g)]
            assert len(row) == 1
            assert (math.isnan(value) and math.isnan(row["value"].iloc[0])) or value == row[
                "value"
            ].iloc[0]


def test_ray_missing_is_a_sweep_error(
    tiny: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(SweepError, match="serensim\\[ray\\]"):
        run_sweep(tiny, grid={}, seeds=[1], out=tmp_path, ray_address="local")


@pytest.mark.slow
def test_ray_sweep_gives_the_same_numbers(
    tiny: Scenario,
    sweeps: tuple[SweepResult, SweepResult, list[TaskResult]],
    tmp_path: Path,
) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'serensim[ray]')")
    _, sequential, _ = sweeps
    ray.init(
        num_cpus=2, include_dashboard=False, runtime_env=ray_runtime_env(), log_to_driver=False
    )
    try:
        result = run_sweep(tiny, grid=GRID, seeds=[1, 2], out=tmp_path, ray_address="local")
    finally:
        ray.shutdown()
    assert [r.status for r in result.results] == ["completed", "completed", "failed", "failed"]
    assert all(Path(r.db).is_file() for r in result.results[:2])  # written by the Ray workers
    pd.testing.assert_frame_equal(result.frame, sequential.frame, check_exact=True)
