"""Trust evolves with feedback: neighbours whose recommendations disappoint lose trust."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from environment.runner import run_scenario
from environment.scenario import parse_scenario
from tests.conftest import tiny_scenario_data


def test_trust_in_disappointing_neighbours_goes_down(tmp_path: Path) -> None:
    data = tiny_scenario_data(steps=8, active_share=0.8)
    data["recommenders"] = [{"name": "tfcdsrs", "kind": "tfcdsrs", "neighbours": 10}]
    run_scenario(parse_scenario(data), db=str(tmp_path / "t.db"))
    con = sqlite3.connect(tmp_path / "t.db")
    rows = con.execute(
        "select truster, trustee, step, value, cause, id from trust order by id"
    ).fetchall()
    con.close()
    history: dict[tuple[int, int], list[tuple[int, float, str]]] = {}
    for x, y, step, value, cause, _ in rows:
        history.setdefault((x, y), []).append((step, value, cause))
    # Pairs whose every feedback event was a disappointment, at least three of them.
    disappointing = [
        h
        for h in history.values()
        if sum(c == "disliked" for _, _, c in h) >= 3 and not any(c == "liked" for _, _, c in h)
    ]
    rewarded = [
        h
        for h in history.values()
        if sum(c == "liked" for _, _, c in h) >= 3 and not any(c == "disliked" for _, _, c in h)
    ]
    assert disappointing and rewarded
    # Every disappointment lowers trust (to 0 at the latest once it is spent).
    for h in disappointing:
        for k, (_, value, cause) in enumerate(h):
            if cause == "disliked" and k > 0:
                assert value < h[k - 1][1] or value == 0.0
    # Between disappointments the sweep lets trust regrow towards R-A, which reads y's
    # reputation, and with it what others' feedback earned y; trust starts negligible, so
    # ask where the disappointed truster ends against the other users who trust y. (A pair
    # disappointed early and long ago may have regrown: ask it of nearly all, not all.)
    final = {pair: h[-1][1] for pair, h in history.items()}
    below_others = []
    for (x, y), h in history.items():
        if h in disappointing:
            others = [v for (a, b), v in final.items() if b == y and a != x]
            if others:
                below_others.append(h[-1][1] < sum(others) / len(others))
    assert below_others
    assert sum(below_others) >= 0.8 * len(below_others), (sum(below_others), len(below_others))
    mean_final_bad = sum(h[-1][1] for h in disappointing) / len(disappointing)
    mean_final_good = sum(h[-1][1] for h in rewarded) / len(rewarded)
    assert mean_final_bad < mean_final_good
