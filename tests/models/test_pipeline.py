"""The pipeline's neighbour side (models/pipeline.py): hand-computed cases and the
per-request reference form the trust agent used before the numerics moved here."""

from __future__ import annotations

import numpy as np
import pytest

from models.pipeline import (
    NeighbourOptions,
    neighbour_evidence,
    ra_fixed_point_pairs,
    select_neighbours,
    top_positive,
)
from models.trust import TrustConfig, ra_fixed_point, trust_value

NAN = np.nan


def test_top_positive_keeps_the_best_pool_and_drops_non_positive() -> None:
    sim = np.array([[0.5, NAN, 0.9, -0.2, 0.1]])
    assert top_positive(sim, 2).tolist() == [[True, False, True, False, False]]
    # A pool of 4 reaches -0.2, which gives no trust and is dropped.
    assert top_positive(sim, 4).tolist() == [[True, False, True, False, True]]
    assert not top_positive(sim, 0).any()


def test_top_positive_matches_the_agents_id_lists() -> None:
    rng = np.random.default_rng(0)
    sim = np.round(rng.uniform(-1, 1, (20, 40)), 1)  # many ties
    sim[rng.random(sim.shape) < 0.2] = NAN
    mask = top_positive(sim, 7)
    for row, m in zip(sim, mask, strict=True):
        # The agents' form: argpartition on -sim (NaN as -inf), then the positive ones.
        s = np.where(np.isnan(row), -np.inf, row)
        part = np.argpartition(-s[None, :], 6, axis=1)[0, :7]
        assert set(np.flatnonzero(m)) == set(part[s[part] > 0])


def test_neighbour_evidence_mixes_domains_and_pools_confidence() -> None:
    sim_t = np.array([[0.5, NAN, 0.2]])
    sim_s = np.array([[NAN, 0.8, 0.6]])
    co_t = np.array([[3.0, NAN, 1.0]])
    co_s = np.array([[NAN, 4.0, 2.0]])
    sim, conf = neighbour_evidence(sim_t, [sim_s], [0.5], co_t, [co_s], np.array([10]))
    # Sim_CD = (Sim_t + cor·Sim_s) / (1[t] + cor·1[s]): col 2 = (0.2 + 0.3)/1.5.
    np.testing.assert_allclose(sim, [[0.5, 0.8, 0.5 / 1.5]])
    np.testing.assert_allclose(conf, [[0.3, 0.4, 0.3]])
    # A non-positive correlation drops the source; |I_x| = 0 gives no confidence.
    sim, conf = neighbour_evidence(sim_t, [sim_s], [-0.1], co_t, [co_s], np.array([0]))
    assert np.isnan(sim[0, 1]) and sim[0, 0] == 0.5
    assert conf.tolist() == [[0.0, 0.0, 0.0]]


SIM = np.array([[0.9, 0.5, -0.1, NAN, 0.5]])
TAU = np.array([[0.0, 0.8, 1.0, 1.0, 0.8]])


def test_select_neighbours_by_similarity_times_trust() -> None:
    chosen = select_neighbours(SIM, TAU, NeighbourOptions(k=3, rank="sim_trust", epsilon=0.1))
    # Keys 0.9·0.1 = 0.09, 0.5·0.9 = 0.45, 0.45: the tie goes to the lower column.
    assert chosen.index.tolist() == [[1, 4, 0]]
    np.testing.assert_allclose(chosen.weights, [[0.5, 0.5, 0.9]])
    np.testing.assert_allclose(chosen.trust, [[0.8, 0.8, 0.0]])


def test_select_neighbours_rank_variants_padding_and_harmonic_weights() -> None:
    by_sim = select_neighbours(SIM, TAU, NeighbourOptions(k=5, rank="similarity"))
    assert by_sim.index.tolist() == [[0, 1, 4, -1, -1]]  # only positive similarity
    assert by_sim.weights[0, 3:].tolist() == [0.0, 0.0]
    first = select_neighbours(SIM, TAU, NeighbourOptions(k=3, rank="threshold", theta=0.5))
    assert first.index.tolist() == [[1, 4, 0]]  # trusted users first, each group by Sim
    harmonic = select_neighbours(SIM, TAU, NeighbourOptions(k=3, weight="harmonic"))
    np.testing.assert_allclose(harmonic.weights, [[0.8 / 1.3, 0.8 / 1.3, 0.0]])


def test_select_neighbours_matches_the_per_request_reference() -> None:
    rng = np.random.default_rng(1)
    sim = np.round(rng.uniform(-0.5, 1, (30, 25)), 1)
    sim[rng.random(sim.shape) < 0.3] = NAN
    tau = np.round(rng.uniform(0, 1, sim.shape), 1)
    opts = NeighbourOptions(k=6, rank="sim_trust", epsilon=0.1)
    chosen = select_neighbours(sim, tau, opts)
    ids = np.arange(sim.shape[1])
    for b in range(sim.shape[0]):
        simz = np.nan_to_num(sim[b])
        order = np.lexsort((ids, -simz * (0.1 + tau[b])))
        order = order[(simz > 0)[order]][:6]
        got = chosen.index[b]
        assert got[got >= 0].tolist() == order.tolist()


def test_sparse_fixed_point_matches_the_dense_reference() -> None:
    rng = np.random.default_rng(2)
    n = 6
    x1, x2 = rng.uniform(-0.2, 1, (n, n)), rng.uniform(0, 1, (n, n))
    tau_d, rou_d, it_d = ra_fixed_point(x1, x2, 1e-3, 1e-3)
    x, y = np.nonzero(~np.eye(n, dtype=bool))
    cfg = TrustConfig(reputation_norm="all_users")
    tau, rou, it = ra_fixed_point_pairs(x, y, x1[x, y], x2[x, y], n, cfg)
    assert it == it_d
    np.testing.assert_allclose(tau, tau_d[x, y], rtol=1e-12)
    np.testing.assert_allclose(rou, rou_d, rtol=1e-12)


def test_sparse_fixed_point_known_pairs_is_a_fixed_point() -> None:
    # Two trusters of user 2 and one of user 0; reputation over the known pairs.
    x, y = np.array([0, 1, 2]), np.array([2, 2, 0])
    x1, x2 = np.array([0.8, 0.4, 0.6]), np.array([0.5, 0.5, 0.2])
    cfg = TrustConfig()
    tau, rou, _ = ra_fixed_point_pairs(x, y, x1, x2, 3, cfg, tol=1e-12, max_iter=500)
    np.testing.assert_allclose(rou, [tau[2], 0.0, (tau[0] + tau[1]) / 2])
    np.testing.assert_allclose(tau, trust_value(x1, x2, rou[y], cfg.k1, cfg.k2), atol=1e-10)
    with pytest.raises(ValueError, match="self-pairs"):
        ra_fixed_point_pairs(np.array([1]), np.array([1]), x1[:1], x2[:1], 3, cfg)
