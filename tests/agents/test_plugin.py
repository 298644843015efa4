"""A deep scorer plugged into the serendipity agent: it ranks, retrains, and stays deterministic."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from environment.runner import run_scenario
from environment.scenario import parse_scenario
from tests.conftest import tiny_scenario_data


def scenario(scorer: str, steps: int = 3):
    d = tiny_scenario_data(steps=steps)
    d["recommenders"] = [
        {
            "name": scorer,
            "kind": "tfcdsrs",
            "neighbours": 10,
            "scorer": scorer,
            "retrain_every": 2,
            "model_epochs": 1,
            "device": "cpu",
        }
    ]
    return parse_scenario(d)


def lists(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    rows = con.execute(
        "select step, user_id, rank, item_id, score, serendipity from recommendation order by id"
    ).fetchall()
    con.close()
    return rows


def test_vae_scorer_ranks_the_lists_and_is_deterministic(tmp_path: Path) -> None:
    run_scenario(scenario("vae"), db=str(tmp_path / "a.db"))
    run_scenario(scenario("vae"), db=str(tmp_path / "b.db"))
    a, b = lists(tmp_path / "a.db"), lists(tmp_path / "b.db")
    assert a == b and a
    # Each list is in descending model score, and the score is not the fuzzy serendipity.
    by_list: dict[tuple[int, int], list[float]] = {}
    for step, user, _rank, _item, score, _z in a:
        by_list.setdefault((step, user), []).append(score)
    assert all(s == sorted(s, reverse=True) for s in by_list.values())
    assert not np.allclose([r[4] for r in a], [r[5] for r in a])
    con = sqlite3.connect(tmp_path / "a.db")
    messages = con.execute(
        "select count(*), sum(handled_step = step) from message where recipient='serendipity' and kind='Feedback'"
    ).fetchone()
    blob = con.execute("select length(blob) from agent_state where agent='serendipity'").fetchone()[
        0
    ]
    con.close()
    assert (
        messages[0] > 0 and messages[0] == messages[1]
    )  # feedback reaches it, handled in its step
    assert blob > 1000  # the trained weights travel with the snapshot


def test_label_hungry_scorer_ranks_by_fuzzy_until_it_has_labels(tmp_path: Path) -> None:
    run_scenario(scenario("serencdr", steps=2), db=str(tmp_path / "c.db"))
    rows = lists(tmp_path / "c.db")
    assert rows
    # no serendipity labels yet -> the fuzzy score ranks (score == z*)
    np.testing.assert_allclose([r[4] for r in rows], [r[5] for r in rows])


def test_blend_feeds_the_model_into_the_fuzzy_relevance(tmp_path: Path) -> None:
    run_scenario(scenario("blend"), db=str(tmp_path / "d.db"))
    rows = lists(tmp_path / "d.db")
    np.testing.assert_allclose([r[4] for r in rows], [r[5] for r in rows])  # ranked by z*
    con = sqlite3.connect(tmp_path / "d.db")
    rel = [r[0] for r in con.execute("select relevance from recommendation")]
    con.close()
    assert min(rel) >= 0.0 and max(rel) <= 1.0
