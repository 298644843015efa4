"""The SerenDiff user portrait: a 10x10 grid of (expectedness decile, relevance decile) cells.

MODELS.md 2.2 (PAPER 4.2 + App. A/B) and 2.8. Every history item m >= 2 gets an
expectedness (co-occurrence probability given the items before it) and a relevance (its
best cosine to an earlier item); both are cut into deciles and the pair of bins is the
item's cell. A cell holds the mean embedding of its items; one extra channel counts them.
A candidate item's cell comes from the same two scores against the user's whole history.

Cell convention: ``cell = bin_exp * GRID + bin_rel``, so grid row = expectedness decile and
grid column = relevance decile. The paper puts the first item at (exp, rel) = (1, 1), the
top decile of both: :data:`ANCHOR_CELL` = (9, 9), the "top cell".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from models.expectedness import cooccurrence

GRID = 10
N_CELLS = GRID * GRID
ANCHOR_CELL = N_CELLS - 1  # (bin_exp, bin_rel) = (9, 9)
UserRepr = Literal["portrait", "embedding", "sequence"]
_BLOCK = 1_000_000  # (row, query, history) triples handled at once by query_relations
_DENSE_SVD_LIMIT = 4_000_000  # matrix cells below which a dense SVD is cheaper than svds
_EDGE_TOL = 1e-9  # scores this close to a decile edge are binned as on it


def ordered_interactions(
    ratings: sp.spmatrix, timestamps: sp.spmatrix | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every stored (user, item) sorted by user, then by time (column order without times).

    The history order T_u = (i_1..i_n) of MODELS.md 2.1 (SerenDiff) and 3.5 (PURS windows).

    Returns:
        users (R,), items (R,), rating values (R,), position of the row within its user's
        ordered history (R,), all int64 except the values.
    """
    r = sp.csr_matrix(ratings, dtype=np.float64).sorted_indices()
    lengths = np.diff(r.indptr)
    users = np.repeat(np.arange(r.shape[0], dtype=np.int64), lengths)
    items = r.indices.astype(np.int64)
    values = r.data.copy()
    if timestamps is not None:
        times = np.asarray(sp.csr_matrix(timestamps)[users, items], dtype=np.float64).ravel()
        # lexsort is stable, so equal times keep column order.
        order = np.lexsort((times, users))
        users, items, values = users[order], items[order], values[order]
    position = np.arange(users.size, dtype=np.int64) - r.indptr[:-1][users]
    return users, items, values, position


def history_matrix(
    ratings: sp.spmatrix, timestamps: sp.spmatrix | None, max_len: int
) -> np.ndarray:
    """Each user's last ``max_len`` items, oldest first, padded with -1 -> (U, H) int64.

    The portrait's history T_u (MODELS.md 2.2); the cap bounds the O(H²) prefix scores and
    is RECONSTRUCTED (the paper uses the whole history).
    """
    users, items, _, position = ordered_interactions(ratings, timestamps)
    n_users = int(ratings.shape[0])
    lengths = np.bincount(users, minlength=n_users)
    start = np.maximum(lengths - max_len, 0)
    keep = position >= start[users]
    width = int(min(max_len, lengths.max(initial=0)))
    hist = np.full((n_users, max(width, 1)), -1, dtype=np.int64)
    hist[users[keep], position[keep] - start[users[keep]]] = items[keep]
    return hist


