"""User-based collaborative filtering cores of TFCDSRS (FORMULAS.md §1, §2, §3, §6, §8).

Rating matrices are SciPy CSR (users x items). Their *stored pattern* is the set of ratings:
a stored 0.0 is a rating (some scales include 0), so every mask below is built from
``indptr``/``indices`` and nothing ever calls ``eliminate_zeros``. All pair statistics are
sparse matrix products over co-rated entries; no Python loop runs over (user, user) or
(user, item) pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

# Co-rating triples gathered at once when counting agreeing ratings (bounds memory).
_TRIPLE_BUDGET = 4_000_000
# Relative size below which a sum of squared deviations counts as zero (float cancellation).
_VAR_RTOL = 1e-10


def _csr(R: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """Return R as canonical float64 CSR without touching its stored pattern."""
    A = sp.csr_matrix(R, dtype=np.float64)
    if not A.has_canonical_format:
        A = A.copy()
        A.sort_indices()
        same_row = np.diff(_row_ids(A)) == 0
        if np.any(same_row & (np.diff(A.indices) == 0)):
            raise ValueError("rating matrix has duplicate (user, item) entries")
        A.has_canonical_format = True
    return A


def _row_ids(A: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))


def _with_data(A: sp.csr_matrix, data: np.ndarray) -> sp.csr_matrix:
    """Same stored pattern as A, new values (explicit zeros kept)."""
    return sp.csr_matrix((data, A.indices, A.indptr), shape=A.shape)


def rating_mask(R: sp.csr_matrix) -> sp.csr_matrix:
    """(U, I) float64 CSR with R's stored pattern and every value 1.0 (a 0 rating included)."""
    A = _csr(R)
    return _with_data(A, np.ones(A.nnz))


