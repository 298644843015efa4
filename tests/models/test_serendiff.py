"""SerenDiff scorer: ring matching, training targets, fit/score/save (MODELS.md 2.5, 2.8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.portrait import GRID
from models.scoring import InteractionData
from models.serendiff import (
    SerenDiffConfig,
    SerenDiffScorer,
    ring_match_scores,
    training_targets,
)

TINY = SerenDiffConfig(
    embedding_dim=8,
    width=16,
    time_dim=32,
    groups=4,
    epochs=12,
    lr=3e-3,
    timesteps=50,
    sample_steps=4,
    batch_size=16,
    n_samples=2,
)


def tiny_data(
    n_users: int = 24, n_items: int = 30, per_user: int = 10, seed: int = 0
) -> InteractionData:
    """Taste-driven ratings over two domains with timestamps and a few serendipity labels."""
    rng = np.random.default_rng(seed)
    util = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))
    logits = util + rng.gumbel(size=util.shape)
    items = np.argsort(-logits, axis=1)[:, :per_user]  # (U, per_user) distinct items
    users = np.repeat(np.arange(n_users), per_user)
    cols = items.ravel()
    values = np.clip(np.round(3.0 + util[users, cols]), 1.0, 5.0)
    times = rng.permutation(users.size).astype(float)
    ratings = sp.csr_matrix((values, (users, cols)), shape=(n_users, n_items))
    stamps = sp.csr_matrix((times, (users, cols)), shape=(n_users, n_items))
    domain = np.arange(n_items) % 2
    pick = (values >= 4) & (domain[cols] == 1) & (rng.random(users.size) < 0.5)
    seren = sp.csr_matrix((np.ones(pick.sum()), (users[pick], cols[pick])), shape=ratings.shape)
    return InteractionData(ratings, domain, 1, 4.0, seren, stamps)


@pytest.fixture(scope="module")
def fitted() -> tuple[SerenDiffScorer, dict[str, float], InteractionData]:
    data = tiny_data()
    scorer = SerenDiffScorer(TINY)
    log = scorer.fit(data, seed=7, device="cpu")
    return scorer, log, data


def _candidates(n_users: int, n_items: int, c: int = 12) -> tuple[np.ndarray, np.ndarray]:
    users = np.arange(n_users)
    items = (np.arange(c)[None, :] * 2 + 1 + users[:, None]) % n_items
    return users, items


def test_ring_matching_orders_same_cell_then_rings_then_cosine() -> None:
    x0 = torch.zeros(1, 2, GRID, GRID)
    x0[0, :, 5, 5] = torch.tensor([3.0, 0.0])  # the strongest generated point, cell 55
    x0[0, :, 0, 0] = torch.tensor([0.0, 0.1])  # a weak one, not selected with P = 1
    cells = torch.tensor([[55, 55, 66, 44, 77, 0]])  # rings 0, 0, 1, 1, 2, 5
    emb = torch.tensor([[[1.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.1], [1.0, 0.0], [0.0, 1.0]]])
    scores = ring_match_scores(x0, emb, cells, n_cells=1)
    order = torch.argsort(scores[0], descending=True).tolist()
    assert order == [1, 0, 3, 2, 4, 5]
    np.testing.assert_allclose(scores[0, 1].item(), 1.0, atol=1e-6)
    np.testing.assert_allclose(scores[0, 2].item(), -1.0 - 2.0, atol=1e-6)
    np.testing.assert_allclose(scores[0, 5].item(), 0.0 - 2.0 * 5, atol=1e-6)  # ring to (5,5)
    # With P = 2 the weak point at (0, 0) becomes the nearest one for the last candidate.
    scores2 = ring_match_scores(x0, emb, cells, n_cells=2)
    np.testing.assert_allclose(scores2[0, 5].item(), 1.0, atol=1e-6)


def test_ring_matching_uses_the_occupancy_channel_when_asked() -> None:
    x0 = torch.zeros(1, 3, GRID, GRID)
    x0[0, :2, 2, 2] = torch.tensor([5.0, 0.0])  # big vector, low occupancy
    x0[0, 2] = -1.0
    x0[0, 2, 7, 7] = 1.0
    x0[0, :2, 7, 7] = torch.tensor([0.0, 0.5])
    cells = torch.tensor([[22, 77]])
    emb = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    by_norm = ring_match_scores(x0, emb, cells, 1)
    by_occ = ring_match_scores(x0, emb, cells, 1, occupancy=True)
    assert by_norm[0, 0] > by_norm[0, 1]
    assert by_occ[0, 1] > by_occ[0, 0]


def test_training_targets_from_labels_and_fallback() -> None:
    data = tiny_data()
    users, items = training_targets(data, max_per_user=3)
    assert users.size == data.serendipitous.nnz
    assert np.all(np.asarray(data.serendipitous[users, items]).ravel() == 1)
    data.serendipitous = None
    users, items = training_targets(data, max_per_user=2)
    assert np.bincount(users).max() <= 2
    assert np.all(np.asarray(data.ratings[users, items]).ravel() >= 4.0)
    assert np.all(data.item_domain[items] == 1)
    # They are each user's most recent liked target items.
    for u in np.unique(users)[:5]:
        row = data.ratings[u].toarray().ravel()
        times = data.timestamps[u].toarray().ravel()
        liked = np.flatnonzero((row >= 4) & (data.item_domain == 1))
        recent = liked[np.argsort(-times[liked])][:2]
        assert set(items[users == u]) == set(recent)


def test_fit_log_and_score_shapes(
    fitted: tuple[SerenDiffScorer, dict[str, float], InteractionData],
) -> None:
    scorer, log, data = fitted
    assert log["examples"] == data.serendipitous.nnz
    assert log["epochs"] == TINY.epochs
    assert 0.0 < log["loss"] < 0.8  # the zero-initialised net starts at E||ε||²/n = 1
    users, items = _candidates(5, data.n_items)
    scores = scorer.score(users, items)
    assert scores.shape == (5, 12) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    assert scorer.generate(users[:2]).shape == (2, TINY.n_samples, 8, GRID, GRID)
    cells = scorer.candidate_cells(users, items)
    assert cells.shape == (5, 12) and cells.min() >= 0 and cells.max() < GRID * GRID


def test_scores_do_not_depend_on_batching(
    fitted: tuple[SerenDiffScorer, dict[str, float], InteractionData],
) -> None:
    scorer, _, data = fitted
    users, items = _candidates(4, data.n_items)
    together = scorer.score(users, items)
    alone = np.vstack([scorer.score(users[i : i + 1], items[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)


def test_same_seed_same_scores_other_seed_differs(
    fitted: tuple[SerenDiffScorer, dict[str, float], InteractionData],
) -> None:
    scorer, _, data = fitted
    users, items = _candidates(3, data.n_items)
    again = SerenDiffScorer(TINY)
    again.fit(data, seed=7, device="cpu")
    np.testing.assert_array_equal(again.score(users, items), scorer.score(users, items))
    other = SerenDiffScorer(TINY)
    other.fit(data, seed=8, device="cpu")
    assert not np.allclose(other.score(users, items), scorer.score(users, items))


def test_save_load_round_trip(
    fitted: tuple[SerenDiffScorer, dict[str, float], InteractionData], tmp_path: Path
) -> None:
    scorer, _, data = fitted
    path = tmp_path / "serendiff.pt"
    scorer.save(path)
    loaded = SerenDiffScorer.load(path, device="cpu")
    assert loaded.config == scorer.config
    users, items = _candidates(4, data.n_items)
    np.testing.assert_array_equal(loaded.score(users, items), scorer.score(users, items))


@pytest.mark.parametrize("user_repr", ["embedding", "sequence"])
def test_ablation_conditions_change_the_scores(
    user_repr: str, fitted: tuple[SerenDiffScorer, dict[str, float], InteractionData]
) -> None:
    scorer, _, data = fitted
    variant = SerenDiffScorer(TINY.model_copy(update={"user_repr": user_repr}))
    variant.fit(data, seed=7, device="cpu")
    users, items = _candidates(3, data.n_items)
    scores = variant.score(users, items)
    assert scores.shape == (3, 12) and np.all(np.isfinite(scores))
    assert not np.allclose(scores, scorer.score(users, items))


def test_fit_without_any_target_is_an_error() -> None:
    data = tiny_data()
    data.serendipitous = None
    data.like_threshold = 6.0  # nothing is liked
    with pytest.raises(ValueError, match="no training examples"):
        SerenDiffScorer(TINY).fit(data, seed=0, device="cpu")
