"""PURS scorer: training windows, train AUC, fit/score/save (MODELS.md 3.4-3.5, 3.7)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from models.portrait import ordered_interactions
from models.purs import PURSScorer, last_windows, roc_auc, sliding_windows
from models.purs_net import PURSConfig
from models.scoring import InteractionData

TINY = PURSConfig(hidden=16, epochs=2, batch_size=32)


def tiny_data(
    n_users: int = 20, n_items: int = 40, per_user: int = 16, seed: int = 0
) -> InteractionData:
    """Taste-driven ratings with timestamps; about half of them are likes."""
    rng = np.random.default_rng(seed)
    util = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))
    items = np.argsort(-(util + rng.gumbel(size=util.shape)), axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users), per_user)
    cols = items.ravel()
    values = np.clip(np.round(3.5 + util[users, cols]), 1.0, 5.0)
    times = rng.permutation(users.size).astype(float)
    ratings = sp.csr_matrix((values, (users, cols)), shape=(n_users, n_items))
    stamps = sp.csr_matrix((times, (users, cols)), shape=(n_users, n_items))
    return InteractionData(ratings, np.zeros(n_items, dtype=np.int64), 0, 4.0, None, stamps)


@pytest.fixture(scope="module")
def fitted() -> tuple[PURSScorer, dict[str, float], InteractionData]:
    data = tiny_data()
    scorer = PURSScorer(TINY)
    log = scorer.fit(data, seed=3, device="cpu")
    return scorer, log, data


def test_windows_hold_the_items_before_the_target_no_leak() -> None:
    items = np.array([10, 11, 12, 13, 14, 20, 21, 22])  # user 0: 5 rows, user 1: 3 rows
    position = np.array([0, 1, 2, 3, 4, 0, 1, 2])
    rows, hist = sliding_windows(items, position, window=3, min_history=2, pad=99)
    assert rows.tolist() == [2, 3, 4, 7]
    assert hist.tolist() == [[99, 10, 11], [10, 11, 12], [11, 12, 13], [99, 20, 21]]
    assert not np.any(hist == items[rows, None])  # the target is never in its own history
    rows, _ = sliding_windows(items, position, window=3, min_history=3, pad=99)
    assert rows.tolist() == [3, 4]


def test_windows_on_real_orderings_follow_timestamps() -> None:
    data = tiny_data()
    users, items, _, position = ordered_interactions(data.ratings, data.timestamps)
    rows, hist = sliding_windows(items, position, 10, 10, data.n_items)
    times = np.asarray(data.timestamps[users, items]).ravel()
    r = rows[0]
    assert hist[0].tolist() == items[r - 10 : r].tolist()
    assert np.all(times[r - 10 : r] < times[r])
    assert np.all(users[r - 10 : r] == users[r])


def test_last_windows_are_left_padded_most_recent_last() -> None:
    users = np.array([0, 0, 0, 1])
    items = np.array([5, 6, 7, 8])
    position = np.array([0, 1, 2, 0])
    out = last_windows(users, items, position, n_users=3, window=2, pad=9)
    assert out.tolist() == [[6, 7], [9, 8], [9, 9]]


def test_roc_auc_by_hand() -> None:
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert math.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_fit_log_and_score_shapes(
    fitted: tuple[PURSScorer, dict[str, float], InteractionData],
) -> None:
    scorer, log, data = fitted
    assert log["samples"] == data.n_users * (16 - 10)
    assert np.isfinite(log["loss"]) and 0.0 <= log["train_auc"] <= 1.0
    users = np.array([0, 4, 7])
    items = np.tile(np.arange(9), (3, 1))
    z, unexp = scorer.score_with_unexpectedness(users, items)
    assert z.shape == unexp.shape == (3, 9)
    np.testing.assert_array_equal(z, scorer.score(users, items))
    assert np.all(unexp >= 0) and np.all(np.isfinite(z))


def test_training_lowers_the_loss() -> None:
    data = tiny_data()
    short = PURSScorer(TINY.model_copy(update={"epochs": 1})).fit(data, seed=1, device="cpu")
    long = PURSScorer(TINY.model_copy(update={"epochs": 8})).fit(data, seed=1, device="cpu")
    assert long["loss"] < short["loss"]
    assert long["train_auc"] > 0.6


def test_lr_halves_when_train_auc_stalls() -> None:
    cfg = TINY.model_copy(update={"epochs": 3, "auc_tolerance": 1.0})  # always "stalled"
    log = PURSScorer(cfg).fit(tiny_data(), seed=0, device="cpu")
    assert log["lr"] == pytest.approx(1.0 / 2**2)  # epoch 1 has no previous AUC to compare


def test_same_seed_same_scores_other_seed_differs(
    fitted: tuple[PURSScorer, dict[str, float], InteractionData],
) -> None:
    scorer, _, data = fitted
    users, items = np.arange(4), np.tile(np.arange(10), (4, 1))
    again = PURSScorer(TINY)
    again.fit(data, seed=3, device="cpu")
    np.testing.assert_array_equal(again.score(users, items), scorer.score(users, items))
    other = PURSScorer(TINY)
    other.fit(data, seed=4, device="cpu")
    assert not np.allclose(other.score(users, items), scorer.score(users, items))


def test_save_load_round_trip(
    fitted: tuple[PURSScorer, dict[str, float], InteractionData], tmp_path: Path
) -> None:
    scorer, _, _ = fitted
    path = tmp_path / "purs.pt"
    scorer.save(path)
    loaded = PURSScorer.load(path, device="cpu")
    assert loaded.config == scorer.config
    users, items = np.arange(5), np.tile(np.arange(12), (5, 1))
    np.testing.assert_array_equal(loaded.score(users, items), scorer.score(users, items))


def test_too_short_histories_are_an_error() -> None:
    with pytest.raises(ValueError, match="more than 10 ratings"):
        PURSScorer(TINY).fit(tiny_data(per_user=8), seed=0, device="cpu")
