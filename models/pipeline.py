"""The TFCDSRS request pipeline as pure array functions: the neighbour side (FORMULAS.md §2-5).

One implementation serves the online agents (``agents/trust.py``; the item side, for
``agents/serendipity.py``, is ``models/pipeline_items.py``) and the offline evaluation
(``environment/offline.py``, whole batches of users). Arrays are (B, C): B query users and C
candidate columns, which are either one request's candidate ids (the agents) or every user
id (the offline evaluation, non-candidates masked out). Ties are always broken by the column
order, so the ids must be ascending along C for the agents' lists to be reproducible.

Shape letters: B users in the batch, C candidate neighbours, K neighbours kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from models.cf import cross_domain_similarity
from models.trust import TrustConfig, trust_value

NeighbourRank = Literal["sim_trust", "threshold", "similarity"]


class RecommenderLike(Protocol):
    """The recommender settings the pipeline reads (``RecommenderConfig`` has them all)."""

    kind: str
    neighbours: int
    neighbour_rank: NeighbourRank
    trust_epsilon: float
    weight: Literal["similarity", "harmonic"]
    trust: TrustConfig
    novelty: Literal["neighbourhood", "global"]
    novelty_input: Literal["percentile", "minmax"]
    unexpectedness_input: Literal["absolute", "percentile"]
    scorer: Literal["fuzzy", "prediction"]
    selection_threshold: float
    fill_list: bool


@dataclass(frozen=True)
class NeighbourOptions:
    """How the final neighbourhood N_x is picked and weighted (FORMULAS.md §5, §6)."""

    k: int
    rank: NeighbourRank = "sim_trust"
    epsilon: float = 0.1
    theta: float = 0.1
    weight: Literal["similarity", "harmonic"] = "similarity"

    @classmethod
    def of(cls, cfg: RecommenderLike) -> NeighbourOptions:
        """The options of a recommender; CF ignores trust (rank and weight by similarity)."""
        if cfg.kind == "cf":
            return cls(cfg.neighbours, "similarity", cfg.trust_epsilon, cfg.trust.theta)
        return cls(
            cfg.neighbours, cfg.neighbour_rank, cfg.trust_epsilon, cfg.trust.theta, cfg.weight
        )


# ----------------------------------------------------------------------------- neighbours
def top_positive(similarity: np.ndarray, pool: int) -> np.ndarray:
    """(B, U) mask of each row's ``pool`` highest defined, positive similarities.

    The target and source agents' candidate search (FORMULAS.md §5: negative similarity
    gives no trust): the top ``pool`` by similarity, of which the positive ones are kept.
    Ties at the cut are resolved as ``np.argpartition`` resolves them.
    """
    sim = np.where(np.isnan(similarity), -np.inf, similarity)
    mask = np.zeros(sim.shape, dtype=bool)
    k = min(pool, sim.shape[1])
    if k == 0:
        return mask
    part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    np.put_along_axis(mask, part, np.take_along_axis(sim, part, axis=1) > 0, axis=1)
    return mask


def neighbour_evidence(
    sim_t: np.ndarray,
    sims_s: Sequence[np.ndarray],
    cors: Sequence[float],
    co_t: np.ndarray,
    cos_s: Sequence[np.ndarray],
    n_rated: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sim_CD and conf(y|x) of candidate neighbours (FORMULAS.md §2, §3; RECONSTRUCTED).

    Every (B, C) input is NaN where its domain did not propose the candidate, so a remote
    candidate has no target term even if a target similarity exists (as the messages carry
    it). Confidence pools the co-rated counts of every domain that proposed y over |I_x| in
    those domains: conf = Σ_d |I_x ∩ I_y|_d / Σ_d |I_x|_d.

    Args:
        sim_t: (B, C) target similarity of the local candidates.
        sims_s: per source, (B, C) similarity of its remote candidates.
        cors: cor(t, s) per source.
        co_t: (B, C) target co-rated counts of the local candidates.
        cos_s: per source, (B, C) co-rated counts of its candidates.
        n_rated: (B,) Σ_d |I_x|_d over the target and the consulted sources.

    Returns:
        ((B, C) Sim_CD, NaN where no term is defined; (B, C) confidence, 0 where |I_x| = 0).
    """
    sim = cross_domain_similarity(sim_t, list(sims_s), list(cors))
    co = np.nan_to_num(np.asarray(co_t, dtype=np.float64))
    for c in cos_s:
        co += np.nan_to_num(np.asarray(c, dtype=np.float64))
    n = np.asarray(n_rated)[:, None]
    return sim, np.divide(co, n, out=np.zeros_like(co), where=n > 0)


def rank_key(sim: np.ndarray, tau: np.ndarray, options: NeighbourOptions) -> np.ndarray:
    """Neighbour ranking key, so that young trust does not starve the pipeline (FORMULAS.md §5,
    RECONSTRUCTED: the simulator's fallback, not the paper's).

    ``sim_trust``: Sim·(ε + τ); ``threshold``: users with τ >= θ_τ first, each group by
    similarity; ``similarity``: Sim alone (CF, or trust switched off).
    """
    if options.rank == "similarity":
        return sim
    if options.rank == "sim_trust":
        return sim * (options.epsilon + tau)
    return sim + 2.0 * (tau >= options.theta)