def item_embeddings(
    ratings: sp.spmatrix,
    item_features: np.ndarray | None,
    dim: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Item vectors for the portrait channels (MODELS.md 2.8), standardised per channel.

    PCA of ``item_features`` to ``dim`` when given (PAPER: SentenceBERT of reviews), else a
    truncated SVD of the rating matrix (item factors V·S). Each channel is then shifted and
    scaled to zero mean / unit variance over items so the data scale matches N(0, I).
    Fewer than ``dim`` channels come back when the data has lower rank.

    Returns:
        (I, d) float32.
    """
    if item_features is not None:
        x = np.asarray(item_features, dtype=np.float64)
        x = x - x.mean(axis=0)
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        k = max(1, min(dim, s.size))
        z = u[:, :k] * s[:k]
    else:
        r = sp.csr_matrix(ratings, dtype=np.float64)
        k = max(1, min(dim, min(r.shape) - 1))
        if r.shape[0] * r.shape[1] <= _DENSE_SVD_LIMIT:
            _, s, vt = np.linalg.svd(r.toarray(), full_matrices=False)
            s, vt = s[:k], vt[:k]
        else:
            _, s, vt = svds(r, k=k, random_state=rng)
            top = np.argsort(-s)
            s, vt = s[top], vt[top]
        z = vt.T * s
    # A singular vector's sign is arbitrary; fixing it makes the embedding reproducible.
    flip = np.sign(z[np.abs(z).argmax(axis=0), np.arange(z.shape[1])])
    z = z * np.where(flip == 0, 1.0, flip)
    std = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
    return z.astype(np.float32)


@dataclass
class CooccurrenceTable:
    """Smoothed co-occurrence probability p̃(q|h) for arbitrary item pairs (MODELS.md 1.5).

    p̃(q|h) = (n(q,h) + μ π(q)) / (N_h + μ) with n the number of training users holding both
    items, N_h = Σ_i n(i,h) and π(q) the item's share of all training ratings. Pairs are
    looked up by binary search in the sorted keys ``q * I + h`` of the sparse counts.
    """

    keys: np.ndarray  # (nnz,) int64, ascending
    counts: np.ndarray  # (nnz,) float64
    totals: np.ndarray  # (I,) N_h
    item_counts: np.ndarray  # (I,) training users holding each item
    mu: float

    @classmethod
    def from_ratings(cls, ratings: sp.spmatrix, mu: float = 1.0) -> CooccurrenceTable:
        """Count co-occurrences over the stored pattern of ``ratings`` (U, I)."""
        n = cooccurrence(ratings).tocsr().sorted_indices()
        n_items = n.shape[0]
        rows = np.repeat(np.arange(n_items, dtype=np.int64), np.diff(n.indptr))
        item_counts = np.diff(sp.csc_matrix(ratings).indptr).astype(np.float64)
        return cls(
            keys=rows * n_items + n.indices.astype(np.int64),
            counts=n.data.astype(np.float64),
            totals=np.asarray(n.sum(axis=0), dtype=np.float64).ravel(),
            item_counts=item_counts,
            mu=float(mu),
        )

    @property
    def n_items(self) -> int:
        return int(self.totals.shape[0])

    def prob(
        self, q: np.ndarray, h: np.ndarray, leave_out: np.ndarray | bool = False
    ) -> np.ndarray:
        """p̃(q|h) elementwise over broadcast ``q`` and ``h`` (MODELS.md 2.2, no log).

        ``leave_out`` (broadcastable bool) removes one user's own (q, h) co-occurrence, the
        user whose history holds both: a training target is scored as if it were held out,
        the situation of a test candidate (RECONSTRUCTED: an addition, not in the paper).
        """
        q, h = np.broadcast_arrays(np.asarray(q, dtype=np.int64), np.asarray(h, dtype=np.int64))
        key = q * self.n_items + h
        if self.keys.size:
            idx = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
            n = np.where(self.keys[idx] == key, self.counts[idx], 0.0)
        else:
            n = np.zeros(key.shape)
        drop = np.broadcast_to(np.asarray(leave_out, dtype=bool), n.shape).astype(np.float64)
        total = self.item_counts.sum()
        pi = (self.item_counts[q] - drop) / np.maximum(total - drop, 1.0)
        return (np.maximum(n - drop, 0.0) + self.mu * np.maximum(pi, 0.0)) / (
            np.maximum(self.totals[h] - drop, 0.0) + self.mu
        )


def query_relations(
    table: CooccurrenceTable,
    unit_emb: np.ndarray,
    hist: np.ndarray,
    queries: np.ndarray,
    *,
    causal: bool = False,
    leave_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expectedness and relevance of query items against each row's history (MODELS.md 2.2).

    PAPER App. A for the form; the μ-smoothing and the relevance normalisation are REC,
    i.e. RECONSTRUCTED.

    exp(q) = (1/|T|) Σ_{h∈T} p̃(q|h) (uniform p(h), no log); rel(q) = (max_{h∈T} cos(e_q, e_h)
    + 1) / 2, the REC normalisation of cosine to [0, 1]. With ``causal`` the queries are the
    history itself and T is the prefix before each position (the portrait's T_{1:m-1}).
    A query with an empty T gets 0 for both.

    Args:
        table: co-occurrence counts of the training data.
        unit_emb: (I, d) item embeddings scaled to unit length.
        hist: (B, H) item ids, -1 = padding.
        queries: (B, Q) item ids, -1 = padding.
        causal: use only history positions before the query position (requires Q == H).
        leave_out: (B,) bool, rows whose queries are training targets (see ``prob``).

    Returns:
        exp (B, Q), rel (B, Q), float64.
    """
    n_rows, width = hist.shape
    n_q = queries.shape[1]
    exp = np.zeros((n_rows, n_q))
    rel = np.zeros((n_rows, n_q))
    before = np.tri(n_q, width, k=-1, dtype=bool)[None] if causal else True
    step = max(1, _BLOCK // max(1, width * n_q))
    for lo in range(0, n_rows, step):  # blocks of rows bound the (B, Q, H) temporaries
        hb, qb = hist[lo : lo + step], queries[lo : lo + step]
        mask = (hb >= 0)[:, None, :] & (qb >= 0)[:, :, None] & before  # (b, Q, H)
        drop = False if leave_out is None else leave_out[lo : lo + step, None, None]
        p = table.prob(np.maximum(qb, 0)[:, :, None], np.maximum(hb, 0)[:, None, :], drop)
        n_valid = mask.sum(axis=-1)
        exp[lo : lo + step] = (p * mask).sum(axis=-1) / np.maximum(n_valid, 1)
        cos = unit_emb[np.maximum(qb, 0)] @ unit_emb[np.maximum(hb, 0)].transpose(0, 2, 1)
        best = np.where(mask, cos, -np.inf).max(axis=-1, initial=-np.inf)
        rel[lo : lo + step] = np.where(n_valid > 0, (best + 1.0) / 2.0, 0.0)
    return exp, rel


@dataclass
class DecileBins:
    """Decile edges of expectedness (on log scale) and relevance (MODELS.md 2.2, REC:
    RECONSTRUCTED handling of zeros and of the log scale; PAPER: 10-quantiles).

    Exact zeros of expectedness fall in the lowest bin; the edges are the 10-quantiles of
    log(exp) over the positive values of the pooled training distribution.
    """

    exp_edges: np.ndarray  # (GRID - 1,) on log(exp)
    rel_edges: np.ndarray  # (GRID - 1,)

    @classmethod
    def fit(cls, exp: np.ndarray, rel: np.ndarray) -> DecileBins:
        """Edges from pooled training scores (1-D arrays of valid history positions)."""
        levels = np.arange(1, GRID) / GRID
        positive = exp[exp > 0]
        exp_edges = np.quantile(np.log(positive), levels) if positive.size else np.zeros(GRID - 1)
        rel_edges = np.quantile(rel, levels) if rel.size else levels.copy()
        return cls(exp_edges=exp_edges, rel_edges=rel_edges)

    def cells(self, exp: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """Cell index ``bin_exp * GRID + bin_rel`` for each score pair (same shape, int64).

        A value within ``_EDGE_TOL`` of an edge counts as on it (upper bin): edges are
        quantiles and so often equal to a score, which rounding must not move across.
        """
        with np.errstate(divide="ignore"):
            log_exp = np.log(exp)
        bin_exp = np.searchsorted(self.exp_edges, log_exp + _EDGE_TOL, side="right")
        bin_exp = np.where(exp > 0, bin_exp, 0)
        bin_rel = np.searchsorted(self.rel_edges, rel + _EDGE_TOL, side="right")
        return (bin_exp * GRID + bin_rel).astype(np.int64)


def history_cells(
    hist: np.ndarray, exp: np.ndarray, rel: np.ndarray, bins: DecileBins
) -> np.ndarray:
    """Cells of left-aligned histories; the first item sits at :data:`ANCHOR_CELL`.

    MODELS.md 2.2 (PAPER 4.2: the first item is placed at (exp, rel) = (1, 1)).

    Args:
        hist: (B, H) item ids, oldest first, -1 = padding.
        exp, rel: (B, H) causal scores from :func:`query_relations`.

    Returns:
        (B, H) int64 cells, -1 on padding.
    """
    cells = bins.cells(exp, rel)
    cells[:, 0] = ANCHOR_CELL
    return np.where(hist >= 0, cells, -1)


def pool_cells(hist: np.ndarray, cells: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """Mean embedding per cell plus a log(1 + count) channel (MODELS.md 2.2, 2.8).

    Args:
        hist: (B, H) item ids, -1 = padding.
        cells: (B, H) cell of each position; -1 leaves the item out.
        emb: (I, d) item embeddings.

    Returns:
        (B, d + 1, GRID, GRID) float32; empty cells are 0 in every channel.
    """
    n_rows, dim = hist.shape[0], emb.shape[1]
    rows, pos = np.nonzero((hist >= 0) & (cells >= 0))
    slot = rows * N_CELLS + cells[rows, pos]
    # A sparse (slots x items) averaging matrix sums each cell's embeddings in one product.
    pick = sp.csr_matrix(
        (np.ones(slot.size), (slot, np.arange(slot.size))), shape=(n_rows * N_CELLS, slot.size)
    )
    counts = np.bincount(slot, minlength=n_rows * N_CELLS).astype(np.float64)
    means = (pick @ emb[hist[rows, pos]].astype(np.float64)) / np.maximum(counts, 1.0)[:, None]
    grid = np.concatenate([means, np.log1p(counts)[:, None]], axis=1)  # (B*100, d+1)
    return (
        grid.reshape(n_rows, N_CELLS, dim + 1)
        .transpose(0, 2, 1)
        .reshape(n_rows, dim + 1, GRID, GRID)
        .astype(np.float32)
    )


def user_condition(
    kind: UserRepr, hist: np.ndarray, emb: np.ndarray, cells: np.ndarray | None = None
) -> np.ndarray:
    """The conditioning grid for one ``user_repr`` choice (the SerenDiff ablation switch).

    ``portrait``: :func:`pool_cells` on the exp/rel cells (the paper's M^u). ``embedding``:
    the mean history embedding and log(1 + |T|) copied into every cell (no spatial layout).
    ``sequence``: the last 100 items in time order, row-major from cell 0 (layout by time,
    not by expectedness/relevance). MODELS.md 2.2 for the portrait; the two other layouts
    are RECONSTRUCTED ablation baselines (MODELS.md names none).

    Returns:
        (B, d + 1, GRID, GRID) float32.
    """
    valid = hist >= 0
    if kind == "portrait":
        if cells is None:
            raise ValueError("the portrait condition needs the history cells")
        return pool_cells(hist, cells, emb)
    if kind == "sequence":
        length = valid.sum(axis=1, keepdims=True)
        slot = np.arange(hist.shape[1])[None, :] - np.maximum(length - N_CELLS, 0)
        return pool_cells(hist, np.where(valid & (slot >= 0), slot, -1), emb)
    if kind == "embedding":
        n = valid.sum(axis=1)
        mean = (emb[np.maximum(hist, 0)] * valid[..., None]).sum(axis=1) / np.maximum(n, 1)[:, None]
        flat = np.concatenate([mean, np.log1p(n)[:, None]], axis=1).astype(np.float32)
        return np.broadcast_to(flat[:, :, None, None], (*flat.shape, GRID, GRID)).copy()
    raise ValueError(f"unknown user_repr {kind!r}")


def target_grid(cells: np.ndarray, vectors: np.ndarray, occupancy: bool) -> np.ndarray:
    """x_0 = M_seren: each target's vector at its cell, zeros elsewhere (MODELS.md 2.2).

    The target's cell comes from its exp/rel against the user's history, the rule used for
    candidates (RECONSTRUCTED: the paper does not say how the target cell is computed).

    With ``occupancy`` one more channel is +1 at the target cell and -1 elsewhere
    (MODELS.md 2.8, an addition to the paper).

    Args:
        cells: (B,) target cells.
        vectors: (B, d) target embeddings.

    Returns:
        (B, d [+1], GRID, GRID) float32.
    """
    n_rows, dim = vectors.shape
    out = np.zeros((n_rows, dim + int(occupancy), N_CELLS), dtype=np.float32)
    out[np.arange(n_rows), :dim, cells] = vectors
    if occupancy:
        out[:, dim] = -1.0
        out[np.arange(n_rows), dim, cells] = 1.0
    return out.reshape(n_rows, -1, GRID, GRID)
