"""The shared offline protocol for the deep scorers and the baselines (MODELS.md section 5).

Leave-one-out splits in three settings (relevance, serendipity, cold start), candidate lists
of one held-out positive plus sampled negatives fixed once per seed and shared by every
scorer, and rank metrics HR@k, NDCG@k, MRR. In the serendipity setting the same formulas are
the papers' HR_seren@k and NDCG_seren@k (SerenCDR eq.25).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.expectedness import sample_row_items
from models.scoring import InteractionData, Scorer
from models.torch_utils import numpy_rng

logger = logging.getLogger(__name__)

Setting = Literal["relevance", "serendipity", "cold_start"]
EvalProgressFn = Callable[[str, int, int], None]  # (scorer name, done epochs, total epochs)

_KEY_CHUNK = 1 << 22  # random keys drawn per chunk when sampling negatives


@dataclass(frozen=True)
class LeaveOneOutSplit:
    """Test users, their held-out positive, and every (user, item) entry hidden from training."""

    setting: Setting
    users: np.ndarray  # (N,) int
    held_out: np.ndarray  # (N,) int item ids
    hidden: sp.csr_matrix  # (U, I) bool pattern removed from the training data

    def train_data(self, data: InteractionData) -> InteractionData:
        """``data`` with the hidden entries removed from ratings, labels and timestamps."""

        def drop(mat: sp.csr_matrix | None) -> sp.csr_matrix | None:
            if mat is None:
                return None
            # Filter stored entries by position, not by value: a stored 0 (a timestamp at
            # step 0, say) must survive.
            coo = sp.coo_matrix(mat)
            if coo.nnz == 0:  # fancy indexing with empty arrays returns a matrix, not a vector
                return sp.csr_matrix(coo)
            hidden = np.asarray(self.hidden[coo.row, coo.col]).ravel().astype(bool)
            keep = ~hidden
            return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)

        return dataclasses.replace(
            data,
            ratings=drop(data.ratings),
            serendipitous=drop(data.serendipitous),
            timestamps=drop(data.timestamps),
        )


def _domain_mask(data: InteractionData, mat: sp.spmatrix) -> sp.csr_matrix:
    """The entries of ``mat`` whose item is in the target domain, as a binary CSR."""
    m = sp.csr_matrix(mat, dtype=np.float64, copy=True)
    m.data[:] = 1.0
    in_target = (data.item_domain == data.target_domain).astype(np.float64)
    out = (m @ sp.diags(in_target)).tocsr()
    out.eliminate_zeros()
    return out


def _row_counts(mat: sp.csr_matrix) -> np.ndarray:
    return np.diff(mat.indptr)


def _subsample(users: np.ndarray, max_users: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_users is None or len(users) <= max_users:
        return users
    return np.sort(rng.choice(users, size=max_users, replace=False))


def _one_per_user(
    setting: Setting, pool: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator
) -> LeaveOneOutSplit:
    held = sample_row_items(pool, users, 1, rng)[:, 0]
    hidden = sp.csr_matrix((np.ones(len(users), dtype=bool), (users, held)), shape=pool.shape)
    return LeaveOneOutSplit(setting, users, held, hidden)


def split_relevance(
    data: InteractionData, seed: int, min_target: int = 2, max_users: int | None = None
) -> LeaveOneOutSplit:
    """Hold out one liked target item per user with ``min_target`` target ratings or more."""
    rng = numpy_rng(seed, 1)
    rated = _domain_mask(data, data.ratings)
    liked = _domain_mask(data, data.liked())
    ok = (_row_counts(liked) > 0) & (_row_counts(rated) >= min_target)
    users = _subsample(np.flatnonzero(ok), max_users, rng)
    return _one_per_user("relevance", liked, users, rng)


def split_serendipity(
    data: InteractionData, seed: int, min_target: int = 2, max_users: int | None = None
) -> LeaveOneOutSplit:
    """Hold out one serendipitous target item per user who has one (and ``min_target`` ratings)."""
    if data.serendipitous is None:
        raise ValueError("the serendipity setting needs data.serendipitous labels")
    rng = numpy_rng(seed, 2)
    rated = _domain_mask(data, data.ratings)
    seren = _domain_mask(data, data.serendipitous)
    ok = (_row_counts(seren) > 0) & (_row_counts(rated) >= min_target)
    users = _subsample(np.flatnonzero(ok), max_users, rng)
    return _one_per_user("serendipity", seren, users, rng)


def split_cold_start(
    data: InteractionData,
    seed: int,
    fraction: float = 0.2,
    min_source: int = 1,
    max_users: int | None = None,
) -> LeaveOneOutSplit:
    """Hide all target ratings of a ``fraction`` of the users with source history.

    The positive is one of their liked target items; the users keep only their ratings in
    the other domains, so only a cross-domain scorer can know their target tastes.
    """
    rng = numpy_rng(seed, 3)
    rated = _domain_mask(data, data.ratings)
    liked = _domain_mask(data, data.liked())
    n_source = _row_counts(sp.csr_matrix(data.ratings)) - _row_counts(rated)
    eligible = np.flatnonzero((_row_counts(liked) > 0) & (n_source >= min_source))
    n_test = max(1, round(fraction * len(eligible))) if len(eligible) else 0
    users = np.sort(rng.choice(eligible, size=n_test, replace=False))
    users = _subsample(users, max_users, rng)
    held = sample_row_items(liked, users, 1, rng)[:, 0]
    hidden = sp.csr_matrix(sp.diags(np.isin(np.arange(data.n_users), users).astype(float)) @ rated)
    return LeaveOneOutSplit("cold_start", users, held, hidden.astype(bool))


@dataclass(frozen=True)
class CandidateLists:
    """Per test user: column 0 the held-out positive, then ``n_negatives`` sampled negatives."""

    users: np.ndarray  # (N,) int
    items: np.ndarray  # (N, 1 + n_negatives) int

    @classmethod
    def sample(
        cls,
        data: InteractionData,
        split: LeaveOneOutSplit,
        n_negatives: int = 99,
        seed: int = 0,
        cells: np.ndarray | None = None,
        exclude: sp.spmatrix | None = None,
    ) -> CandidateLists:
        """Negatives: target items the user has not rated (held-out items included), no repeats.

        Args:
            data: the FULL data (before the split), so that hidden ratings are never negatives.
            split: the test users and their positives.
            n_negatives: negatives per user (99 as in SerenCDR/VAE, 999 as in SerenDiff).
            seed: the lists depend on this seed only; fix them once and share them.
            cells: optional (I,) or (N, I) cell id per item (per test user): negatives are then
                spread evenly over the cells, the shortfall of small cells filled at random.
            exclude: optional (U, I) pattern of further items never drawn as a user's
                negatives (the serendipity setting's unrated serendipitous items).
        """
        rng = numpy_rng(seed, 4)
        pool = data.domain_items(data.target_domain)  # (P,)
        rated = sp.csr_matrix(data.ratings)[split.users][:, pool]  # (N, P)
        if exclude is not None:
            rated = rated.astype(bool) + sp.csr_matrix(exclude)[split.users][:, pool].astype(bool)
        rows = np.empty((len(split.users), n_negatives), dtype=np.int64)
        chunk = max(1, _KEY_CHUNK // max(len(pool), 1))
        for start in range(0, len(split.users), chunk):
            stop = min(start + chunk, len(split.users))
            taken = np.asarray(rated[start:stop].todense()) != 0
            keys = rng.random(taken.shape)
            keys[taken] = np.inf
            if np.any((~taken).sum(axis=1) < n_negatives):
                raise ValueError(
                    f"a test user has fewer than {n_negatives} target items to draw negatives from"
                )
            if cells is None:
                pick = np.argpartition(keys, n_negatives - 1, axis=1)[:, :n_negatives]
            else:
                cell_rows = cells[pool] if cells.ndim == 1 else cells[start:stop][:, pool]
                pick = _spread_over_cells(keys, np.broadcast_to(cell_rows, keys.shape), n_negatives)
            rows[start:stop] = pool[np.sort(pick, axis=1)]
        return cls(split.users.copy(), np.concatenate([split.held_out[:, None], rows], axis=1))


def _spread_over_cells(keys: np.ndarray, cells: np.ndarray, n: int) -> np.ndarray:
    """Columns of the ``n`` picks per row: ``n // n_cells`` smallest keys per cell, then fill."""
    n_cells = len(np.unique(cells))
    order = np.lexsort((keys, cells), axis=-1)  # by cell, then by key
    sorted_cells = np.take_along_axis(cells, order, axis=1)
    pos = np.broadcast_to(np.arange(keys.shape[1]), keys.shape)
    run_start = np.where(np.diff(sorted_cells, axis=1, prepend=-1) != 0, pos, 0)
    rank_in_cell = pos - np.maximum.accumulate(run_start, axis=1)
    sorted_keys = np.take_along_axis(keys, order, axis=1)
    chosen = (rank_in_cell < n // n_cells) & np.isfinite(sorted_keys)
    # Chosen items first (key -1), then the rest by key: the first n columns are the picks.
    fill_key = np.where(chosen, -1.0, sorted_keys)
    top = np.argpartition(fill_key, n - 1, axis=1)[:, :n]
    return np.take_along_axis(order, top, axis=1)


def ranks(
    scores: np.ndarray,
    seed: int = 0,
    ties: Literal["random", "pessimistic"] = "random",
) -> np.ndarray:
    """0-based rank of column 0 among its row (MODELS.md 5).

    rank = number of negatives scoring strictly higher, plus, for ``ties="random"``, a
    uniform draw from 0..t where t negatives tie with the positive (seeded tie-breaking);
    ``"pessimistic"`` adds all t (a tie counts against the positive).
    """
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores hold NaN or infinite values")
    pos = s[:, :1]
    higher = (s[:, 1:] > pos).sum(axis=1)
    tied = (s[:, 1:] == pos).sum(axis=1)
    if ties == "pessimistic":
        return higher + tied
    draw = np.floor(numpy_rng(seed, 5).random(len(s)) * (tied + 1)).astype(np.int64)
    return higher + draw


def rank_metrics(
    scores: np.ndarray,
    seed: int = 0,
    ties: Literal["random", "pessimistic"] = "random",
    hr_ks: tuple[int, ...] = (1, 5, 10),
    ndcg_ks: tuple[int, ...] = (5, 10),
) -> dict[str, float]:
    """HR@k = 1[r < k], NDCG@k = 1/log2(r+2) if r < k, MRR = 1/(r+1), averaged over rows.

    Args:
        scores: (N, 1 + n) scores, column 0 the positive.
        seed: tie-breaking seed (see :func:`ranks`).
        ties: tie rule (see :func:`ranks`).
        hr_ks: cut-offs for HR.
        ndcg_ks: cut-offs for NDCG.
    """
    r = ranks(scores, seed=seed, ties=ties).astype(np.float64)
    out = {f"HR@{k}": float(np.mean(r < k)) for k in hr_ks}
    gain = 1.0 / np.log2(r + 2.0)
    out.update({f"NDCG@{k}": float(np.mean(np.where(r < k, gain, 0.0))) for k in ndcg_ks})
    out["MRR"] = float(np.mean(1.0 / (r + 1.0)))
    return out


def score_candidates(scorer: Scorer, cands: CandidateLists, batch_size: int = 256) -> np.ndarray:
    """Scores of every candidate list, in user batches -> (N, 1 + n)."""
    out = np.empty(cands.items.shape, dtype=np.float64)
    for start in range(0, len(cands.users), batch_size):
        sl = slice(start, start + batch_size)
        out[sl] = scorer.score(cands.users[sl], cands.items[sl])
    return out


def evaluate_scorers(
    scorers: Mapping[str, Scorer],
    data: InteractionData,
    split: LeaveOneOutSplit,
    cands: CandidateLists,
    *,
    seed: int = 0,
    device: str = "auto",
    fit: bool = True,
    batch_size: int = 256,
    ties: Literal["random", "pessimistic"] = "random",
    progress: EvalProgressFn | None = None,
) -> pd.DataFrame:
    """Fit each scorer on the split's training data, score the shared lists, one row each.

    Args:
        scorers: name -> scorer (fresh ones when ``fit``; already fitted ones otherwise).
        data: the full data; each scorer trains on ``split.train_data(data)``.
        split: the split the candidate lists were built from.
        cands: the shared candidate lists.
        seed: training seed (and tie-breaking seed) for every scorer.
        device: ``auto``, ``cpu`` or ``cuda``.
        fit: train the scorers first.
        batch_size: users per scoring call.
        ties: tie rule of the ranks.
        progress: called with (scorer name, done epochs, total epochs).

    Returns:
        Columns scorer, setting, n_users, HR@k..., NDCG@k..., MRR, fit_s, score_s.
    """
    if not np.array_equal(cands.users, split.users):
        raise ValueError("the candidate lists were not built from this split")
    train = split.train_data(data) if fit else data
    rows = []
    for name, scorer in scorers.items():
        t0 = time.perf_counter()
        if fit:
            hook = None if progress is None else (lambda d, t, n=name: progress(n, d, t))
            scorer.fit(train, seed=seed, device=device, progress=hook)
        t1 = time.perf_counter()
        scores = score_candidates(scorer, cands, batch_size=batch_size)
        t2 = time.perf_counter()
        metrics = rank_metrics(scores, seed=seed, ties=ties)
        logger.info("%s (%s): %s", name, split.setting, metrics)
        rows.append(
            {
                "scorer": name,
                "setting": split.setting,
                "n_users": len(cands.users),
                **metrics,
                "fit_s": t1 - t0,
                "score_s": t2 - t1,
            }
        )
    return pd.DataFrame(rows)
