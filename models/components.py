"""Serendipity components of TFCDSRS: novelty, relevance, unexpectedness (FORMULAS.md §7-9).

Each function works on whole (B, I) arrays: B query users, I items. Every fuzzy input it
produces lies in [0, 1], NaN where the item is not a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata


def inverse_user_frequency(item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Inverse user frequency IUF(i) = log(|U| / |U_i|) (FORMULAS.md §7; Breese et al. 1998).

    Args:
        item_counts: (I,) |U_i|, the number of users who rated each item.
        n_users: |U|.

    Returns:
        (I,) IUF, with |U_i| floored at 1 so unrated items get the largest value log|U|.
    """
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    return np.log(n_users / counts)


def novelty_score(support: np.ndarray, n_neighbours: np.ndarray, iuf: np.ndarray) -> np.ndarray:
    """Novelty score NS_x(i) = IF_x(i)·IUF(i) (FORMULAS.md §7, RECONSTRUCTED from ref [23]).

    IF_x(i) = |{y ∈ N_x : i ∈ I_y}| / |N_x| is the neighbourhood frequency (the reading that
    keeps "higher NS = less popular" consistent, see §7).

    Args:
        support: (B, I) number of x's neighbours who rated i.
        n_neighbours: (B,) |N_x|.
        iuf: (I,) inverse user frequency.

    Returns:
        (B, I) NS; 0 for users without neighbours.
    """
    sup = np.asarray(support, dtype=np.float64)
    n = np.asarray(n_neighbours, dtype=np.float64)[:, None]
    freq = np.divide(sup, n, out=np.zeros_like(sup), where=n > 0)
    return freq * np.asarray(iuf, dtype=np.float64)[None, :]


