"""Sweeps: a scenario over seeds and a grid of overrides, in parallel processes or on Ray.

Each (grid point, seed) is one scenario run: one SQLite database under the output folder,
named after the point and the seed, holding one run per recommender variant of the scenario.
The runs are independent, so they go to a ``spawn`` process pool (Mesa forces ``spawn``) or,
given an address, to a Ray cluster as tasks; each returns its whole-run metrics as rows. A run
that fails (an invalid grid value, a crash, an occupied database) is reported with its error
on one line and the others go on. ``summary.csv`` holds one row per run, variant, metric and
group; ``runs.csv`` one row per run with its status.

A run's numbers depend only on its scenario and seed, never on where or alongside what it ran,
so a sweep gives the same summary in parallel as one run after another.
Only the standard library and PyYAML are imported at the top: a spawned worker pays for
NumPy, torch and the simulation once, inside :func:`execute_task`.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import pandas as pd

    from environment.scenario import Scenario

SUMMARY_FILE = "summary.csv"
RUNS_FILE = "runs.csv"
_BRACKETS = {"[": "]", "{": "}"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


class SweepError(Exception):
    """A sweep that cannot start (a malformed grid, Ray missing or unreachable)."""


@dataclass(frozen=True)
class SweepTask:
    """One scenario run of a sweep, self-contained so that it pickles to any worker.

    Attributes:
        scenario: The validated scenario as JSON data (the point's overrides and the seed
            applied, trace quiet, the database set).
        point: The grid point's label (``key=value`` pairs, or ``base`` without a grid).
        overrides: The grid point's overrides (dotted path -> value).
        seed: The run's seed.
        db: The database file (absolute: a Ray worker may start elsewhere).
        overwrite: Replace an existing database.
    """

    scenario: dict[str, Any]
    point: str
    overrides: dict[str, Any]
    seed: int
    db: str
    overwrite: bool


@dataclass
class TaskResult:
    """What one scenario run of a sweep gave.

    Attributes:
        point: The grid point's label.
        overrides: The grid point's overrides.
        seed: The run's seed.
        db: The database file.
        status: ``completed`` or ``failed``.
        error: The error on one line, for a failed run.
        seconds: Wall time of the run in its worker (imports left out).
        cpu_seconds: CPU time of the run in its worker (all its threads).
        rows: Whole-run metrics, one dict per variant, metric and group (``variant``,
            ``run_id``, ``name``, ``group``, ``value``; an undefined value is NaN).
    """

    point: str
    overrides: dict[str, Any]
    seed: int
    db: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)


Callback = Callable[["TaskResult"], None]


@dataclass
class SweepResult:
    """A finished sweep: every run's result (in plan order) and the files written."""

    out: Path
    results: list[TaskResult]
    frame: pd.DataFrame
    summary_csv: Path
    runs_csv: Path

    @property
    def failed(self) -> list[TaskResult]:
        """The runs that failed."""
        return [r for r in self.results if r.status != "completed"]


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets, so ``[1, 2],[3, 4]`` gives two YAML lists."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in _BRACKETS:
            depth += 1
        elif ch in _BRACKETS.values():
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``key=v1,v2`` options into a grid; values are YAML scalars (or flow lists).

    Args:
        specs: One ``dotted.path=v1,v2,...`` string per key.

    Returns:
        The grid, keys in the order given, each with its values.

    Raises:
        SweepError: A spec without ``=``, an empty key or value, unparsable YAML, a key given
            or a value twice, or ``run.seed`` (seeds come from ``--seeds``).
    """
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, rest = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"--grid {spec!r}: expected key=value1,value2")
        if key in grid:
            raise SweepError(f"--grid {key}: given twice")
        if key == "run.seed":
            raise SweepError("--grid run.seed: use --seeds to choose the seeds")
        values = []
        for part in _split_values(rest):
            if not part:
                raise SweepError(f"--grid {spec!r}: empty value")
            try:
                values.append(yaml.safe_load(part))
            except yaml.YAMLError:
                raise SweepError(f"--grid {key}: {part!r} is not a YAML value") from None
        if len({_yaml_text(v) for v in values}) < len(values):
            raise SweepError(f"--grid {key}: a value is given twice")
        grid[key] = values
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (one empty point for an empty grid)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_label(overrides: dict[str, Any]) -> str:
    """A readable label of a grid point: ``key=value`` pairs, ``base`` for no overrides."""
    if not overrides:
        return "base"
    return " ".join(f"{k}={_yaml_text(v)}" for k, v in overrides.items())


def _yaml_text(value: Any) -> str:
    # safe_dump ends a bare scalar with a document-end marker ("0.5\n...\n").
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n").removesuffix("\n...")


def db_name(point: str, seed: int) -> str:
    """The database file name of a run: the point's label made safe for a file name."""
    compact = point.replace(", ", ",").replace(" ", "__")  # pairs are space-separated
    return f"{_UNSAFE.sub('-', compact)}_seed{seed}.db"


def seeds_of(scenario: Scenario, n: int) -> list[int]:
    """``n`` consecutive seeds starting at the scenario's own."""
    return [scenario.run.seed + k for k in range(n)]


