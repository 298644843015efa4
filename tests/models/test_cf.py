"""Hand-computed cases for models/cf.py (FORMULAS.md §1-3, §6, §8)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp

import models.cf as cf
from models.cf import (
    confidence,
    cross_domain_similarity,
    domain_correlation,
    neighbourhood_scores,
    pearson,
    rating_mask,
    user_means,
)

NAN = np.nan


def csr(rows: list[list[float]]) -> sp.csr_matrix:
    """Dense rows with NaN = no rating -> CSR whose pattern is exactly the non-NaN cells."""
    a = np.array(rows, dtype=float)
    r, c = np.nonzero(~np.isnan(a))
    return sp.csr_matrix((a[r, c], (r, c)), shape=a.shape)


# Four users x five items.
#        i0   i1   i2   i3   i4      I_u            mean over I_u
# u0:    5    3    4    .    1      {0,1,2,4}      13/4 = 3.25
# u1:    3    1    2    3    .      {0,1,2,3}       9/4 = 2.25
# u2:    4    3    .    5    4      {0,1,3,4}      16/4 = 4
# u3:    .    .    4    4    .      {2,3}           4   (flat: zero variance)
R4 = [
    [5, 3, 4, NAN, 1],
    [3, 1, 2, 3, NAN],
    [4, 3, NAN, 5, 4],
    [NAN, NAN, 4, 4, NAN],
]
# Co-rated Pearson:
# (u0,u1) over {0,1,2}: u0 5,3,4 - 4 = (1,-1,0); u1 3,1,2 - 2 = (1,-1,0) -> 2/sqrt(2*2) = 1
# (u0,u2) over {0,1,4}: u0 5,3,1 - 3 = (2,0,-2); u2 4,3,4 - 11/3 = (1/3,-2/3,1/3) -> 2/3 - 2/3 = 0
# (u1,u2) over {0,1,3}: u1 3,1,3 - 7/3 = (2/3,-4/3,2/3); u2 4,3,5 - 4 = (0,-1,1)
#         Sxy = 4/3 + 2/3 = 2, Sxx = 24/9, Syy = 2 -> 2/sqrt(16/3) = sqrt(3)/2
# (u0,u3), (u2,u3): |I_xy| = 1 -> NaN; (u1,u3) over {2,3}: u3 is flat -> NaN
CORATED = np.array(
    [
        [NAN, 1.0, 0.0, NAN],
        [1.0, NAN, np.sqrt(3) / 2, NAN],
        [0.0, np.sqrt(3) / 2, NAN, NAN],
        [NAN, NAN, NAN, NAN],
    ]
)
# Means over all of I_u:
# (u0,u1): u0 (1.75,-0.25,0.75), u1 (0.75,-1.25,-0.25): Sxy = 1.3125+0.3125-0.1875 = 1.4375,
#          Sxx = 3.0625+0.0625+0.5625 = 3.6875, Syy = 0.5625+1.5625+0.0625 = 2.1875
# (u0,u2): u0 (1.75,-0.25,-2.25), u2 (0,-1,0): Sxy = 0.25, Sxx = 8.1875, Syy = 1
# (u1,u2): u1 (0.75,-1.25,0.75), u2 (0,-1,1): Sxy = 1.25+0.75 = 2, Sxx = 2.6875, Syy = 2
ALL01 = 1.4375 / np.sqrt(3.6875 * 2.1875)
ALL02 = 0.25 / np.sqrt(8.1875)
ALL12 = 2.0 / np.sqrt(2.6875 * 2.0)
CO = np.array([[4, 3, 3, 1], [3, 4, 3, 2], [3, 3, 4, 1], [1, 2, 1, 2]])
# |r_x - r_y| <= 1 on co-rated items: (u0,u1) 2,2,2 -> 0; (u0,u2) 1,0,3 -> 2;
# (u0,u3) i2 0 -> 1; (u1,u2) 1,2,2 -> 1; (u1,u3) 2,1 -> 1; (u2,u3) i3 1 -> 1
AGREE = np.array([[4, 0, 2, 1], [0, 4, 1, 1], [2, 1, 4, 1], [1, 1, 1, 2]])


def test_rating_mask_and_means_use_the_stored_pattern() -> None:
    R = csr([[0.0, NAN, 2.0], [NAN, NAN, NAN]])
    assert R.nnz == 2  # the 0 rating is stored
    np.testing.assert_array_equal(rating_mask(R).toarray(), [[1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(user_means(R), [1.0, NAN])


def test_pearson_corated_hand_values() -> None:
    stats = pearson(csr(R4), np.arange(4), delta=1.0)
    np.testing.assert_allclose(stats.similarity, CORATED, atol=1e-12)
    np.testing.assert_array_equal(stats.co_counts, CO)
    np.testing.assert_array_equal(stats.agree_counts, AGREE)


def test_pearson_all_means_hand_values() -> None:
    stats = pearson(csr(R4), np.array([0, 1]), mean="all")
    np.testing.assert_allclose(stats.similarity[0, 1:3], [ALL01, ALL02], atol=1e-12)
    np.testing.assert_allclose(stats.similarity[1, 2], ALL12, atol=1e-12)
    assert np.isnan(stats.similarity[0, 0]) and np.isnan(stats.similarity[1, 3])
    assert stats.agree_counts is None


def test_pearson_min_common_and_significance() -> None:
    R = csr(R4)
    assert np.all(np.isnan(pearson(R, np.arange(4), min_common=4).similarity))
    # every defined pair has |I_xy| = 3: weight min(3, 5)/5 = 0.6
    weighted = pearson(R, np.arange(4), significance=5).similarity
    np.testing.assert_allclose(weighted, CORATED * 0.6, atol=1e-12)


def test_pearson_counts_a_stored_zero_rating() -> None:
    # The same ratings minus 1 (a 0-4 scale): u0's i4 becomes a stored 0. Co-rated Pearson is
    # shift-invariant, so nothing may change if masks come from the pattern.
    shifted = csr(R4)
    shifted.data -= 1.0
    assert np.sum(shifted.data == 0) == 2
    stats = pearson(shifted, np.arange(4), delta=1.0)
    np.testing.assert_allclose(stats.similarity, CORATED, atol=1e-12)
    np.testing.assert_array_equal(stats.co_counts, CO)
    np.testing.assert_array_equal(stats.agree_counts, AGREE)


def naive_pearson(dense: np.ndarray, mask: np.ndarray, rows: np.ndarray, mean: str) -> np.ndarray:
    """Per-pair double loop: the reference, kept in the test only."""
    mu = np.array([dense[u, mask[u]].mean() if mask[u].any() else NAN for u in range(len(mask))])
    out = np.full((len(rows), len(mask)), NAN)
    for b, x in enumerate(rows):
        for y in range(len(mask)):
            common = mask[x] & mask[y]
            if x == y or common.sum() < 2:
                continue
            a, c = dense[x, common], dense[y, common]
            a, c = (a - a.mean(), c - c.mean()) if mean == "corated" else (a - mu[x], c - mu[y])
            den = np.sqrt((a * a).sum() * (c * c).sum())
            if den > 1e-9:
                out[b, y] = (a * c).sum() / den
    return out


@pytest.mark.parametrize("mean", ["corated", "all"])
def test_pearson_matches_naive_loop_on_random_sparse(mean: str) -> None:
    rng = np.random.default_rng(7)
    mask = rng.random((40, 30)) < 0.3
    dense = np.where(mask, rng.integers(0, 6, mask.shape), 0).astype(float)  # stored 0s too
    r, c = np.nonzero(mask)
    R = sp.csr_matrix((dense[r, c], (r, c)), shape=mask.shape)
    rows = np.array([0, 5, 17, 39])
    got = pearson(R, rows, mean=mean)
    want = naive_pearson(dense, mask, rows, mean)
    np.testing.assert_array_equal(np.isnan(got.similarity), np.isnan(want))
    np.testing.assert_allclose(got.similarity, want, atol=1e-12)
    np.testing.assert_array_equal(got.co_counts, mask[rows].astype(int) @ mask.T.astype(int))


# Two domains over four shared users (NaN = no rating). Every user's joint mean is 3.
#        t0  t1  t2 | s0  s1        deviations from 3
# u0:     5   1   . |  4   2        t0 +2, t1 -2, s0 +1, s1 -1
# u1:     4   .   3 |  2   .        t0 +1, t2 0, s0 -1
# u2:     1   5   . |  .   3        t0 -2, t1 +2, s1 0
# u3:     .   2   . |  4   .        t1 -1, s0 +1
RT = [[5, 1, NAN], [4, NAN, 3], [1, 5, NAN], [NAN, 2, NAN]]
RS = [[4, 2], [2, NAN], [NAN, 3], [4, NAN]]
# Adjusted cosine over co-raters:
# (t0,s0) u0,u1: (2,1).(1,-1) = 1, Sxx 5, Syy 2 -> 1/sqrt(10)
# (t0,s1) u0,u2: (2,-2).(-1,0) = -2, Sxx 8, Syy 1 -> -2/sqrt(8)
# (t1,s0) u0,u3: (-2,-1).(1,1) = -3, Sxx 5, Syy 2 -> -3/sqrt(10)
# (t1,s1) u0,u2: (-2,2).(-1,0) = 2, Sxx 8, Syy 1 -> 2/sqrt(8)
# (t2,s0) only u1, (t2,s1) nobody: undefined.  Sum = -2/sqrt(10) over 4 defined of 6 pairs.
ADJ_SUM = -2 / np.sqrt(10)
# Pearson (co-rated means): two co-raters give +-1 or undefined:
# (t0,s0) (5,4)~(4,2) +1; (t0,s1) (5,1)~(2,3) -1; (t1,s0) s0 = (4,4) flat; (t1,s1) (1,5)~(2,3) +1.


@pytest.mark.parametrize("chunk", [1, 512, 2048])
def test_domain_correlation_adjusted_cosine(chunk: int) -> None:
    t, s = csr(RT), csr(RS)
    assert domain_correlation(t, s, chunk=chunk) == pytest.approx(ADJ_SUM / 4)
    # 512 by default: on MovieLens about 4x faster and 15x less memory than 2048
    assert inspect.signature(domain_correlation).parameters["chunk"].default == 512
    assert domain_correlation(t, s, denominator="all_pairs", chunk=chunk) == pytest.approx(
        ADJ_SUM / 6
    )


def test_domain_correlation_pearson_and_edge_cases() -> None:
    t, s = csr(RT), csr(RS)
    assert domain_correlation(t, s, method="pearson") == pytest.approx(1 / 3)
    assert domain_correlation(t, s, method="pearson", denominator="all_pairs") == pytest.approx(
        1 / 6
    )
    assert domain_correlation(t, s, min_common=3) == 0.0  # no pair has 3 co-raters
    assert domain_correlation(t, t) == 1.0  # cor(t,t) = 1
    with pytest.raises(ValueError):
        domain_correlation(t, csr([[1.0]]))


def test_cross_domain_similarity_nan_handling() -> None:
    sim_t = np.array([[0.5, NAN, NAN, 0.2]])
    sims_s = [np.array([[0.8, 0.4, NAN, NAN]]), np.array([[1.0, 1.0, 1.0, 1.0]])]
    # col0 (0.5 + 0.5*0.8)/(1 + 0.5) = 0.6; col1 0.5*0.4/0.5 = 0.4; col2 only the cor<=0
    # source is defined -> NaN; col3 0.2/1. The second source (cor -0.3) never counts.
    got = cross_domain_similarity(sim_t, sims_s, [0.5, -0.3])
    np.testing.assert_allclose(got, [[0.6, 0.4, NAN, 0.2]])
    np.testing.assert_allclose(cross_domain_similarity(sim_t, [], []), sim_t)


def test_confidence() -> None:
    got = confidence(np.array([[3, 0, 2], [1, 1, 1]]), np.array([4, 0]))
    np.testing.assert_allclose(got, [[0.75, 0.0, 0.5], [0.0, 0.0, 0.0]])


# Resnick: four users x four items on a 1-5 scale.
#        i0  i1  i2  i3   mean
# u0:     4   2   .   .    3
# u1:     5   .   4   3    4
# u2:     2   .   5   5    4
# u3:     .   1   .   3    2
RN = [[4, 2, NAN, NAN], [5, NAN, 4, 3], [2, NAN, 5, 5], [NAN, 1, NAN, 3]]
NEIGHBOURS = np.array([[1, 2, -1], [3, 1, -1], [1, -1, -1]])
WEIGHTS = np.array([[0.8, 0.4, 0.9], [-0.5, 1.0, NAN], [1.0, NAN, NAN]])
QUERY_MEANS = np.array([3.0, NAN, 4.5])
# Row 0 (r̄_x = 3; den = 1.2 where both rated):
#   i0: 0.8*(+1) + 0.4*(-2) = 0 -> 3;    rel (0.8*5 + 0.4*2)/1.2 = 4
#   i1: nobody -> NaN;  i2: 0.8*0 + 0.4*1 = 0.4 -> 3 + 1/3; rel (3.2 + 2)/1.2
#   i3: 0.8*(-1) + 0.4*(+1) = -0.4 -> 3 - 1/3;             rel (2.4 + 2)/1.2
# Row 1 (r̄_x NaN -> level (0.5*2 + 1.0*4)/1.5 = 10/3):
#   i0: u1 +1 -> 10/3 + 1, rel 5;  i1: u3 (-0.5)*(-1)/0.5 = +1 -> 10/3 + 1, rel -0.5*1/0.5 = -1
#   i2: u1 0 -> 10/3, rel 4;        i3: (-0.5*1 + 1*(-1))/1.5 = -1 -> 7/3, rel (-1.5 + 3)/1.5 = 1
# Row 2 (r̄_x = 4.5): i0: 4.5 + 1 = 5.5 clipped to 5; i2: 4.5; i3: 3.5
PRED = np.array(
    [
        [3.0, NAN, 3 + 1 / 3, 3 - 1 / 3],
        [10 / 3 + 1, 10 / 3 + 1, 10 / 3, 7 / 3],
        [5.0, NAN, 4.5, 3.5],
    ]
)
REL = np.array([[4.0, NAN, 5.2 / 1.2, 4.4 / 1.2], [5.0, -1.0, 4.0, 1.0], [5.0, NAN, 4.0, 3.0]])
SUPPORT = np.array([[2, 0, 2, 2], [1, 1, 1, 2], [1, 0, 1, 1]])


def test_neighbourhood_scores_hand_values() -> None:
    got = neighbourhood_scores(csr(RN), NEIGHBOURS, WEIGHTS, QUERY_MEANS, (1.0, 5.0))
    np.testing.assert_allclose(got.prediction, PRED, atol=1e-12)
    np.testing.assert_allclose(got.relevance, REL, atol=1e-12)
    np.testing.assert_array_equal(got.support, SUPPORT)
    assert got.contributors is not None
    np.testing.assert_allclose(got.contributors.toarray()[1], [0.0, 1.0, 0.0, -0.5])


def test_neighbourhood_scores_count_stored_zero_ratings() -> None:
    # Shift every rating and r̄_x by -1 (scale 0-4): u3's i1 becomes a stored 0. Support is
    # unchanged and, away from the clip, predictions move by exactly -1. Relevance moves by
    # -Σw/Σ|w|: -1 in row 0 (positive weights); in row 1 i1 (w = -0.5 alone) by +1 -> 0 and
    # i3 (w = -0.5, 1.0) by -0.5/1.5 -> 1 - 1/3.
    R = csr(RN)
    R.data -= 1.0
    got = neighbourhood_scores(R, NEIGHBOURS[:2], WEIGHTS[:2], QUERY_MEANS[:2] - 1, (0.0, 4.0))
    np.testing.assert_array_equal(got.support, SUPPORT[:2])
    np.testing.assert_allclose(got.prediction, PRED[:2] - 1, atol=1e-12)
    np.testing.assert_allclose(got.relevance[0], REL[0] - 1, atol=1e-12)
    np.testing.assert_allclose(got.relevance[1], [4.0, 0.0, 3.0, 2 / 3], atol=1e-12)


def test_neighbourhood_scores_rejects_duplicate_neighbours() -> None:
    with pytest.raises(ValueError):
        neighbourhood_scores(csr(RN), np.array([[1, 1]]), np.ones((1, 2)), np.ones(1), (1, 5))


def test_agree_counts_in_small_batches_match_dense_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((25, 20)) < 0.4
    dense = np.where(mask, rng.choice([0.0, 0.5, 1.5, 2.0, 3.7, 4.7], mask.shape), 0.0)
    r, c = np.nonzero(mask)
    R = sp.csr_matrix((dense[r, c], (r, c)), shape=mask.shape)
    rows = np.array([2, 3, 24])
    close = np.abs(dense[rows][:, None, :] - dense[None, :, :]) <= 1.0 + 1e-9  # (B, U, I)
    want = np.sum(close & mask[rows][:, None, :] & mask[None, :, :], axis=2)
    monkeypatch.setattr(cf, "_TRIPLE_BUDGET", 7)  # forces many batches
    np.testing.assert_array_equal(pearson(R, rows, delta=1.0).agree_counts, want)
