"""Invariants of a whole run: messages, trust bounds, determinism, crash and resume."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agents.neighbourhood import NeighbourhoodAgent
from environment.runner import RunError, run_scenario
from environment.scenario import parse_scenario
from tests.conftest import tiny_scenario_data

TIMESTAMP_COLUMNS = {"created_at", "handled_at", "started_at", "finished_at"}


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows, minus wall-clock timestamps."""
    con = sqlite3.connect(db)
    out = {}
    tables = [
        r[0]
        for r in con.execute(
            "select name from sqlite_master where type='table' and name not like 'sqlite_%'"
        )
    ]
    for t in sorted(tables):
        cols = [
            r[1] for r in con.execute(f"pragma table_info('{t}')") if r[1] not in TIMESTAMP_COLUMNS
        ]
        quoted = ", ".join(f'"{c}"' for c in cols)
        out[t] = con.execute(f"select {quoted} from '{t}' order by 1").fetchall()
    con.close()
    return out


def test_every_message_is_handled_exactly_once(tiny, tmp_path: Path) -> None:
    res = run_scenario(tiny, db=str(tmp_path / "r.db"))
    con = sqlite3.connect(tmp_path / "r.db")
    for v in res.variants:
        rows = con.execute(
            "select kind, count(*), count(handled_step), sum(handled_step = step) from message where run_id=? group by kind",
            (v.run_id,),
        ).fetchall()
        counts = {k: (n, h, same) for k, n, h, same in rows}
        for kind, (n, handled, same_step) in counts.items():
            assert n == handled == same_step, kind  # handled, once, in the step it was posted
        requests = counts["RecommendRequest"][0]
        assert requests > 0
        assert counts["LocalNeighbours"][0] == requests
        assert counts["TrustedNeighbours"][0] == requests
        assert counts["Candidates"][0] == requests
        assert counts["Recommendations"][0] == requests
        # Feedback goes to the target (ratings) and to trust (credit): two messages per list with events.
        assert counts["Feedback"][0] % 2 == 0
        # Only TFCDSRS consults the source domain; CF never does.
        remote = counts.get("RemoteNeighbourRequest", (0, 0, 0))[0]
        assert (remote > 0) == (v.kind == "tfcdsrs")
        assert remote == counts.get("RemoteNeighbours", (0, 0, 0))[0]
        # Arrivals: every late arrival announces itself to the target and each consulted source.
        arrivals = con.execute(
            "select count(*) from user where run_id=? and arrival_step>0", (v.run_id,)
        ).fetchone()[0]
        assert counts.get("Arrive", (0,))[0] == arrivals * (2 if v.kind == "tfcdsrs" else 1)
    con.close()


def test_trust_and_reputation_stay_in_unit_interval(tiny, tmp_path: Path) -> None:
    run_scenario(tiny, db=str(tmp_path / "r.db"))
    con = sqlite3.connect(tmp_path / "r.db")
    lo, hi, n = con.execute("select min(value), max(value), count(*) from trust").fetchone()
    assert n > 0 and 0.0 <= lo and hi <= 1.0
    lo, hi, n = con.execute("select min(value), max(value), count(*) from reputation").fetchone()
    assert n > 0 and 0.0 <= lo and hi <= 1.0
    status = con.execute("select distinct status from run").fetchall()
    assert status == [("completed",)]


def test_same_scenario_and_seed_give_identical_databases(tiny, tmp_path: Path) -> None:
    run_scenario(tiny, db=str(tmp_path / "a.db"))
    run_scenario(tiny, db=str(tmp_path / "b.db"))
    a, b = dump(tmp_path / "a.db"), dump(tmp_path / "b.db")
    assert a.keys() == b.keys()
    for table in a:
        assert a[table] == b[table], table
    other = parse_scenario(tiny_scenario_data(seed=4))
    run_scenario(other, db=str(tmp_path / "c.db"))
    assert dump(tmp_path / "c.db")["recommendation"] != a["recommendation"]


def test_crash_marks_run_failed_keeps_steps_and_resume_matches(
    tiny, tmp_path: Path, monkeypatch
) -> None:
    original = NeighbourhoodAgent._predict

    def flaky(self, msgs):
        if self.model.step_no == 2:
            raise RuntimeError("neighbourhood agent crashed")
        return original(self, msgs)

    monkeypatch.setattr(NeighbourhoodAgent, "_predict", flaky)
    crashed = tmp_path / "crash.db"
    with pytest.raises(RunError, match="failed at step 2"):
        run_scenario(tiny, db=str(crashed))
    con = sqlite3.connect(crashed)
    status, last, error = con.execute(
        "select status, last_step, error from run where id=1"
    ).fetchone()
    assert (status, last) == ("failed", 1) and "crashed" in error
    steps = [
        r[0] for r in con.execute("select distinct step from metric where run_id=1 order by step")
    ]
    assert steps == [0, 1]  # every committed step intact, nothing of the step in flight
    assert con.execute("select count(*) from recommendation where step >= 2").fetchone()[0] == 0
    con.close()

    monkeypatch.setattr(NeighbourhoodAgent, "_predict", original)
    run_scenario(tiny, db=str(crashed), resume=True)
    straight = tmp_path / "straight.db"
    run_scenario(tiny, db=str(straight))
    a, b = dump(crashed), dump(straight)
    for table in ("recommendation", "feedback", "trust", "reputation", "rating", "metric"):
        strip = (
            (lambda rows: [r[1:] for r in rows])
            if table in ("trust", "reputation", "metric", "recommendation", "feedback")
            else (lambda rows: rows)
        )
        assert strip(a[table]) == strip(b[table]), table


def test_existing_database_is_not_overwritten_without_asking(tiny, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    run_scenario(tiny, db=str(db))
    with pytest.raises(RunError, match="already exists"):
        run_scenario(tiny, db=str(db))
    run_scenario(tiny, db=str(db), overwrite=True)
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from run").fetchone()[0] == 2  # two variants, replaced
    con.close()


def test_cf_ranks_by_prediction_and_tfcdsrs_by_fuzzy_score(tiny, tmp_path: Path) -> None:
    res = run_scenario(tiny, db=str(tmp_path / "r.db"))
    con = sqlite3.connect(tmp_path / "r.db")
    for v in res.variants:
        rows = con.execute(
            "select step, user_id, score, prediction, serendipity from recommendation where run_id=? order by id",
            (v.run_id,),
        ).fetchall()
        assert rows
        expected = [r[3] if v.kind == "cf" else r[4] for r in rows]
        assert [r[2] for r in rows] == expected, v.name
    con.close()
