"""Portrait construction on hand-made data (MODELS.md 2.2, 2.8)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.portrait import (
    ANCHOR_CELL,
    GRID,
    N_CELLS,
    CooccurrenceTable,
    DecileBins,
    history_cells,
    history_matrix,
    item_embeddings,
    ordered_interactions,
    pool_cells,
    query_relations,
    target_grid,
    user_condition,
)

# Four users over five items; user 0's history, in time order, is items 0, 1, 2, 3.
#   n(0,1) = 2, n(0,2) = n(0,3) = n(0,4) = 1, n(1,2) = 2, n(1,3) = n(2,3) = 1
#   N_h = (5, 5, 4, 3, 1); item counts (3, 3, 2, 1, 1) of 10 ratings, π = counts / 10.
ROWS = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
COLS = [3, 1, 0, 2, 0, 1, 1, 2, 0, 4]
TIMES = [3.0, 1.0, 0.5, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
EMB = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def _ratings() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    ratings = sp.csr_matrix((np.full(10, 4.0), (ROWS, COLS)), shape=(4, 5))
    times = sp.csr_matrix((TIMES, (ROWS, COLS)), shape=(4, 5))
    return ratings, times


def _unit(emb: np.ndarray) -> np.ndarray:
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_ordered_interactions_sort_by_time_and_number_positions() -> None:
    ratings, times = _ratings()
    users, items, _, position = ordered_interactions(ratings, times)
    assert items[users == 0].tolist() == [0, 1, 2, 3]
    assert position[users == 0].tolist() == [0, 1, 2, 3]
    assert position[users == 3].tolist() == [0, 1]


def test_history_matrix_keeps_the_most_recent_items_oldest_first() -> None:
    ratings, times = _ratings()
    hist = history_matrix(ratings, times, max_len=3)
    assert hist[0].tolist() == [1, 2, 3]
    assert hist[1].tolist() == [0, 1, -1]


def test_cooccurrence_probability_matches_hand_counts() -> None:
    ratings, _ = _ratings()
    table = CooccurrenceTable.from_ratings(ratings, mu=1.0)
    got = table.prob(np.array([1, 2, 3, 4]), np.array([0, 1, 2, 2]))
    # p̃(q|h) = (n(q,h) + μ π(q)) / (N_h + μ)
    want = [(2 + 0.3) / 6, (2 + 0.2) / 6, (1 + 0.1) / 5, (0 + 0.1) / 5]
    np.testing.assert_allclose(got, want)
    # Leaving one user out removes one co-occurrence, one from N_h and one rating of q.
    left = table.prob(np.array([1]), np.array([0]), leave_out=True)
    np.testing.assert_allclose(left, [(1 + 2 / 9) / 5])


def test_prefix_expectedness_and_relevance_by_hand() -> None:
    ratings, times = _ratings()
    table = CooccurrenceTable.from_ratings(ratings, mu=1.0)
    hist = history_matrix(ratings, times, max_len=10)[:1]  # [[0, 1, 2, 3]]
    exp, rel = query_relations(table, _unit(EMB), hist, hist, causal=True)
    want_exp = [0.0, 2.3 / 6, (1.2 / 6 + 2.2 / 6) / 2, (1.1 / 6 + 1.1 / 6 + 1.1 / 5) / 3]
    np.testing.assert_allclose(exp[0], want_exp)
    # rel = (max cosine to an earlier item + 1) / 2
    np.testing.assert_allclose(rel[0], [0.0, 0.5, (np.sqrt(0.5) + 1) / 2, 0.5])


def test_candidate_relations_use_the_whole_history() -> None:
    ratings, _ = _ratings()
    table = CooccurrenceTable.from_ratings(ratings, mu=1.0)
    hist = np.array([[0, 1, -1]])
    exp, rel = query_relations(table, _unit(EMB), hist, np.array([[4, 2]]))
    np.testing.assert_allclose(exp[0], [(1.1 / 6 + 0.1 / 6) / 2, (1.2 / 6 + 2.2 / 6) / 2])
    np.testing.assert_allclose(rel[0], [0.5, (np.sqrt(0.5) + 1) / 2])


def test_hand_history_cells_put_the_first_item_in_the_top_cell() -> None:
    ratings, times = _ratings()
    table = CooccurrenceTable.from_ratings(ratings, mu=1.0)
    hist = history_matrix(ratings, times, max_len=10)[:1]
    exp, rel = query_relations(table, _unit(EMB), hist, hist, causal=True)
    bins = DecileBins(
        exp_edges=np.log([0.1, 0.15, 0.19, 0.2, 0.25, 0.3, 0.35, 0.38, 0.39]),
        rel_edges=np.arange(9) / 10 + 0.05,
    )
    cells = history_cells(hist, exp, rel, bins)
    # exp bins 8, 5, 3 for positions 1..3; rel bins 5, 9, 5
    assert cells[0].tolist() == [ANCHOR_CELL, 85, 59, 35]
    portrait = pool_cells(hist, cells, EMB.astype(np.float32))
    assert portrait.shape == (1, 3, GRID, GRID)
    np.testing.assert_allclose(portrait[0, :2, GRID - 1, GRID - 1], EMB[0])  # first item, (9, 9)
    np.testing.assert_allclose(portrait[0, :2, 8, 5], EMB[1])
    assert portrait[0, 2].sum() == pytest.approx(4 * np.log(2.0))
    assert np.count_nonzero(portrait[0, 2]) == 4


def test_cell_means_and_count_channel() -> None:
    hist = np.array([[0, 1, 2, 3], [4, -1, -1, -1]])
    cells = np.array([[99, 85, 85, 85], [0, -1, -1, -1]])
    grid = pool_cells(hist, cells, EMB.astype(np.float32))
    np.testing.assert_allclose(grid[0, :2, 8, 5], EMB[1:4].mean(axis=0), atol=1e-7)
    assert grid[0, 2, 8, 5] == pytest.approx(np.log(4.0))
    np.testing.assert_allclose(grid[1, :2, 0, 0], EMB[4])
    assert grid[1, 2, 0, 0] == pytest.approx(np.log(2.0))
    assert np.count_nonzero(grid[1, :, 1:, :]) == 0  # empty cells are 0


def test_decile_bins_split_scores_evenly_and_zeros_go_lowest() -> None:
    values = np.arange(100)
    bins = DecileBins.fit(np.exp(values / 10.0), values / 100.0)
    cells = bins.cells(np.exp(values / 10.0), values / 100.0)
    assert np.bincount(cells // GRID, minlength=GRID).tolist() == [10] * GRID
    assert np.bincount(cells % GRID, minlength=GRID).tolist() == [10] * GRID
    assert bins.cells(np.array([0.0]), np.array([1.0]))[0] == GRID - 1  # bin_exp 0, bin_rel 9


def test_user_condition_variants() -> None:
    emb = EMB.astype(np.float32)
    hist = np.array([[0, 1, 2, -1]])
    seq = user_condition("sequence", hist, emb)
    np.testing.assert_allclose(seq[0, :2, 0, :3].T, emb[:3])  # row-major, oldest first
    flat = user_condition("embedding", hist, emb)
    np.testing.assert_allclose(flat[0, :2, 4, 7], emb[:3].mean(axis=0))
    np.testing.assert_allclose(flat[0, 2], np.log(4.0), rtol=1e-6)
    with pytest.raises(ValueError):
        user_condition("portrait", hist, emb)


def test_target_grid_places_the_vector_and_occupancy() -> None:
    vec = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    grid = target_grid(np.array([0, 57]), vec, occupancy=True)
    assert grid.shape == (2, 3, GRID, GRID)
    np.testing.assert_allclose(grid[1, :2, 5, 7], vec[1])
    assert np.abs(grid[:, :2]).sum() == pytest.approx(10.0)
    assert (grid[1, 2] == 1).sum() == 1 and (grid[1, 2] == -1).sum() == N_CELLS - 1


def test_item_embeddings_are_standardised_and_reproducible() -> None:
    rng = np.random.default_rng(0)
    ratings = sp.random(40, 30, density=0.3, random_state=1, format="csr")
    a = item_embeddings(ratings, None, 8, rng)
    b = item_embeddings(ratings, None, 8, np.random.default_rng(5))
    assert a.shape == (30, 8) and a.dtype == np.float32
    np.testing.assert_allclose(a.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(a.std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    features = np.outer(np.arange(30.0), [1.0, 2.0, 0.0]) + rng.normal(0, 1e-3, (30, 3))
    pca = item_embeddings(ratings, features, 2, rng)
    assert pca.shape == (30, 2)
    assert abs(np.corrcoef(pca[:, 0], np.arange(30.0))[0, 1]) > 0.999
