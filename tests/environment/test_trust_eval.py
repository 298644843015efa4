"""Trust AUC against a real trust network (environment/trust_eval.py), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from environment.trust_eval import mann_whitney_auc, trust_auc


def test_mann_whitney_counts_ties_as_half() -> None:
    # 0.9 beats all four negatives (4); 0.5 beats 0.0, 0.0, 0.2 and ties 0.5 (3.5);
    # 0.0 ties the two zeros (1): 8.5 of 12 pairs.
    auc = mann_whitney_auc(np.array([0.9, 0.5, 0.0]), np.array([0.5, 0.0, 0.0, 0.2]))
    assert auc == pytest.approx(8.5 / 12)
    assert mann_whitney_auc(np.array([1.0]), np.array([0.0])) == 1.0
    assert np.isnan(mann_whitney_auc(np.array([]), np.array([0.0])))


def test_unknown_pairs_score_zero_against_random_pairs() -> None:
    # Edges 0->1 (trust 0.9), 2->3 (no trust held: 0), 3->0 (0.5); learned trust on no
    # other pair, so every negative scores 0: AUC = (1 + 1/2 + 1) / 3.
    x, y, tau = np.array([0, 3, 1]), np.array([1, 0, 0]), np.array([0.9, 0.5, 0.0])
    edges = np.array([[0, 1], [2, 3], [3, 0]])
    auc = trust_auc(x, y, tau, edges, 4, np.random.default_rng(0), negatives=500)
    assert auc == pytest.approx(2.5 / 3)


def test_trusted_non_edges_below_every_edge_keep_auc_one() -> None:
    # Every ordered pair of 3 users holds trust; the edges are 0->1 and 1->2.
    x, y = np.array([0, 1, 0, 2, 1, 2]), np.array([1, 2, 2, 1, 0, 0])
    tau = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    edges = np.array([[0, 1], [1, 2]])
    assert trust_auc(x, y, tau, edges, 3, np.random.default_rng(1), negatives=200) == 1.0
    # Flip it: every non-edge now holds more trust than either edge.
    flipped = np.array([0.1, 0.2, 0.7, 0.9, 0.3, 0.4])
    assert trust_auc(x, y, flipped, edges, 3, np.random.default_rng(1), negatives=200) == 0.0


def test_only_present_users_count_and_the_draw_is_reproducible() -> None:
    rng = np.random.default_rng(5)
    n = 50
    edges = rng.integers(0, n, (300, 2))
    x, y = rng.integers(0, n, 400), rng.integers(0, n, 400)
    tau = rng.random(400)
    a = trust_auc(x, y, tau, edges, n, np.random.default_rng(9))
    b = trust_auc(x, y, tau, edges, n, np.random.default_rng(9))
    assert a == b and 0.0 <= a <= 1.0
    present = np.zeros(n, dtype=bool)
    present[[0, 1]] = True
    # Only 0->1 and 1->0 exist among two users; one is an edge, the other the only negative.
    e = np.array([[0, 1]])
    got = trust_auc(np.array([1]), np.array([0]), np.array([0.4]), e, n, rng, 10, present)
    assert got == 0.0  # the edge holds no trust (0) and the negative 1->0 holds 0.4
    assert np.isnan(trust_auc(x, y, tau, np.zeros((0, 2), int), n, rng))