def user_means(R: sp.csr_matrix) -> np.ndarray:
    """(U,) mean rating r̄_u over all of I_u (FORMULAS.md §1), NaN for users without ratings."""
    A = _csr(R)
    counts = np.diff(A.indptr)
    sums = np.bincount(_row_ids(A), weights=A.data, minlength=A.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _shift_rows(A: sp.csr_matrix, shift: np.ndarray) -> sp.csr_matrix:
    return _with_data(A, A.data - np.nan_to_num(shift)[_row_ids(A)])


def _dense(M: sp.spmatrix | sp.sparray) -> np.ndarray:
    return np.asarray(M.toarray())


def _value_scale(*mats: sp.csr_matrix) -> float:
    """Largest |rating| (at least 1): the size of the rounding a mean shift leaves behind."""
    return max([1.0] + [float(np.abs(m.data).max()) for m in mats if m.nnz])


def _similarity_rows(
    A: sp.csr_matrix, Bv: sp.csr_matrix, *, corrected: bool, min_common: int, value_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of every row of A with every row of Bv over their common columns.

    Values must already be shifted by a per-row constant (user or item mean): with
    ``corrected`` the co-rated means are then removed via the moment sums (Pearson on the
    common support, invariant to that shift, which only improves the conditioning); without
    it the shifted values are used as they are (Pearson with global means, adjusted cosine).
    A sum of squared deviations is zero when it is within float error of the moments it came
    from, or of ``value_scale`` (the largest |rating|) through the shift itself.

    Returns:
        (P, Q) similarity (NaN where undefined) and (P, Q) int co-counts.
    """
    Ma, Mb = rating_mask(A), rating_mask(Bv)
    A2, B2 = _with_data(A, A.data**2), _with_data(Bv, Bv.data**2)
    n = _dense(Ma @ Mb.T)
    sxy = _dense(A @ Bv.T)
    sxx = _dense(A2 @ Mb.T)
    syy = _dense(Ma @ B2.T)
    scale_x, scale_y = (sxx.copy(), syy.copy()) if corrected else (0.0, 0.0)
    if corrected:
        sx = _dense(A @ Mb.T)
        sy = _dense(Ma @ Bv.T)
        inv_n = np.divide(1.0, n, out=np.zeros_like(n), where=n > 0)
        sxy -= sx * sy * inv_n
        sxx -= sx * sx * inv_n
        syy -= sy * sy * inv_n
    atol = n * (1e-9 * value_scale) ** 2
    flat_x = sxx <= _VAR_RTOL * scale_x + atol
    flat_y = syy <= _VAR_RTOL * scale_y + atol
    undefined = (n < min_common) | flat_x | flat_y
    denom = np.sqrt(np.where(undefined, 1.0, sxx * syy))
    sim = np.where(undefined, np.nan, np.clip(sxy / denom, -1.0, 1.0))
    return sim, n.astype(np.int64)


def _agree_counts(Q: sp.csr_matrix, R: sp.csr_matrix, delta: float) -> np.ndarray:
    """(B, U) counts of co-rated items with |r_x - r_y| <= delta (FORMULAS.md §3 conf_δ).

    Enumerates the co-rating triples (query row, item, rater) column by column in bounded
    batches; this is exact for any rating values, unlike a product per rating level.
    """
    Rc = sp.csc_matrix(R)
    n_users = R.shape[0]
    counts = np.zeros(Q.shape[0] * n_users, dtype=np.int64)
    qrows, qcols, qvals = _row_ids(Q), Q.indices, Q.data
    lens = np.diff(Rc.indptr)[qcols]
    tol = delta + 1e-9 * max(1.0, abs(delta))  # 3.7 - 2.7 must agree at δ = 1
    ends = np.cumsum(lens)
    start = 0
    while start < len(qcols):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + _TRIPLE_BUDGET, side="right")))
        seg = slice(start, stop)
        seg_lens = lens[seg]
        total = int(seg_lens.sum())
        first = Rc.indptr[qcols[seg]]
        offsets = np.repeat(first - (np.cumsum(seg_lens) - seg_lens), seg_lens) + np.arange(total)
        ok = np.abs(np.repeat(qvals[seg], seg_lens) - Rc.data[offsets]) <= tol
        keys = np.repeat(qrows[seg], seg_lens)[ok] * n_users + Rc.indices[offsets][ok]
        counts += np.bincount(keys, minlength=counts.size)
        start = stop
    return counts.reshape(Q.shape[0], n_users)


@dataclass
class PairStats:
    """Pair statistics of B query users against all U users.

    Attributes:
        similarity: (B, U) float; NaN where undefined (|I_xy| < min_common, a zero variance
            over I_xy) and on the self-pair.
        co_counts: (B, U) int |I_x ∩ I_y|.
        agree_counts: (B, U) int co-ratings with |r_x - r_y| <= delta, or None without delta.
    """

    similarity: np.ndarray
    co_counts: np.ndarray
    agree_counts: np.ndarray | None


def pearson(
    R: sp.csr_matrix,
    rows: np.ndarray,
    *,
    min_common: int = 2,
    mean: Literal["corated", "all"] = "corated",
    significance: int | None = None,
    delta: float | None = None,
) -> PairStats:
    """Local user-user Pearson similarity Sim_d(x, y) on co-rated items (FORMULAS.md §1, STANDARD).

    Built from the sparse moment products Sxy, Sx, Sy, Sxx, Syy, n over I_xy = I_x ∩ I_y.

    Args:
        R: (U, I) ratings of one domain.
        rows: (B,) query user rows.
        min_common: least |I_xy| for a defined similarity (FORMULAS says 2).
        mean: ``"corated"`` centres r_x on the mean over I_xy (the §1 default);
            ``"all"`` on r̄_x over all of I_x.
        significance: if given (FORMULAS: 50), multiply by min(|I_xy|, significance)/significance.
        delta: if given, also count agreeing co-ratings for conf_δ (§3).

    Returns:
        PairStats; the similarity is NaN (not 0) where undefined so callers can tell
        "no evidence" from "uncorrelated".
    """
    if min_common < 1:
        raise ValueError("min_common must be >= 1")
    A = _csr(R)
    rows = np.asarray(rows, dtype=np.int64)
    shifted = _shift_rows(A, user_means(A))
    Q = shifted[rows]
    sim, n = _similarity_rows(
        Q, shifted, corrected=mean == "corated", min_common=min_common, value_scale=_value_scale(A)
    )
    if significance is not None:
        sim *= np.minimum(n, significance) / significance
    sim[np.arange(len(rows)), rows] = np.nan
    agree = None if delta is None else _agree_counts(A[rows], A, float(delta))
    return PairStats(similarity=sim, co_counts=n, agree_counts=agree)


def domain_correlation(
    R_t: sp.csr_matrix,
    R_s: sp.csr_matrix,
    *,
    min_common: int = 2,
    method: Literal["adjusted_cosine", "pearson"] = "adjusted_cosine",
    denominator: Literal["defined_pairs", "all_pairs"] = "defined_pairs",
    chunk: int = 512,
) -> float:
    """Domain correlation cor(t, s) (FORMULAS.md §2, RECONSTRUCTED).

    The mean item-item similarity over I_t x I_s, item vectors being rating columns over
    the shared users (rows). ``adjusted_cosine`` centres every rating on its user's mean
    over both catalogues together (Sarwar et al. 2001 on the joint matrix); ``pearson``
    centres each column on its mean over the co-raters U_i ∩ U_j. A pair is defined when
    |U_i ∩ U_j| >= min_common and both deviations are non-zero. Computed block by block
    (chunk x chunk items), so memory is O(chunk²) whatever the catalogue sizes.

    Args:
        R_t: (U, I_t) target-domain ratings.
        R_s: (U, I_s) source-domain ratings over the same users.
        min_common: least number of co-raters.
        method: item similarity, see above.
        denominator: ``defined_pairs`` divides by the number of defined pairs (FORMULAS
            default); ``all_pairs`` by |I_t|·|I_s| (the literal reading).
        chunk: block edge in items (512: on MovieLens about 4x faster and 15x less memory
            than 2048, the dense blocks staying in cache).

    Returns:
        cor(t, s); 1.0 when R_t is R_s (cor(t,t) = 1); 0.0 when no pair is defined.
    """
    if R_t is R_s:
        return 1.0
    T, S = _csr(R_t), _csr(R_s)
    if T.shape[0] != S.shape[0]:
        raise ValueError("R_t and R_s must share their user rows")
    scale = _value_scale(T, S)
    if method == "adjusted_cosine":
        joint = user_means(sp.hstack([T, S], format="csr"))
        T, S = _shift_rows(T, joint), _shift_rows(S, joint)
        Tc, Sc = T.T.tocsr(), S.T.tocsr()
    else:
        Tc, Sc = T.T.tocsr(), S.T.tocsr()
        Tc, Sc = _shift_rows(Tc, user_means(Tc)), _shift_rows(Sc, user_means(Sc))
    total, defined = 0.0, 0
    similarity = partial(
        _similarity_rows, corrected=method == "pearson", min_common=min_common, value_scale=scale
    )
    blocks_s = [Sc[b : b + chunk] for b in range(0, Sc.shape[0], chunk)]
    for a in range(0, Tc.shape[0], chunk):
        for block_s in blocks_s:
            sim, _ = similarity(Tc[a : a + chunk], block_s)
            ok = np.isfinite(sim)
            total += float(sim[ok].sum())
            defined += int(ok.sum())
    n_pairs = defined if denominator == "defined_pairs" else Tc.shape[0] * Sc.shape[0]
    logger.debug("cor(t,s): %s over %s (%d defined pairs)", method, denominator, defined)
    if n_pairs == 0:
        logger.warning("cor(t,s): no item pair is defined; returning 0")
        return 0.0
    return total / n_pairs


def cross_domain_similarity(
    sim_t: np.ndarray, sims_s: Sequence[np.ndarray], cors: Sequence[float]
) -> np.ndarray:
    """Correlation-weighted cross-domain similarity Sim_CD(x, y) (FORMULAS.md §2, RECONSTRUCTED).

    Sim_CD = [Sim_t + Σ_{s: cor>0} cor_s·Sim_s] / [1[Sim_t defined] + Σ_{s: cor>0, Sim_s defined} cor_s],
    where undefined (NaN) terms drop out of both sums. Whether the remote terms apply at all
    (the user is sparse in t) is the caller's decision: pass no sources otherwise.

    Args:
        sim_t: (B, U) target-domain similarity, NaN where undefined.
        sims_s: per source domain, a (B, U) similarity aligned with sim_t.
        cors: cor(t, s) per source domain.

    Returns:
        (B, U) Sim_CD, NaN where no term is defined.
    """
    if len(sims_s) != len(cors):
        raise ValueError("sims_s and cors must have the same length")
    sim_t = np.asarray(sim_t, dtype=np.float64)
    ok = np.isfinite(sim_t)
    num = np.where(ok, sim_t, 0.0)
    den = ok.astype(np.float64)
    for sim_s, cor in zip(sims_s, cors, strict=True):
        if not cor > 0:
            continue
        sim_s = np.asarray(sim_s, dtype=np.float64)
        ok_s = np.isfinite(sim_s)
        num += cor * np.where(ok_s, sim_s, 0.0)
        den += cor * ok_s
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def confidence(co_counts: np.ndarray, n_rated: np.ndarray) -> np.ndarray:
    """Confidence conf(y|x) = |I_x ∩ I_y| / |I_x| (FORMULAS.md §3, TARS form, RECONSTRUCTED).

    Pass ``PairStats.agree_counts`` as ``co_counts`` for the stricter conf_δ variant.

    Args:
        co_counts: (B, U) co-rated (or agreeing) counts.
        n_rated: (B,) |I_x| of each query user.

    Returns:
        (B, U) in [0, 1]; 0 where |I_x| = 0.
    """
    co = np.asarray(co_counts, dtype=np.float64)
    n = np.asarray(n_rated, dtype=np.float64)[:, None]
    return np.divide(co, n, out=np.zeros_like(co), where=n > 0)


@dataclass
class NeighbourhoodScores:
    """Neighbourhood aggregates of B query users over all I items.

    Attributes:
        prediction: (B, I) Resnick p_{x,i} clipped to the scale (§6); NaN where no neighbour
            with a non-zero weight rated i.
        relevance: (B, I) rel(x, i) = C·Σ sim·r on raw ratings (§8); NaN likewise.
        support: (B, I) int number of x's neighbours who rated i.
        contributors: (B, U) sparse neighbour weights actually used: row b stores
            w(x_b, y) for each valid neighbour y, so the contributors to (b, i) are the
            stored users of row b who rated i (see ``top_contributors``).
    """

    prediction: np.ndarray
    relevance: np.ndarray
    support: np.ndarray
    contributors: sp.csr_matrix | None


def _weight_matrix(neighbours: np.ndarray, weights: np.ndarray, n_users: int) -> sp.csr_matrix:
    nb = np.asarray(neighbours, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    if nb.shape != w.shape or nb.ndim != 2:
        raise ValueError("neighbours and weights must both be (B, K)")
    valid = (nb >= 0) & np.isfinite(w)
    if np.any(nb >= n_users):
        raise ValueError("neighbour id out of range")
    b, k = np.nonzero(valid)
    keys = np.sort(b * n_users + nb[b, k])
    if np.any(np.diff(keys) == 0):
        raise ValueError("a neighbour appears twice in one row")
    return sp.csr_matrix((w[b, k], (b, nb[b, k])), shape=(nb.shape[0], n_users))


def neighbourhood_scores(
    R: sp.csr_matrix,
    neighbours: np.ndarray,
    weights: np.ndarray,
    query_means: np.ndarray,
    scale: tuple[float, float],
) -> NeighbourhoodScores:
    """Resnick prediction (FORMULAS.md §6, STANDARD), relevance (§8) and support.

    p_{x,i} = r̄_x + Σ_{y∈N_x, i∈I_y} w(x,y)(r_{y,i} - r̄_y) / Σ_{y∈N_x, i∈I_y} |w(x,y)|,
    with r̄_y over all of y's ratings, clipped to ``scale``. All sums are products of the
    sparse (B, U) weight matrix with R. When r̄_x is NaN (x has no ratings in this domain)
    the base level is the neighbours' |w|-weighted mean r̄_y over all of x's neighbours, so a
    cold user is predicted at their neighbourhood's level plus the item's deviations.

    Args:
        R: (U, I) ratings.
        neighbours: (B, K) user rows, padded with -1; entries with a NaN weight are ignored.
        weights: (B, K) w(x, y), e.g. Sim_CD.
        query_means: (B,) r̄_x, may be NaN.
        scale: (lowest, highest) rating.

    Returns:
        NeighbourhoodScores.
    """
    A = _csr(R)
    W = _weight_matrix(neighbours, weights, A.shape[0])
    absW = _with_data(W, np.abs(W.data))
    M = rating_mask(A)
    means = user_means(A)
    D = _shift_rows(A, means)
    den = _dense(absW @ M)
    num = _dense(W @ D)
    raw = _dense(W @ A)
    support = _dense(_with_data(W, np.ones(W.nnz)) @ M).astype(np.int64)
    ok = den > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (absW @ np.nan_to_num(means)) / (absW @ np.isfinite(means).astype(np.float64))
        base = np.where(np.isfinite(query_means), query_means, level)
        pred = np.where(ok, base[:, None] + num / np.where(ok, den, 1.0), np.nan)
        rel = np.where(ok, raw / np.where(ok, den, 1.0), np.nan)
    pred = np.clip(pred, scale[0], scale[1])
    return NeighbourhoodScores(prediction=pred, relevance=rel, support=support, contributors=W)