def _masked(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    m = np.asarray(mask, dtype=bool) & np.isfinite(v)
    return np.where(m, v, np.nan), m


def percentile_within(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Percentile rank of each candidate among its row's candidates (FORMULAS.md §7 fuzzy input).

    pct = (rank - 1) / (m - 1), with average ranks for ties and m the number of candidates
    in the row, so the lowest candidate maps to 0 and the highest to 1.

    Args:
        values: (B, I) scores (NS, for instance).
        mask: (B, I) bool candidates C_x; a NaN value is treated as not a candidate.

    Returns:
        (B, I) in [0, 1]; 1.0 for a row's single candidate; NaN outside the mask.
    """
    v, m = _masked(values, mask)
    ranks = rankdata(v, method="average", axis=1, nan_policy="omit")
    count = m.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(count > 1, (ranks - 1.0) / (count - 1.0), 1.0)
    return np.where(m, pct, np.nan)


def minmax_within(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Min-max scaling within each row's candidates (FORMULAS.md §7, alternative to percentiles).

    Args:
        values: (B, I) scores.
        mask: (B, I) bool candidates; a NaN value is treated as not a candidate.

    Returns:
        (B, I) (v - min)/(max - min) in [0, 1]; a single candidate gets 1.0 and a row of
        several equal candidates 0.5 (the value the percentile rank gives to ties); NaN
        outside the mask.
    """
    v, m = _masked(values, mask)
    has = m.any(axis=1, keepdims=True)
    lo = np.nanmin(np.where(has, v, 0.0), axis=1, keepdims=True)
    hi = np.nanmax(np.where(has, v, 0.0), axis=1, keepdims=True)
    span = hi - lo
    count = m.sum(axis=1, keepdims=True)
    flat = np.where(count > 1, 0.5, 1.0)
    scaled = np.divide(v - lo, span, out=np.broadcast_to(flat, v.shape).copy(), where=span > 0)
    return np.where(m, scaled, np.nan)


def relevance01(rel: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Relevance fuzzy input rel01 = (rel - r_min)/(r_max - r_min), clipped (FORMULAS.md §8).

    Args:
        rel: (B, I) relevance on the rating scale (NaN where undefined).
        scale: (r_min, r_max).

    Returns:
        (B, I) in [0, 1], NaN kept.
    """
    lo, hi = scale
    if not hi > lo:
        raise ValueError("scale must be (low, high) with high > low")
    return np.clip((np.asarray(rel, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def cooccurrence(B: sp.csr_matrix) -> sp.csr_matrix:
    """Item co-occurrence counts |U_i ∩ U_j| (FORMULAS.md §9).

    Args:
        B: (U, I) interactions; only the stored pattern matters (a stored 0 still counts).

    Returns:
        (I, I) int64 CSR; the diagonal holds |U_i|.
    """
    A = sp.csr_matrix(B)
    M = sp.csr_matrix((np.ones(A.nnz, dtype=np.int64), A.indices, A.indptr), shape=A.shape)
    return sp.csr_matrix(M.T @ M)


def npmi_max(
    co: sp.csr_matrix,
    n_users: int,
    candidates: np.ndarray,
    histories: Sequence[np.ndarray],
) -> np.ndarray:
    """Co-occurrence expectedness unexp_co(i, u) = max_{j∈I_u} NPMI(i, j) (FORMULAS.md §9).

    NPMI(i, j) = log(p(i,j) / (p(i)p(j))) / -log p(i,j) with p(i) = |U_i|/|U| and
    p(i,j) = |U_i ∩ U_j|/|U| (Kaminskas & Bridge 2014); -1 where p(i,j) = 0 and 1 where
    p(i,j) = 1. Only the stored (non-zero) co-counts of each user's candidate x history
    block are evaluated: every missing pair is -1, the minimum, so it matters only for rows
    with no stored pair. One sparse slice per user (B is a batch of users).

    Args:
        co: (I, I) symmetric co-occurrence from ``cooccurrence`` (diagonal = |U_i|).
        n_users: |U|.
        candidates: (B, I) bool candidate mask.
        histories: histories[b] = item ids of user b's history I_u.

    Returns:
        (B, I) unexp_co in [-1, 1] on the candidates, NaN elsewhere; -1 for every candidate
        of a user with an empty history (nothing is expected).
    """
    cand_mask = np.asarray(candidates, dtype=bool)
    if len(histories) != cand_mask.shape[0]:
        raise ValueError("one history per candidate row is required")
    C = sp.csr_matrix(co)
    item_counts = C.diagonal().astype(np.float64)
    out = np.full(cand_mask.shape, np.nan)
    for b, hist in enumerate(histories):
        cand = np.flatnonzero(cand_mask[b])
        out[b, cand] = -1.0
        hist = np.unique(np.asarray(hist, dtype=np.int64))
        if cand.size == 0 or hist.size == 0:
            continue
        # co is symmetric, and slicing the (short) history rows first is far cheaper.
        block = C[hist][:, cand].tocoo()  # (|I_u|, |C_u|) stored co-counts
        c_ij = block.data.astype(np.float64)
        c_i, c_j = item_counts[cand[block.col]], item_counts[hist[block.row]]
        with np.errstate(divide="ignore", invalid="ignore"):
            pmi = np.log(c_ij * n_users / (c_i * c_j))
            npmi = pmi / np.log(n_users / c_ij)
        npmi = np.where(c_ij >= n_users, 1.0, npmi)
        npmi = np.where(c_ij <= 0, -1.0, np.clip(npmi, -1.0, 1.0))
        best = np.full(cand.size, -1.0)
        np.maximum.at(best, block.col, npmi)
        out[b, cand] = best
    return out


def unexpectedness01(unexp_co: np.ndarray) -> np.ndarray:
    """Unexpectedness fuzzy input une = (1 - unexp_co)/2 in [0, 1] (FORMULAS.md §9).

    Args:
        unexp_co: (B, I) max NPMI, NaN where not a candidate.

    Returns:
        (B, I), higher = more unexpected; NaN kept.
    """
    return (1.0 - np.asarray(unexp_co, dtype=np.float64)) / 2.0
