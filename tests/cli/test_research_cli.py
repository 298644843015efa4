"""The researcher's commands as a user meets them: report, sweep, compare; exit codes, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from environment.runner import run_scenario
from environment.scenario import parse_scenario
from main import app
from tests.environment.test_sweep import TINY

runner = CliRunner()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("research")


@pytest.fixture(scope="module")
def scenario_file(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def databases(folder: Path) -> list[Path]:
    """Two runs of the tiny scenario with seeds 1 and 2."""
    paths = []
    for seed in (1, 2):
        db = folder / f"seed{seed}.db"
        run_scenario(parse_scenario({**TINY, "run": {**TINY["run"], "seed": seed}}), db=str(db))
        paths.append(db)
    return paths


def clean(output: str) -> None:
    assert "Traceback" not in output


def test_report_prints_tables_and_lists_the_pngs(databases: list[Path]) -> None:
    res = runner.invoke(app, ["report", str(databases[0]), "--steps", "0,2"])
    assert res.exit_code == 0, res.output
    assert "Whole-run metrics" in res.output and "Cold-start curve" in res.output
    assert "files written:" in res.output
    out = databases[0].parent / "seed1_report"  # the default folder sits beside the database
    for name in ("metrics_per_step.png", "trust_network_cf_steps_0-2.png"):
        assert (out / name).is_file() and str(out / name) in res.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--steps", "zero"], 2, "invalid literal"),
        (["--steps", "-3"], 2, "non-negative"),
    ],
)
def test_report_bad_steps_exit_2(
    databases: list[Path], folder: Path, args: list[str], code: int, message: str
) -> None:
    res = runner.invoke(app, ["report", str(databases[0]), "--out", str(folder / "r2"), *args])
    assert res.exit_code == code
    assert message in res.output
    clean(res.output)


def test_report_of_a_missing_database_exits_1(folder: Path) -> None:
    res = runner.invoke(app, ["report", str(folder / "nothing.db")])
    assert res.exit_code == 1
    assert "does not exist" in res.output
    clean(res.output)


def test_compare_prints_means_cis_and_paired_tests(databases: list[Path]) -> None:
    res = runner.invoke(app, ["compare", *map(str, databases), "--groups", "all,cold"])
    assert res.exit_code == 0, res.output
    assert "seeds 1, 2" in res.output
    assert "tfcdsrs" in res.output and "(n=2)" in res.output
    assert "t p" in res.output and "W p" in res.output
    assert "mae (cold)" in res.output and " ± " in res.output


def test_compare_bad_input(databases: list[Path], folder: Path) -> None:
    missing = runner.invoke(app, ["compare", str(databases[0]), str(folder / "gone.db")])
    assert missing.exit_code == 1 and "gone.db" in missing.output
    groups = runner.invoke(app, ["compare", str(databases[0]), "--groups", "everyone"])
    assert groups.exit_code == 2 and "--groups" in groups.output
    clean(missing.output + groups.output)


def test_sweep_reports_a_failed_run_and_finishes_the_others(
    scenario_file: Path, folder: Path
) -> None:
    out = folder / "sweep"
    res = runner.invoke(
        app,
        [
            "sweep",
            str(scenario_file),
            "--seeds",
            "2",
            "--grid",
            "run.active_share=0.5,2.0",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 1  # some runs failed: the exit code says so
    assert "failed run.active_share=2.0 seed 1: run.active_share: Input should be" in res.output
    assert "2 of 4 run(s) failed" in res.output
    assert "run.active_share=0.5: 2 seed(s)" in res.output  # the table of the good point
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["seed"]) == {1, 2} and set(summary["run.active_share"]) == {0.5}
    assert (out / "run.active_share=0.5_seed2.db").is_file()
    clean(res.output)


def test_sweep_without_grid_succeeds(scenario_file: Path, folder: Path) -> None:
    out = folder / "plain"
    args = ["sweep", str(scenario_file), "--seeds", "1", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "base: 1 seed(s)" in res.output and (out / "base_seed1.db").is_file()
    again = runner.invoke(app, args)  # the databases exist now: every run fails, none is lost
    assert again.exit_code == 1 and "already exists" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "run.steps"], "expected key=value"),
        (["--grid", "run.seed=1,2"], "--seeds"),
        (["--groups", "nobody"], "--groups"),
    ],
)
def test_sweep_bad_input_exits_2(scenario_file: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["sweep", str(scenario_file), *args])
    assert res.exit_code == 2
    assert message in res.output
    clean(res.output)


def test_sweep_of_a_missing_scenario_exits_2(folder: Path) -> None:
    res = runner.invoke(app, ["sweep", str(folder / "nope.yaml")])
    assert res.exit_code == 2 and "file not found" in res.output
    clean(res.output)
