"""Hand-computed cases for models/trust_credit.py (FORMULAS.md §5-6; credit RECONSTRUCTED)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.trust_credit import top_contributors

NAN = np.nan

# Four users x four items on a 1-5 scale (as the Resnick cases of test_cf.py).
#        i0  i1  i2  i3   mean
# u0:     4   2   .   .    3
# u1:     5   .   4   3    4
# u2:     2   .   5   5    4
# u3:     .   1   .   3    2
RN = [[4, 2, NAN, NAN], [5, NAN, 4, 3], [2, NAN, 5, 5], [NAN, 1, NAN, 3]]
NEIGHBOURS = np.array([[1, 2, -1], [3, 1, -1], [1, -1, -1]])
WEIGHTS = np.array([[0.8, 0.4, 0.9], [-0.5, 1.0, NAN], [1.0, NAN, NAN]])


def csr(rows: list[list[float]]) -> sp.csr_matrix:
    a = np.array(rows, dtype=float)
    r, c = np.nonzero(~np.isnan(a))
    return sp.csr_matrix((a[r, c], (r, c)), shape=a.shape)


def test_top_contributors_order_and_limit() -> None:
    R = csr(RN)
    # Row 1: |w| order u1 (1.0), u3 (0.5); i0 u1; i1 u3; i3 both; i2 u1
    assert top_contributors(R, NEIGHBOURS, WEIGHTS, 1, np.array([0, 1, 3, 2])) == [
        [1],
        [3],
        [1, 3],
        [1],
    ]
    assert top_contributors(R, NEIGHBOURS, WEIGHTS, 1, np.array([3]), limit=1) == [[1]]
    assert top_contributors(R, NEIGHBOURS, WEIGHTS, 0, np.array([1])) == [[]]


def test_top_contributors_vouchers_pushed_the_prediction_up() -> None:
    R = csr(RN)
    # Row 0, w = 0.8 (u1, r̄ 4), 0.4 (u2, r̄ 4): i0 u1 +1 up, u2 -2 down; i2 u1 0 (no push),
    # u2 +1 up; i3 u1 -1 down, u2 +1 up.
    got = top_contributors(R, NEIGHBOURS, WEIGHTS, 0, np.array([0, 2, 3]), only="vouchers")
    assert got == [[1], [2], [2]]
    # Row 1, u1 w = 1.0 (r̄ 4), u3 w = -0.5 (r̄ 2): a negative weight pushes up from below the
    # mean. i1: u3 (1 - 2)(-0.5) = +0.5 up; i3: u1 -1, u3 (3 - 2)(-0.5) = -0.5, nobody;
    # i0: u1 +1; i2: u1 0, nobody.
    got = top_contributors(R, NEIGHBOURS, WEIGHTS, 1, np.array([1, 3, 0, 2]), only="vouchers")
    assert got == [[3], [], [1], []]
    # Every voucher is a rater: raters keep them all, in the same |w| order.
    raters = top_contributors(R, NEIGHBOURS, WEIGHTS, 1, np.array([1, 3, 0, 2]))
    assert raters == [[3], [1, 3], [1], [1]]
