"""The trust and neighbourhood agents against a push attack, on a tiny synthetic world.

R-B credits the neighbours who vouched for an item (rated it above their own mean), and
reputation is the standing earned from feedback (``TrustConfig`` defaults): the attackers,
whose recommendations never earn a like, end below the honest users' median.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from environment.runner import RunResult, run_scenario
from environment.scenario import parse_scenario
from tests.conftest import tiny_scenario_data


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, sqlite3.Connection]:
    data = tiny_scenario_data(steps=6, active_share=0.6)
    data["world"]["adversaries"] = {"share": 0.15, "pushed_items": 3, "filler_items": 10}
    data["recommenders"] = [{"name": "tfcdsrs", "kind": "tfcdsrs", "neighbours": 10}]
    db = tmp_path_factory.mktemp("attacked") / "attacked.db"
    result = run_scenario(parse_scenario(data), db=str(db))
    return result, sqlite3.connect(db)


def test_credited_neighbours_rated_the_item_above_their_mean(
    attacked: tuple[RunResult, sqlite3.Connection],
) -> None:
    result, con = attacked
    target = result.world.target_domain
    ratings = np.asarray(
        con.execute(
            "select user_id, item_id, rating, available_step from rating where domain_id = ?",
            (target,),
        ).fetchall(),
        dtype=float,
    )
    checked = 0
    for step, item, neighbours in con.execute(
        "select step, item_id, neighbours from recommendation"
    ):
        for y in json.loads(neighbours):
            mine = ratings[(ratings[:, 0] == y) & (ratings[:, 3] <= step)]
            # the view the neighbourhood agent predicted from at that step
            rated = mine[mine[:, 1] == item, 2]
            assert rated.size == 1 and rated[0] > mine[:, 2].mean(), (step, item, y)
            checked += 1
    assert checked > 100


def test_attackers_end_below_the_honest_median(
    attacked: tuple[RunResult, sqlite3.Connection],
) -> None:
    result, con = attacked
    kind = result.world.user_kind
    (last,) = con.execute("select max(step) from reputation").fetchone()
    rep = np.asarray(
        con.execute("select user_id, value from reputation where step = ?", (last,)).fetchall()
    )
    users, values = rep[:, 0].astype(int), rep[:, 1]
    honest_median = np.median(values[kind[users] == 0])
    assert honest_median > 0.0
    assert values[kind[users] == 1].mean() < honest_median
    # the recorded adversarial reputation metric agrees with the table
    (metric,) = con.execute(
        "select value from metric where name = 'mean_reputation' and \"group\" = 'adversarial' "
        "and step = ?",
        (last,),
    ).fetchone()
    assert metric == pytest.approx(values[kind[users] == 1].mean())