def plan_sweep(
    scenario: Scenario,
    grid: dict[str, list[Any]],
    seeds: Sequence[int],
    out: Path,
    *,
    overwrite: bool = False,
) -> tuple[list[SweepTask], list[TaskResult]]:
    """The runs of a sweep, validated up front.

    Returns:
        The tasks to run, and a failed result for every (point, seed) whose scenario does not
        validate (reported like any failed run; the others go on).
    """
    from environment.scenario import ScenarioError, with_overrides

    tasks: list[SweepTask] = []
    invalid: list[TaskResult] = []
    out = out.resolve()
    for overrides in grid_points(grid):
        label = point_label(overrides)
        for seed in seeds:
            db = str(out / db_name(label, seed))
            fixed = {**overrides, "run.seed": seed, "output.trace": "quiet", "output.db": db}
            try:
                sc = with_overrides(scenario, fixed, source=label)
            except ScenarioError as err:
                problem = "; ".join(err.problems)
                invalid.append(TaskResult(label, overrides, seed, db, "failed", problem))
                continue
            tasks.append(
                SweepTask(sc.model_dump(mode="json"), label, overrides, seed, db, overwrite)
            )
    return tasks, invalid


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception as one line: its type and the first line of its message, shortened."""
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    line = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failed(task: SweepTask, error: str, times: tuple[float, float] = (0.0, 0.0)) -> TaskResult:
    return TaskResult(task.point, task.overrides, task.seed, task.db, "failed", error, *times)


def _since(start: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - start[0], time.process_time() - start[1]


def execute_task(task: SweepTask) -> TaskResult:
    """Run one scenario run of a sweep and return its whole-run metrics (a worker's job).

    Never raises: an error becomes a failed result with the error on one line.
    """
    start = (time.perf_counter(), time.process_time())
    try:
        from environment.runner import run_scenario
        from environment.scenario import parse_scenario

        start = (time.perf_counter(), time.process_time())  # the run, not a worker's imports
        scenario = parse_scenario(task.scenario, source=task.point)
        result = run_scenario(scenario, db=task.db, overwrite=task.overwrite)
    except Exception as err:  # the one place where any error becomes a reported failure
        return _failed(task, one_line(err), _since(start))
    rows = [
        {
            "variant": v.name,
            "run_id": v.run_id,
            "name": name,
            "group": group,
            "value": float("nan") if value is None else float(value),
        }
        for v in result.variants
        for (name, group), value in v.metrics.items()
    ]
    return TaskResult(
        task.point, task.overrides, task.seed, task.db, "completed", None, *_since(start), rows
    )


def summary_frame(results: Sequence[TaskResult], grid_keys: Sequence[str]) -> pd.DataFrame:
    """One row per completed run, variant, metric and group, with the point's grid values.

    Columns: ``point``, the grid keys, ``seed``, ``db`` (the file name), ``variant``,
    ``run_id``, ``name``, ``group``, ``value``.
    """
    import pandas as pd

    records = [
        {
            "point": r.point,
            **{k: r.overrides.get(k) for k in grid_keys},
            "seed": r.seed,
            "db": Path(r.db).name,
            **row,
        }
        for r in results
        if r.status == "completed"
        for row in r.rows
    ]
    columns = ["point", *grid_keys, "seed", "db", "variant", "run_id", "name", "group", "value"]
    return pd.DataFrame.from_records(records, columns=columns)


def run_sweep(
    scenario: Scenario,
    *,
    grid: dict[str, list[Any]],
    seeds: Sequence[int],
    out: Path,
    workers: int = 1,
    ray_address: str | None = None,
    overwrite: bool = False,
    on_done: Callback | None = None,
) -> SweepResult:
    """Run a sweep and write ``summary.csv`` and ``runs.csv`` under ``out``.

    Args:
        scenario: The base scenario; its recommenders are the variants of every run.
        grid: Dotted-path overrides and their values (:func:`parse_grid`).
        seeds: The seeds; every grid point runs with each.
        out: The output folder (created); with a remote Ray cluster, a path every node shares.
        workers: Parallel processes (1: one after another in this process).
        ray_address: Run on Ray instead (see :func:`environment.sweep_backends.run_ray`).
        overwrite: Replace existing databases (otherwise such a run fails).
        on_done: Sees each run's result as it finishes (invalid points first).

    Returns:
        The results in plan order (point by point, seed by seed) and the files written.

    Raises:
        SweepError: Ray missing or unreachable.
    """
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    tasks, invalid = plan_sweep(scenario, grid, seeds, out, overwrite=overwrite)
    for r in invalid:
        if on_done:
            on_done(r)
    from environment import sweep_backends  # the executors import this module

    if ray_address is not None:
        done = sweep_backends.run_ray(tasks, ray_address, workers, on_done)
    else:
        done = sweep_backends.run_local(tasks, workers, on_done)
    by_run = {(r.point, r.seed): r for r in [*invalid, *done]}
    order = [(point_label(p), s) for p in grid_points(grid) for s in seeds]
    results = [by_run[key] for key in order]
    frame = summary_frame(results, list(grid))
    summary_csv, runs_csv = out / SUMMARY_FILE, out / RUNS_FILE
    frame.to_csv(summary_csv, index=False)
    pd.DataFrame.from_records(
        [
            {
                "point": r.point,
                "seed": r.seed,
                "db": Path(r.db).name,
                "status": r.status,
                "seconds": round(r.seconds, 3),
                "cpu_seconds": round(r.cpu_seconds, 3),
                "error": r.error or "",
            }
            for r in results
        ]
    ).to_csv(runs_csv, index=False)
    return SweepResult(out, results, frame, summary_csv, runs_csv)
