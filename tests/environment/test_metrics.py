"""Run metrics for shilling and trust studies: pushed_share and trust_auc (environment/metrics.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from environment.metrics import pushed_share
from environment.runner import build_world, run_variant
from environment.scenario import Scenario
from storage.repository import Repository


def test_pushed_share_by_hand() -> None:
    assert pushed_share(np.array([3, 5, 7, 5]), np.array([5, 9])) == 0.5
    assert pushed_share(np.array([1, 2]), np.array([5])) == 0.0
    assert pushed_share(np.zeros(0, dtype=np.int64), np.array([5])) is None


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from tests.conftest import tiny_scenario_data

    scenario = Scenario.model_validate(tiny_scenario_data(steps=3))
    data = build_world(scenario)
    target = data.domain_items(data.target_domain)
    # Mark a few popular target items as "pushed" and give the world a trust network, so
    # both metrics are recorded without attackers in the world.
    counts = np.bincount(data.history.items, minlength=data.n_items)[target]
    data.pushed_items = np.sort(target[np.argsort(-counts)[:4]])
    rng = np.random.default_rng(0)
    data.trust_edges = rng.integers(0, data.n_users, (200, 2))
    db = tmp_path_factory.mktemp("metrics") / "run.db"
    repo = Repository(str(db))
    try:
        run_variant(scenario, data, scenario.recommenders[0], repo, resume=False, observer=None)
    finally:
        repo.close()
    return db, data.pushed_items


def _frames(db: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = sqlite3.connect(db)
    metrics = pd.read_sql('select step, name, "group", value from metric', con)
    recs = pd.read_sql("select step, item_id from recommendation", con)
    con.close()
    return metrics, recs


def test_pushed_share_per_step_and_per_run_match_the_lists(run_db) -> None:
    db, pushed = run_db
    metrics, recs = _frames(db)
    got = metrics[(metrics["name"] == "pushed_share") & (metrics["group"] == "all")]
    got = got.set_index("step")["value"]
    expected = recs.groupby("step")["item_id"].apply(lambda s: np.isin(s, pushed).mean())
    assert expected.gt(0).any()  # popular items do get recommended
    for step, share in expected.items():
        assert got[step] == pytest.approx(share)
    assert got[-1] == pytest.approx(np.isin(recs["item_id"], pushed).mean())


def test_trust_auc_is_recorded_per_step_and_its_final_value_for_the_run(run_db) -> None:
    db, _ = run_db
    metrics, _ = _frames(db)
    auc = metrics[metrics["name"] == "trust_auc"].set_index("step")["value"]
    assert sorted(auc.index) == [-1, 0, 1, 2]
    assert ((auc >= 0) & (auc <= 1)).all()
    assert auc[-1] == auc[2]
    assert set(metrics[metrics["name"] == "trust_auc"]["group"]) == {"all"}
