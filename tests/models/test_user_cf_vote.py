"""User-kNN's two scoring rules (models/baselines.py ``UserCFScorer``), checked by hand.

The tiny world: 4 users x 5 items, like threshold 4, Pearson on co-rated items.

            i0  i1  i2  i3  i4      mean
    u0   [  5,  3,  4,  -,  - ]     12/3 = 4
    u1   [  4,  2,  3,  5,  - ]     14/4 = 3.5
    u2   [  4,  3,  5,  4,  2 ]     18/5 = 3.6
    u3   [  1,  5,  3,  4,  5 ]     18/5 = 3.6

Similarities of u0 (co-rated items i0..i2, u0's deviations (1, -1, 0)):
    s01: u1 deviations (1, -1, 0)              -> 1
    s02: u2 deviations (0, -1, 1), 1/(√2·√2)   -> 0.5
    s03: u3 deviations (-2, 2, 0), -4/(√2·√8)  -> -1 (dropped: not a positive neighbour)

Votes of u0 (w_vi = 1 when v rated i at 4 or more), neighbours u1 (1) and u2 (0.5):
    i0: u1 4, u2 4 -> 1 + 0.5 = 1.5      i1: u1 2, u2 3 -> 0
    i2: u1 3, u2 5 -> 0.5                i3: u1 5, u2 4 -> 1.5
    i4: u2 2 (not liked), u3 5 but s03 < 0 -> 0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.baselines import UserCFConfig, UserCFScorer
from models.scoring import InteractionData
from models.torch_utils import Checkpoint, csr_to_tensors, save_checkpoint

DENSE = np.array(
    [
        [5.0, 3.0, 4.0, 0.0, 0.0],
        [4.0, 2.0, 3.0, 5.0, 0.0],
        [4.0, 3.0, 5.0, 4.0, 2.0],
        [1.0, 5.0, 3.0, 4.0, 5.0],
    ]
)
ALL_ITEMS = np.arange(5)[None, :]


def _data(threshold: float = 4.0) -> InteractionData:
    return InteractionData(sp.csr_matrix(DENSE), np.zeros(5, dtype=np.int64), 0, threshold)


def _fitted(**config: object) -> UserCFScorer:
    cf = UserCFScorer(UserCFConfig.model_validate({"k": 3, "min_overlap": 2, **config}))
    cf.fit(_data(), seed=0, device="cpu")
    return cf


def test_vote_is_the_default_and_matches_the_hand_computed_scores() -> None:
    assert UserCFConfig().score == "vote"
    scores = _fitted().score(np.array([0]), ALL_ITEMS)
    np.testing.assert_allclose(scores, [[1.5, 0.0, 0.5, 1.5, 0.0]])


def test_vote_uses_only_the_k_nearest_neighbours() -> None:
    # k = 1 keeps u1 alone: its liked items i0 (4) and i3 (5) get s01 = 1.
    scores = _fitted(k=1).score(np.array([0]), ALL_ITEMS)
    np.testing.assert_allclose(scores, [[1.0, 0.0, 0.0, 1.0, 0.0]])


def test_unrated_items_without_votes_score_zero_and_voted_ones_above() -> None:
    scores = _fitted().score(np.array([0, 0]), np.array([[3, 4], [4, 3]]))
    # i3 and i4 are both unrated by u0; only i3 was liked by a positive neighbour.
    np.testing.assert_allclose(scores, [[1.5, 0.0], [0.0, 1.5]])
    # Over every user and item: a score is positive exactly where a positive neighbour voted.
    users = np.arange(4)
    cf = _fitted()
    all_scores = cf.score(users, np.tile(np.arange(5), (4, 1)))
    liked = (DENSE >= 4.0).astype(float)
    voted = (cf.neighbour_weights(users) @ liked) > 0
    assert np.all(all_scores >= 0.0)
    np.testing.assert_array_equal(all_scores > 0, voted)


def test_vote_counts_likes_at_the_fit_time_threshold() -> None:
    # Threshold 5: only u1's 5 on i3 (s01 = 1) and u2's 5 on i2 (s02 = 0.5) count.
    cf = UserCFScorer(UserCFConfig(k=3, min_overlap=2))
    cf.fit(_data(threshold=5.0), seed=0, device="cpu")
    np.testing.assert_allclose(cf.score(np.array([0]), ALL_ITEMS), [[0.0, 0.0, 0.5, 1.0, 0.0]])


def test_resnick_option_reproduces_the_mean_centred_prediction() -> None:
    # score = r̄_0 + Σ s (r_vi − r̄_v) / Σ s over the neighbours u1 (s = 1), u2 (s = 0.5)
    # who rated the item; an item only u3 (weight 0) rated falls back to r̄_0 = 4.
    #   i0: 4 + (1·(4 − 3.5) + 0.5·(4 − 3.6)) / 1.5 = 4 + 0.7/1.5
    #   i1: 4 + (1·(2 − 3.5) + 0.5·(3 − 3.6)) / 1.5 = 4 − 1.8/1.5
    #   i2: 4 + (1·(3 − 3.5) + 0.5·(5 − 3.6)) / 1.5 = 4 + 0.2/1.5
    #   i3: 4 + (1·(5 − 3.5) + 0.5·(4 − 3.6)) / 1.5 = 4 + 1.7/1.5
    #   i4: 4 + 0.5·(2 − 3.6) / 0.5             = 2.4
    expected = [[4 + 0.7 / 1.5, 4 - 1.8 / 1.5, 4 + 0.2 / 1.5, 4 + 1.7 / 1.5, 2.4]]
    scores = _fitted(score="resnick").score(np.array([0]), ALL_ITEMS)
    np.testing.assert_allclose(scores, expected)


def test_round_trip_keeps_the_rule_and_the_threshold(tmp_path: Path) -> None:
    cf = UserCFScorer(UserCFConfig(k=3, min_overlap=2))
    cf.fit(_data(threshold=5.0), seed=0, device="cpu")
    cf.save(tmp_path / "cf.pt")
    loaded = UserCFScorer.load(tmp_path / "cf.pt")
    assert loaded.config.score == "vote" and loaded.like_threshold == 5.0
    np.testing.assert_array_equal(
        loaded.score(np.array([0]), ALL_ITEMS), cf.score(np.array([0]), ALL_ITEMS)
    )


def test_a_checkpoint_without_a_threshold_loads_as_resnick(tmp_path: Path) -> None:
    # Checkpoints written before the vote rule hold no threshold and no "score" setting.
    old = _fitted(score="resnick")
    assert old.means is not None
    tensors = {**csr_to_tensors("ratings", DENSE), "means": torch.from_numpy(old.means)}
    config = '{"similarity": "pearson", "k": 3, "min_overlap": 2, "user_batch": 512}'
    save_checkpoint(tmp_path / "old.pt", Checkpoint("user_cf", config, tensors))
    loaded = UserCFScorer.load(tmp_path / "old.pt")
    assert loaded.config.score == "resnick"
    np.testing.assert_array_equal(
        loaded.score(np.array([0]), ALL_ITEMS), old.score(np.array([0]), ALL_ITEMS)
    )


@pytest.mark.parametrize("rule", ["vote", "resnick"])
def test_user_batches_do_not_change_the_scores(rule: str) -> None:
    users = np.array([0, 1, 2, 3])
    items = np.tile(np.arange(5), (4, 1))
    whole = _fitted(score=rule).score(users, items)
    one_by_one = _fitted(score=rule, user_batch=1).score(users, items)
    np.testing.assert_allclose(one_by_one, whole)
