"""Hand-computed cases for models/components.py (FORMULAS.md §7-9)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.components import (
    cooccurrence,
    inverse_user_frequency,
    minmax_within,
    novelty_score,
    npmi_max,
    percentile_within,
    relevance01,
    unexpectedness01,
)

NAN = np.nan


def test_iuf_and_novelty_score() -> None:
    # |U| = 4: counts 0 (floored to 1), 1, 2, 4 -> log 4, log 4, log 2, 0
    iuf = inverse_user_frequency(np.array([0, 1, 2, 4]), 4)
    np.testing.assert_allclose(iuf, [np.log(4), np.log(4), np.log(2), 0.0])
    # IF = support/|N_x| = (0.5, 0.25, 0, 1) in row 0; a user without neighbours gets 0
    ns = novelty_score(np.array([[2, 1, 0, 4], [0, 0, 0, 0]]), np.array([4, 0]), iuf)
    np.testing.assert_allclose(ns, [[0.5 * np.log(4), 0.25 * np.log(4), 0, 0], [0, 0, 0, 0]])


def test_percentile_within_ties_single_and_masks() -> None:
    values = np.array(
        [
            [3.0, 1.0, 2.0, 2.0, 9.0],  # candidates 3,1,2,2: ranks 4,1,2.5,2.5 -> (r-1)/3
            [7.0, 0.0, 0.0, 0.0, 0.0],  # a single candidate -> 1.0
            [5.0, 5.0, NAN, 1.0, 1.0],  # NaN is no candidate; 5,5 tie -> ranks 1.5 -> 0.5
            [1.0, 2.0, 3.0, 4.0, 5.0],  # no candidate at all
        ]
    )
    mask = np.array(
        [
            [1, 1, 1, 1, 0],
            [1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    want = np.array(
        [
            [1.0, 0.0, 0.5, 0.5, NAN],
            [1.0, NAN, NAN, NAN, NAN],
            [0.5, 0.5, NAN, NAN, NAN],
            [NAN] * 5,
        ]
    )
    np.testing.assert_allclose(percentile_within(values, mask), want)


def test_minmax_within() -> None:
    values = np.array([[3.0, 1.0, 2.0, 2.0, 9.0], [7.0, 0, 0, 0, 0], [5.0, 5.0, 1, 1, 1]])
    mask = np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], dtype=bool)
    # row 0: (v - 1)/2; row 1: single -> 1; row 2: equal candidates -> 0.5
    want = np.array(
        [[1.0, 0.0, 0.5, 0.5, NAN], [1.0, NAN, NAN, NAN, NAN], [0.5, 0.5, NAN, NAN, NAN]]
    )
    np.testing.assert_allclose(minmax_within(values, mask), want)


def test_relevance01() -> None:
    got = relevance01(np.array([[1.0, 3.0, 5.5, NAN, 0.0]]), (1.0, 5.0))
    np.testing.assert_allclose(got, [[0.0, 0.5, 1.0, NAN, 0.0]])
    with pytest.raises(ValueError):
        relevance01(np.zeros((1, 1)), (5.0, 1.0))


# Five users x four items (a stored 0 still counts as an interaction):
# u0: i0, i1(=0)   u1: i0, i1   u2: i1, i2   u3: i2   u4: i3
# |U_i| = 2, 3, 2, 1;  co01 = 2, co12 = 1, every other pair 0.
B5 = sp.csr_matrix(
    (np.array([1.0, 0.0, 1, 1, 1, 1, 1, 1]), ([0, 0, 1, 1, 2, 2, 3, 4], [0, 1, 0, 1, 1, 2, 2, 3])),
    shape=(5, 4),
)
# NPMI(0,1): p01 = 2/5, p0 = 2/5, p1 = 3/5 -> log(5/3) / log(5/2)
# NPMI(2,1): p21 = 1/5, p2 = 2/5, p1 = 3/5 -> log(5/6) / log(5)
# NPMI(0,2) = NPMI(3,*) = -1 (never together)
N01 = np.log(5 / 3) / np.log(5 / 2)
N21 = np.log(5 / 6) / np.log(5)


def test_cooccurrence_counts() -> None:
    want = np.array([[2, 2, 0, 0], [2, 3, 1, 0], [0, 1, 2, 0], [0, 0, 0, 1]])
    co = cooccurrence(B5)
    np.testing.assert_array_equal(co.toarray(), want)
    assert np.issubdtype(co.dtype, np.integer)


def test_npmi_max_hand_values() -> None:
    co = cooccurrence(B5)
    candidates = np.array(
        [
            [1, 0, 1, 1],  # history {1}:    0 -> N01, 2 -> N21, 3 -> -1
            [1, 0, 0, 1],  # history {1, 2}: 0 -> max(N01, -1), 3 -> -1
            [1, 1, 0, 0],  # empty history:  -1 everywhere
        ],
        dtype=bool,
    )
    got = npmi_max(co, 5, candidates, [np.array([1]), np.array([1, 2]), np.array([], int)])
    want = np.array([[N01, NAN, N21, -1.0], [N01, NAN, NAN, -1.0], [-1.0, -1.0, NAN, NAN]])
    np.testing.assert_allclose(got, want)
    assert N01 > 0 > N21 > -1


def test_npmi_is_one_when_every_user_has_both() -> None:
    # Two users, both rated i0 and i1: p(0,1) = 1 -> NPMI = 1 (0/0 by the formula)
    co = cooccurrence(sp.csr_matrix(np.ones((2, 2))))
    got = npmi_max(co, 2, np.array([[True, False]]), [np.array([1])])
    np.testing.assert_allclose(got, [[1.0, NAN]])


def test_npmi_max_matches_dense_reference() -> None:
    rng = np.random.default_rng(5)
    dense = rng.random((30, 12)) < 0.3
    r, c = np.nonzero(dense)
    co = cooccurrence(sp.csr_matrix((np.ones(r.size), (r, c)), shape=dense.shape))
    counts = dense.T.astype(float) @ dense.astype(float)
    p, pij = np.diag(counts) / 30, counts / 30
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.log(pij / np.outer(p, p)) / -np.log(pij)
    ref = np.where(pij == 0, -1.0, np.where(pij == 1, 1.0, ref))
    histories = [np.flatnonzero(dense[u]) for u in range(4)]
    cand = ~dense[:4]
    got = npmi_max(co, 30, cand, histories)
    for u in range(4):
        want = ref[np.ix_(np.flatnonzero(cand[u]), histories[u])].max(axis=1, initial=-1.0)
        np.testing.assert_allclose(got[u, cand[u]], want, atol=1e-12)
        assert np.all(np.isnan(got[u, ~cand[u]]))


def test_unexpectedness01() -> None:
    np.testing.assert_allclose(unexpectedness01(np.array([-1.0, 0.0, 1.0, NAN])), [1, 0.5, 0, NAN])
