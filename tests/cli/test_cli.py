"""The command line as a user meets it: exit codes, readable errors, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from main import app

runner = CliRunner()


def test_validate_ok(tiny_file: Path) -> None:
    res = runner.invoke(app, ["validate", str(tiny_file)])
    assert res.exit_code == 0, res.output
    assert "scenario 'tiny'" in res.output


def test_validate_lists_every_problem_and_exits_2(tmp_path: Path, tiny_data: dict) -> None:
    tiny_data["world"]["users"] = -3
    tiny_data["world"]["flavour"] = "x"
    tiny_data["run"]["steps"] = "ten"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(tiny_data))
    res = runner.invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert f"{bad}: world.flavour: unknown key (not part of the scenario schema)" in lines
    assert any(line.startswith(f"{bad}: world.users: ") for line in lines)
    assert any(line.startswith(f"{bad}: run.steps: ") for line in lines)
    assert "Traceback" not in res.output


def test_missing_file_exits_2_without_traceback(tmp_path: Path) -> None:
    res = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert "nope.yaml: file not found" in res.output
    assert "Traceback" not in res.output


def test_bad_scenario_leaves_no_database(tmp_path: Path, tiny_data: dict) -> None:
    db = tmp_path / "out" / "never.db"
    tiny_data["output"]["db"] = str(db)
    tiny_data["recommenders"][0]["kind"] = "magic"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(tiny_data))
    res = runner.invoke(app, ["run", str(bad)])
    assert res.exit_code == 2
    assert "recommenders.0.kind" in res.output
    assert not db.exists() and not db.parent.exists()


def test_bad_override_exits_2(tiny_file: Path) -> None:
    res = runner.invoke(app, ["run", str(tiny_file), "--steps", "0", "--quiet"])
    assert res.exit_code == 2
    assert "run.steps" in res.output


def test_run_then_trace(tiny_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "tiny.db"
    res = runner.invoke(app, ["run", str(tiny_file), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "Run summary" in res.output and "tfcdsrs" in res.output and "cf" in res.output
    assert db.exists()
    # running again without --overwrite is refused, with one line and exit 1
    again = runner.invoke(app, ["run", str(tiny_file), "--quiet"])
    assert again.exit_code == 1 and "already exists" in again.output
    import sqlite3

    con = sqlite3.connect(db)
    user, step = con.execute(
        "select user_id, step from recommendation where run_id=1 order by id limit 1"
    ).fetchone()
    con.close()
    tr = runner.invoke(
        app, ["trace", str(db), "--user", str(user), "--step", str(step)], terminal_width=200
    )
    assert tr.exit_code == 0, tr.output
    for needle in (
        "RecommendRequest",
        "LocalNeighbours",
        "TrustedNeighbours",
        "Candidates",
        "Recommendations",
        "novelty",
        "unexpectedness",
        "serendipity",
        "rules fired",
    ):
        assert needle in tr.output, needle
    missing = runner.invoke(app, ["trace", str(db), "--user", "99999"])
    assert missing.exit_code == 1 and "received no list" in missing.output
    nodb = runner.invoke(app, ["trace", str(tmp_path / "absent.db"), "--user", "1"])
    assert nodb.exit_code == 1 and "Traceback" not in nodb.output
