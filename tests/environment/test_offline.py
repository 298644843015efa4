"""The offline accuracy protocol (environment/offline.py): a hand-checked world, then the
shape and the invariants of a whole evaluation on a tiny synthetic world."""

from __future__ import annotations

import numpy as np
import pytest

from environment.offline import EvaluationError, bucket_labels, evaluate_accuracy
from environment.runner import build_world
from environment.scenario import Scenario, parse_scenario, with_overrides
from environment.truth import LatentTruth
from environment.world_data import RatingLog, WorldData
from tests.conftest import tiny_scenario_data


def test_bucket_labels_follow_the_edges() -> None:
    assert bucket_labels([1, 3, 6, 11]) == ["0", "1-2", "3-5", "6-10", ">10"]
    assert bucket_labels([2]) == ["0-1", ">1"]


def _hand_world() -> WorldData:
    """Three users, target items 0-3, source item 4; user 0 rates item 3 last (the test)."""
    # (user, item, rating): user 1 is user 0 minus one on their co-rated items (Pearson 1),
    # user 2 is their mirror image (Pearson -1).
    rows = [
        (0, 0, 5), (0, 1, 3), (0, 2, 4), (0, 3, 4),
        (1, 0, 4), (1, 1, 2), (1, 2, 3), (1, 3, 4),
        (2, 0, 1), (2, 1, 5), (2, 2, 3), (2, 3, 1),
        (1, 4, 3), (2, 4, 4),
    ]  # fmt: skip
    u, i, r = (np.array(c) for c in zip(*rows, strict=True))
    stamps = np.arange(len(rows), dtype=float)
    stamps[3] = 100.0  # user 0's rating of item 3 is the latest target rating
    n_users, n_items = 3, 5
    domain = np.array([1, 1, 1, 1, 0])
    truth = LatentTruth(
        global_mean=3.0,
        user_bias=np.zeros(n_users),
        item_bias=np.zeros(n_items),
        user_shared=np.zeros((n_users, 1)),
        item_shared=np.ones((n_items, 1)),
        user_specific=np.zeros((n_users, 2, 1)),
        item_specific=np.zeros((n_items, 1)),
        item_domain=domain,
        scale=(1.0, 5.0),
    )
    return WorldData(
        name="hand",
        domain_names=["books", "movies"],
        target_domain=1,
        item_domain=domain,
        item_labels=[str(k) for k in range(n_items)],
        history=RatingLog(u, i, r.astype(float), stamps),
        arrival_step=np.zeros(n_users, dtype=np.int64),
        cold_start=np.zeros(n_users, dtype=bool),
        user_kind=np.zeros(n_users, dtype=np.int64),
        curiosity=np.full(n_users, 0.5),
        comfort_radius=np.full(n_users, 0.5),
        truth=truth,
        scale=(1.0, 5.0),
    )


def test_hand_checked_cf_prediction_and_lists() -> None:
    sc = parse_scenario(
        {
            "name": "hand",
            "recommenders": [{"name": "cf", "kind": "cf", "neighbours": 5}],
            "evaluation": {
                "split": "time",
                "test_share": 0.1,  # 1 of the 12 target ratings: the latest
                "list_lengths": [1, 5],
                "unexpectedness_lengths": [1],
            },
        }
    )
    res = evaluate_accuracy(sc, _hand_world())
    assert (res.split.n_test, res.split.n_test_users, res.split.cutoff) == (1, 1, 100.0)
    # User 0's only neighbour is user 1 (Pearson 1; user 2 is -1): p = r̄_0 + (r_1,3 - r̄_1)
    # = 4 + (4 - 3.25) = 4.75 against the held-out 4.
    assert res.value("cf", "all", "mae") == pytest.approx(0.75)
    assert res.value("cf", "all", "rmse") == pytest.approx(0.75)
    assert res.value("cf", "3-5", "users") == 1 and res.value("cf", "0", "users") == 0
    # The only unseen target item is listed and relevant (rated >= 4): P@1 = 1, P@5 = 1/5.
    assert res.value("cf", "all", "precision", 1) == 1.0
    assert res.value("cf", "all", "precision", 5) == pytest.approx(0.2)
    assert res.value("cf", "all", "recall", 5) == 1.0
    assert res.value("cf", "all", "f1", 5) == pytest.approx(2 * 0.2 / 1.2)
    # Item 3 co-occurs with every history item exactly as often as chance: NPMI 0, une 1/2;
    # it is also the most popular unseen item, so nothing differs from the popularity list.
    assert res.value("cf", "all", "unexpectedness_co", 1) == pytest.approx(0.5)
    assert res.value("cf", "all", "unexpectedness_pm", 1) == 0.0
    assert np.isnan(res.value("cf", "0", "mae"))


@pytest.fixture(scope="module")
def tiny_eval() -> tuple[Scenario, WorldData]:
    data = tiny_scenario_data()
    data["world"]["users"] = 80
    sc = parse_scenario(data)
    return sc, build_world(sc)


def test_frame_shape_buckets_and_invariants(tiny_eval) -> None:
    sc, world = tiny_eval
    stages: set[str] = set()
    res = evaluate_accuracy(sc, world, lambda stage, done, total: stages.add(stage))
    assert stages == {"split", "trust (tfcdsrs)", "users (tfcdsrs)", "users (cf)"}
    f = res.frame
    assert list(f.columns) == ["recommender", "bucket", "metric", "n", "value"]
    assert res.buckets == ["0", "1-2", "3-5", "6-10", ">10", "all"]
    ev = sc.evaluation
    per_bucket = 5 + 3 * len(ev.list_lengths) + 2 * len(ev.unexpectedness_lengths)
    assert len(f) == 2 * len(res.buckets) * per_bucket
    for rec in ("tfcdsrs", "cf"):
        users = [res.value(rec, b, "users") for b in res.buckets]
        assert sum(users[:-1]) == users[-1] == res.split.n_test_users
        ratings = [res.value(rec, b, "test_ratings") for b in res.buckets]
        assert sum(ratings[:-1]) == ratings[-1] == res.split.n_test
    scores = f[f["metric"].isin(["precision", "recall", "unexpectedness_co", "unexpectedness_pm"])]
    vals = scores["value"].dropna()
    assert ((vals >= 0) & (vals <= 1)).all()
    recall = [res.value("tfcdsrs", "all", "recall", n) for n in ev.list_lengths]
    assert recall == sorted(recall)  # longer lists only add items
    assert res.split.n_test == round(0.2 * (res.split.n_test + res.split.n_train_target))


def test_same_seed_same_numbers_and_time_split_needs_timestamps(tiny_eval) -> None:
    sc, world = tiny_eval
    a = evaluate_accuracy(sc, world).frame
    b = evaluate_accuracy(sc, world).frame
    assert a.equals(b)
    other = evaluate_accuracy(with_overrides(sc, {"run.seed": 99}), world)
    assert not other.frame.equals(a)
    with pytest.raises(EvaluationError, match="timestamp"):
        evaluate_accuracy(with_overrides(sc, {"evaluation.split": "time"}), world)
