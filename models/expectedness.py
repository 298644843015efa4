"""Expectedness of items to users from item co-occurrence, and the 30% expected/unexpected pools.

MODELS.md 1.5 (PAPER eq.20-23, REC for data without metadata). An item is *expected* by a
user when it co-occurs often with the items of their history:

    exp(u, i) = log Σ_{h∈T_u} p̃(i|h) p(h),   p(h) = 1/|T_u|,
    p̃(i|h)   = (n(i,h) + μ π(i)) / (Σ_{i'} n(i',h) + μ),

with n(i,h) the number of training users whose history holds both i and h (zero on the
diagonal) and π(i) the item's share of all training ratings. The sum splits into a sparse
part and a rank-1 part, so a batch of users costs two sparse products:

    Σ_h x_uh n(i,h)/(N_h+μ)  +  π(i) Σ_h x_uh μ/(N_h+μ),   divided by |T_u|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp


def _binary(mat: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(mat, dtype=np.float64, copy=True)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


def cooccurrence(ratings: sp.spmatrix) -> sp.csr_matrix:
    """n(i, h): users whose history holds both i and h, zero diagonal (MODELS.md 1.5 REC).

    Args:
        ratings: (U, I) training interactions; only the stored pattern is used.

    Returns:
        (I, I) symmetric sparse counts.
    """
    x = _binary(ratings)
    cooc = (x.T @ x).tocsr()
    cooc.setdiag(0.0)
    cooc.eliminate_zeros()
    return cooc


def popularity_share(ratings: sp.spmatrix) -> np.ndarray:
    """π(i): the item's number of training ratings over all training ratings (MODELS.md 1.5)."""
    counts = np.asarray(_binary(ratings).sum(axis=0)).ravel()
    total = counts.sum()
    return counts / total if total > 0 else np.full(counts.shape, 1.0 / max(len(counts), 1))


def expectedness(
    ratings_csr: sp.spmatrix,
    users: np.ndarray,
    mu: float = 1.0,
    log: bool = True,
    *,
    cooc: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Expectedness of every item to each user of ``users`` (MODELS.md 1.5, PAPER eq.20-23).

    The co-occurrence counts replace the paper's "also bought/viewed" lists (REC). A user
    with an empty history gets the Dirichlet prior π. With ``log``, items that never
    co-occur with the history and have no training rating get ``-inf`` (probability 0).

    Args:
        ratings_csr: (U, I) training interactions; the rows are the histories T_u and the
            co-occurrence counts come from all rows.
        users: (B,) row indices.
        mu: Dirichlet smoothing strength μ (paper code: 1).
        log: return log p(i|T_u) (the paper's exp(u, i)) instead of the probability.
        cooc: precomputed :func:`cooccurrence` of ``ratings_csr`` (saves recomputing it).

    Returns:
        (B, I) float64.
    """
    x = _binary(ratings_csr)
    n = cooccurrence(x) if cooc is None else cooc
    col_sums = np.asarray(n.sum(axis=0)).ravel()  # N_h = Σ_i n(i, h)
    w = 1.0 / (col_sums + mu)  # (I,)
    xb = x[np.asarray(users, dtype=np.int64)]  # (B, I)
    sparse_part = np.asarray((xb @ sp.diags(w) @ n).todense())  # n is symmetric
    prior_weight = xb @ (mu * w)  # (B,)
    pi = popularity_share(x)
    length = np.asarray(xb.sum(axis=1)).ravel()
    prob = sparse_part + prior_weight[:, None] * pi[None, :]
    empty = length == 0
    prob[~empty] /= length[~empty, None]
    prob[empty] = pi
    if not log:
        return prob
    with np.errstate(divide="ignore"):
        return np.log(prob)


@dataclass
class ExpectednessPools:
    """Each user's eligible items sorted by expectedness, most expected first.

    ``order[b, :n_eligible[b]]`` are item ids; the expected pool is the first ``k[b]`` of
    them, the unexpected pool the last ``k[b]`` (MODELS.md 1.5: top and bottom 30%).
    """

    order: np.ndarray  # (B, P) int item ids, excluded items after the eligible ones
    n_eligible: np.ndarray  # (B,) int
    k: np.ndarray  # (B,) int pool size

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        which: Literal["expected", "unexpected"] = "expected",
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """``n`` draws with replacement from each row's pool -> (B, n) item ids."""
        rows = np.arange(self.order.shape[0]) if rows is None else np.asarray(rows)
        k = self.k[rows]
        offset = np.zeros_like(k) if which == "expected" else self.n_eligible[rows] - k
        pos = offset[:, None] + np.floor(rng.random((len(rows), n)) * k[:, None]).astype(np.int64)
        return np.take_along_axis(self.order[rows], pos, axis=1)


def expectedness_pools(
    scores: np.ndarray,
    candidates: np.ndarray,
    exclude: sp.spmatrix | None = None,
    frac: float = 0.3,
) -> ExpectednessPools:
    """Sort each user's eligible candidates by expectedness and cut the 30% pools (MODELS.md 1.5).

    A full sort per row (one vectorised ``lexsort``) replaces a per-user ``argpartition``
    because the pool size differs between users; ties keep candidate order (stable).

    Args:
        scores: (B, I) expectedness of every item (from :func:`expectedness`).
        candidates: (P,) item ids the pools are drawn from (e.g. one domain's items).
        exclude: (B, I) pattern of items not eligible (the history T_u, held-out items).
        frac: pool share (paper 0.3).

    Returns:
        The sorted pools; raises ValueError when a row has no eligible item.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    s = scores[:, candidates]  # (B, P)
    if exclude is None:
        excluded = np.zeros(s.shape, dtype=bool)
    else:
        excluded = np.asarray(sp.csr_matrix(exclude)[:, candidates].todense()) != 0
    # lexsort: the last key is primary, so eligible rows come first, then by -score.
    order = np.lexsort((-s, excluded), axis=-1)
    n_eligible = (~excluded).sum(axis=1)
    if np.any(n_eligible == 0):
        raise ValueError(f"{int((n_eligible == 0).sum())} user(s) have no eligible item")
    k = np.maximum(1, np.floor(frac * n_eligible).astype(np.int64))
    return ExpectednessPools(order=candidates[order], n_eligible=n_eligible, k=k)


def sample_row_items(
    mat: sp.spmatrix, rows: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` stored column indices per row, drawn uniformly with replacement -> (B, n).

    Raises ValueError when one of ``rows`` stores nothing.
    """
    m = sp.csr_matrix(mat)
    rows = np.asarray(rows, dtype=np.int64)
    start = m.indptr[rows]
    count = m.indptr[rows + 1] - start
    if np.any(count == 0):
        raise ValueError(f"{int((count == 0).sum())} row(s) have nothing to sample from")
    pos = start[:, None] + np.floor(rng.random((len(rows), n)) * count[:, None]).astype(np.int64)
    return m.indices[pos]
