"""Hand-computed cases for models/metrics.py (FORMULAS.md §11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.metrics import (
    coverage,
    hit_rate,
    mae,
    precision_recall_at_n,
    rmse,
    serendipity_at_n,
    unexpectedness_co_at_n,
    unexpectedness_pm_at_n,
)


def test_mae_rmse() -> None:
    # errors 1, 0, 2: MAE 3/3 = 1, RMSE sqrt(5/3)
    assert mae(np.array([1.0, 2, 3]), np.array([2.0, 2, 5])) == pytest.approx(1.0)
    assert rmse(np.array([1.0, 2, 3]), np.array([2.0, 2, 5])) == pytest.approx(math.sqrt(5 / 3))
    assert math.isnan(mae(np.array([]), np.array([])))
    assert math.isnan(rmse(np.array([]), np.array([])))
    with pytest.raises(ValueError):
        mae(np.ones(2), np.ones(3))


def test_precision_recall_f_macro() -> None:
    recommended = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    relevant = [{2, 4, 11}, set(), [9, 12]]
    # N = 3. u0: {1,2,3} ∩ REL = {2}: P 1/3, R 1/3. u1: empty REL, left out.
    # u2: {9,10} ∩ REL = {9}: P 1/3 (still /N), R 1/2.
    # P = 1/3, R = 5/12, F = 2·(1/3)(5/12)/(1/3 + 5/12) = 10/27 (F of the averages)
    p, r, f = precision_recall_at_n(recommended, relevant, 3)
    assert (p, r, f) == pytest.approx((1 / 3, 5 / 12, 10 / 27))
    # duplicates in a list count once; -1 padding is no item
    assert precision_recall_at_n([[2, 2, -1]], [{2}], 3) == pytest.approx((1 / 3, 1.0, 0.5))
    assert all(math.isnan(v) for v in precision_recall_at_n([[1]], [set()], 1))
    assert precision_recall_at_n([[1]], [{2}], 1) == (0.0, 0.0, 0.0)


def test_unexpectedness_co_at_n() -> None:
    # N = 2: u0 (0.2 + 0.4)/2 = 0.3, u1 1.0/2 = 0.5 (short list still /N) -> 0.4
    assert unexpectedness_co_at_n([[0.2, 0.4, 0.9], [1.0]], 2) == pytest.approx(0.4)
    assert math.isnan(unexpectedness_co_at_n([], 2))


def test_unexpectedness_pm_and_serendipity() -> None:
    rs = [[1, 2, 3], [4, 5, 6]]
    pm = [[2, 9, 1], [7, 8, 9]]
    # N = 2: u0 {1,2} \ {2,9} = {1} -> 1/2; u1 {4,5} \ {7,8} = {4,5} -> 1 -> mean 0.75
    assert unexpectedness_pm_at_n(rs, pm, 2) == pytest.approx(0.75)
    # N = 3: u0 {1,2,3} \ {2,9,1} = {3} -> 1/3; u1 3/3 -> mean 2/3
    assert unexpectedness_pm_at_n(rs, pm, 3) == pytest.approx(2 / 3)
    # Seren@2 with REL {1,3}, {5}: u0 {1} ∩ REL -> 1/2; u1 {4,5} ∩ {5} -> 1/2
    assert serendipity_at_n(rs, pm, [{1, 3}, {5}], 2) == pytest.approx(0.5)
    # only users with a non-empty REL count
    assert serendipity_at_n(rs, pm, [{1}, set()], 2) == pytest.approx(0.5)
    assert serendipity_at_n(rs, pm, [{2}, {7}], 2) == 0.0  # hits only in PM
    assert math.isnan(serendipity_at_n(rs, pm, [set(), set()], 2))


def test_hit_rate_and_coverage() -> None:
    assert hit_rate([True, False, True, True]) == 0.75
    assert math.isnan(hit_rate([]))
    assert coverage(np.array([[1, 2, -1], [2, 3, -1]]), 10) == pytest.approx(0.3)
