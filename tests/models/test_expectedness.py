"""Tests for models/expectedness.py: co-occurrence, expectedness (MODELS.md 1.5) and the pools."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.expectedness import (
    cooccurrence,
    expectedness,
    expectedness_pools,
    popularity_share,
    sample_row_items,
)

# 4 users x 5 items; item 4 is never rated.
HISTORY = sp.csr_matrix(
    np.array(
        [
            [5, 3, 0, 0, 0],
            [4, 0, 2, 0, 0],
            [0, 1, 4, 5, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=float,
    )
)


def _direct_expectedness(x: np.ndarray, mu: float) -> np.ndarray:
    """The paper's formula term by term (a slow loop, fine on 4 x 5)."""
    b = (x != 0).astype(float)
    n = b.T @ b
    np.fill_diagonal(n, 0.0)
    pi = b.sum(axis=0) / b.sum()
    out = np.zeros_like(b)
    for u in range(b.shape[0]):
        hist = np.flatnonzero(b[u])
        if len(hist) == 0:
            out[u] = pi
            continue
        for h in hist:
            out[u] += (n[:, h] + mu * pi) / (n[:, h].sum() + mu) / len(hist)
    return out


def test_cooccurrence_counts_users_holding_both_items() -> None:
    n = cooccurrence(HISTORY).toarray()
    assert n[0, 1] == 1 and n[1, 2] == 1 and n[2, 3] == 1 and n[0, 2] == 1
    assert n[0, 3] == 0
    assert np.all(np.diag(n) == 0)
    np.testing.assert_array_equal(n, n.T)


def test_popularity_share_is_a_distribution() -> None:
    pi = popularity_share(HISTORY)
    np.testing.assert_allclose(pi, [2 / 7, 2 / 7, 2 / 7, 1 / 7, 0.0])


@pytest.mark.parametrize("mu", [1.0, 0.5])
def test_expectedness_matches_the_formula_term_by_term(mu: float) -> None:
    users = np.arange(4)
    got = expectedness(HISTORY, users, mu=mu, log=False)
    np.testing.assert_allclose(got, _direct_expectedness(HISTORY.toarray(), mu), rtol=1e-12)
    # Σ_i p̃(i|h) = 1 for every h, so each row is a distribution.
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_log_expectedness_and_empty_history() -> None:
    logs = expectedness(HISTORY, np.array([0, 3]), mu=1.0, log=True)
    probs = expectedness(HISTORY, np.array([0, 3]), mu=1.0, log=False)
    finite = probs > 0
    np.testing.assert_allclose(logs[finite], np.log(probs[finite]))
    np.testing.assert_allclose(probs[1], popularity_share(HISTORY))  # empty history -> prior
    assert logs[1, 4] == -np.inf  # never rated, never co-occurs


def test_pools_split_by_expectedness_and_skip_excluded_items() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((3, 20))
    exclude = sp.csr_matrix(np.eye(3, 20) + np.eye(3, 20, k=5))  # 2 excluded per row
    pools = expectedness_pools(scores, np.arange(20), exclude, frac=0.3)
    np.testing.assert_array_equal(pools.n_eligible, [18, 18, 18])
    np.testing.assert_array_equal(pools.k, [5, 5, 5])
    top = pools.sample(200, rng, "expected")
    bottom = pools.sample(200, rng, "unexpected")
    for b in range(3):
        assert scores[b, top[b]].min() > scores[b, bottom[b]].max()
        assert not set(top[b]) & {b, b + 5} and not set(bottom[b]) & {b, b + 5}
        assert len(set(top[b])) == 5  # 200 draws cover the whole 5-item pool


def test_pools_map_back_to_candidate_ids() -> None:
    scores = np.array([[0.0, 9.0, 1.0, 8.0, 2.0, 7.0]])
    pools = expectedness_pools(scores, np.array([1, 3, 5, 0]), None, frac=0.5)
    np.testing.assert_array_equal(pools.order[0], [1, 3, 5, 0])
    draws = pools.sample(50, np.random.default_rng(1), "unexpected")
    assert set(draws[0]) == {5, 0}


def test_pools_reject_a_user_with_nothing_eligible() -> None:
    with pytest.raises(ValueError, match="no eligible"):
        expectedness_pools(np.zeros((1, 2)), np.arange(2), sp.csr_matrix(np.ones((1, 2))))


def test_sample_row_items_draws_only_stored_items() -> None:
    draws = sample_row_items(HISTORY, np.array([2, 0]), 100, np.random.default_rng(0))
    assert set(draws[0]) == {1, 2, 3} and set(draws[1]) == {0, 1}
    with pytest.raises(ValueError, match="nothing to sample"):
        sample_row_items(HISTORY, np.array([3]), 1, np.random.default_rng(0))