def neighbour_weights(sim: np.ndarray, tau: np.ndarray, options: NeighbourOptions) -> np.ndarray:
    """Resnick weights w(x, y) (FORMULAS.md §5 "Neighbourhood use", RECONSTRUCTED): Sim_CD, or
    the harmonic mean 2·Sim·τ / (Sim + τ) (0 where both are 0)."""
    if options.weight == "harmonic":
        denom = sim + tau
        return np.where(denom > 0, 2.0 * sim * tau / np.where(denom > 0, denom, 1.0), 0.0)
    return sim


@dataclass
class NeighbourSelection:
    """The chosen neighbours of B users, best first, padded with -1 (columns) and 0.

    Attributes:
        index: (B, K) column of each neighbour in the candidate arrays, -1 for padding.
        weights: (B, K) w(x, y).
        similarity: (B, K) Sim_CD (NaN read as 0).
        trust: (B, K) τ_{x,y}.
    """

    index: np.ndarray
    weights: np.ndarray
    similarity: np.ndarray
    trust: np.ndarray


def select_neighbours(
    sim: np.ndarray, tau: np.ndarray, options: NeighbourOptions
) -> NeighbourSelection:
    """N_x: the top-K candidates with Sim_CD > 0 by ``rank_key`` (FORMULAS.md §5, RECONSTRUCTED).

    Args:
        sim: (B, C) Sim_CD, NaN where undefined or not a candidate.
        tau: (B, C) trust τ_{x,y} of the candidates.
        options: K, ranking and weighting.

    Returns:
        NeighbourSelection; ties go to the lower column.
    """
    simz = np.nan_to_num(np.asarray(sim, dtype=np.float64), nan=0.0)
    tau = np.asarray(tau, dtype=np.float64)
    keep = simz > 0
    k = min(options.k, simz.shape[1])
    order = np.lexsort((-rank_key(simz, tau, options), ~keep), axis=-1)[:, :k]  # (B, K)
    valid = np.take_along_axis(keep, order, axis=1)
    s = np.where(valid, np.take_along_axis(simz, order, axis=1), 0.0)
    t = np.where(valid, np.take_along_axis(tau, order, axis=1), 0.0)
    w = np.where(valid, neighbour_weights(s, t, options), 0.0)
    return NeighbourSelection(np.where(valid, order, -1), w, s, t)


def ra_fixed_point_pairs(
    truster: np.ndarray,
    trustee: np.ndarray,
    x1: np.ndarray,
    x2: np.ndarray,
    n_users: int,
    config: TrustConfig,
    tol: float = 1e-4,
    max_iter: int = 50,
) -> tuple[np.ndarray, np.ndarray, int]:
    """R-A iterated to its fixed point on a sparse set of pairs (FORMULAS.md §4-5, RECONSTRUCTED).

    τ^(k) = trust_value(x1, x2, ROU^(k-1)_y), ROU^(k)_y the mean of τ^(k) over y's pairs
    (``config.reputation_norm``: the pairs known for y, or all n-1 users), ROU^(0) = 0;
    stop when max_y |ROU^(k) - ROU^(k-1)| < tol or k = max_iter. The sparse counterpart of
    ``models.trust.ra_fixed_point``: trust as of a fixed rating matrix, without the
    simulation's step-by-step sweeps. Reputation is the structural mean of §4 whatever
    ``config.reputation`` says: offline there is no feedback, and feedback-earned reputation
    (``TrustConfig.reputation``) would be 0 for everyone.

    Args:
        truster: (P,) x of each pair, distinct pairs, x != y.
        trustee: (P,) y.
        x1: (P,) similarity (negative and NaN read as 0).
        x2: (P,) confidence.
        n_users: n.
        config: k1, k2, the form and the reputation norm.
        tol: convergence threshold on reputation.
        max_iter: iteration cap.

    Returns:
        ((P,) τ, (n_users,) reputation, iterations run).
    """
    y = np.asarray(trustee, dtype=np.int64)
    if np.any(np.asarray(truster) == y):
        raise ValueError("self-pairs have no trust value to compute")
    a = np.clip(np.nan_to_num(np.asarray(x1, dtype=np.float64), nan=0.0), 0.0, 1.0)
    b = np.clip(np.nan_to_num(np.asarray(x2, dtype=np.float64), nan=0.0), 0.0, 1.0)
    counts = np.bincount(y, minlength=n_users)
    if config.reputation_norm == "all_users":
        denom = np.full(n_users, float(max(n_users - 1, 1)))
    else:
        denom = np.maximum(counts, 1).astype(np.float64)
    rou = np.zeros(n_users)
    tau = np.zeros(len(y))
    for k in range(1, max_iter + 1):
        tau = trust_value(a, b, rou[y], config.k1, config.k2, config.form)
        new = np.bincount(y, weights=tau, minlength=n_users) / denom
        change = float(np.max(np.abs(new - rou), initial=0.0))
        rou = new
        if change < tol:
            return tau, rou, k
    return tau, rou, max_iter
