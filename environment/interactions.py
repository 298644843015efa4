"""A world's initial history as the arrays the scorers learn from (``models.scoring``).

``world_interactions`` is the one bridge between a ``WorldData`` (synthetic or real) and the
offline protocol of the deep scorers: ratings of every domain, timestamps when the data have
them, and serendipity labels taken from the ground truth that the recommender agents never
see. A history rating (u, i) is labelled serendipitous when it is both

* valuable: the true utility of i to u is at least the world's like threshold, and
* unexpected: the distance of i to u's OTHER history items (``environment/unexpected.py``:
  1 - the best cosine of the taste vectors) exceeds u's comfort radius,

the same rule the simulated users apply to what they consume during a run (agents/user.py),
applied to what they had consumed before it.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp

from environment.unexpected import EMPTY_HISTORY_DISTANCE
from environment.world_data import RatingLog, WorldData
from models.scoring import InteractionData

log = logging.getLogger(__name__)

LabelDomains = Literal["target", "all"]

_SIMS_BUDGET = 4_000_000  # entries of one (labelled ratings x block ratings) similarity block


def _dedupe(history: RatingLog) -> RatingLog:
    """One rating per (user, item): the last one in log order (a re-rating replaces)."""
    if len(history) == 0:
        return history
    key = history.users.astype(np.int64) * (int(history.items.max()) + 1) + history.items
    _, last_from_end = np.unique(key[::-1], return_index=True)
    keep = np.zeros(len(history), dtype=bool)
    keep[len(history) - 1 - last_from_end] = True
    if not keep.all():
        log.warning("history holds %d repeated (user, item) ratings; kept the last", (~keep).sum())
    return history.subset(keep)


def distance_to_other_history(
    vectors: np.ndarray, users: np.ndarray, items: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Distance of each history rating in ``rows`` to the same user's other history items.

    Distance = 1 - max cos over the user's other rated items (``environment/unexpected.py``);
    ``EMPTY_HISTORY_DISTANCE`` for a user with nothing else in the history. Users go in
    blocks whose histories hold about sqrt(_SIMS_BUDGET) ratings together: one
    (rows of the block x ratings of the block) product per block, the other users' entries
    and each rating's own entry masked out.

    Args:
        vectors: (I, D) unit taste vectors (``LatentTruth.item_vectors()``).
        users: (R,) user of each history rating.
        items: (R,) item of each history rating.
        rows: (Q,) indices into the history of the ratings to measure.

    Returns:
        (Q,) distances, aligned with ``rows``.
    """
    out = np.full(len(rows), EMPTY_HISTORY_DISTANCE)
    if len(rows) == 0:
        return out
    order = np.argsort(users, kind="stable")
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))  # position of each rating in user order
    s_users, s_vectors = users[order], vectors[items[order]]  # (R,), (R, D)
    present, starts = np.unique(s_users, return_index=True)
    ends = np.append(starts[1:], len(s_users))
    q_pos = pos[rows]  # (Q,) measured ratings in user order
    q_sort = np.argsort(q_pos, kind="stable")
    q_sorted = q_pos[q_sort]
    cap = max(1, int(np.sqrt(_SIMS_BUDGET)))
    first = 0
    while first < len(present):
        last = max(first + 1, int(np.searchsorted(ends, starts[first] + cap, side="right")))
        lo, hi = int(starts[first]), int(ends[last - 1])
        a, b = np.searchsorted(q_sorted, [lo, hi])
        if b > a:
            q = q_sorted[a:b]  # (Qb,) positions in [lo, hi)
            sims = s_vectors[q] @ s_vectors[lo:hi].T  # (Qb, Rb)
            other = s_users[q][:, None] == s_users[lo:hi][None, :]
            other[np.arange(len(q)), q - lo] = False  # an item is not its own history
            best = np.where(other, sims, -np.inf).max(axis=1)
            out[q_sort[a:b]] = np.where(np.isfinite(best), 1.0 - best, EMPTY_HISTORY_DISTANCE)
        first = last
    return out


def serendipity_labels(
    world: WorldData, domains: LabelDomains = "target", history: RatingLog | None = None
) -> np.ndarray:
    """(R,) bool over the history: valuable and unexpected ratings (module docstring).

    Args:
        world: the world; its ground truth (tastes, comfort radius) decides the labels.
        domains: label ratings of the target domain only (the default definition), or of every
            domain (so that a two-domain model such as SerenCDR also has source-side labels).
        history: the ratings to label (default ``world.history``).
    """
    h = world.history if history is None else history
    labelled = np.ones(len(h), dtype=bool)
    if domains == "target":
        labelled = world.item_domain[h.items] == world.target_domain
    rows = np.flatnonzero(labelled)
    out = np.zeros(len(h), dtype=bool)
    if len(rows) == 0:
        return out
    valuable = world.truth.pair_utility(h.users[rows], h.items[rows]) >= world.like_threshold
    rows = rows[valuable]
    dist = distance_to_other_history(world.truth.item_vectors(), h.users, h.items, rows)
    out[rows[dist > world.comfort_radius[h.users[rows]]]] = True
    return out


def _timestamps(history: RatingLog) -> np.ndarray | None:
    if history.timestamps is None:
        return None
    ts = np.asarray(history.timestamps, dtype=np.float64)
    known = np.isfinite(ts)
    if not known.any():
        return None
    if not known.all():
        # Unknown times sort first: a sequence model then reads them as the oldest history.
        log.info("%d of %d history ratings have no timestamp", (~known).sum(), len(ts))
        ts = np.where(known, ts, ts[known].min() - 1.0)
    return ts


def world_interactions(world: WorldData, labels: LabelDomains = "target") -> InteractionData:
    """The world's whole initial history (every user, every domain) as ``InteractionData``.

    Late arrivals' history is included: the offline protocol sees the data, not the run's
    clock. Ratings are kept on the world's scale; ``serendipitous`` holds the ground-truth
    labels of :func:`serendipity_labels`; ``timestamps`` (same pattern as ``ratings``) when
    the history has them; no item features (the taste vectors are ground truth).

    Args:
        world: a synthetic or real world.
        labels: which domains get serendipity labels (see :func:`serendipity_labels`).
    """
    h = _dedupe(world.history)
    shape = (world.n_users, world.n_items)
    coords = (h.users.astype(np.int64), h.items.astype(np.int64))
    ratings = sp.csr_matrix((h.ratings.astype(np.float64), coords), shape=shape)
    seren = serendipity_labels(world, labels, h)
    labelled = sp.csr_matrix(
        (np.ones(int(seren.sum())), (coords[0][seren], coords[1][seren])), shape=shape
    )
    ts = _timestamps(h)
    stamps = None if ts is None else sp.csr_matrix((ts, coords), shape=shape)
    return InteractionData(
        ratings=ratings,
        item_domain=np.asarray(world.item_domain, dtype=np.int64),
        target_domain=int(world.target_domain),
        like_threshold=float(world.like_threshold),
        serendipitous=labelled,
        timestamps=stamps,
    )


def unrated_serendipitous(
    world: WorldData, users: np.ndarray, history: RatingLog | None = None
) -> sp.csr_matrix:
    """(U, I) bool: target items each of ``users`` has NOT rated but would find serendipitous.

    The rule of :func:`serendipity_labels` applied to items outside the history: true utility
    at least the like threshold, and distance to the user's whole history (1 - the best cosine
    of the taste vectors) beyond the user's comfort radius. The ranking protocol keeps these
    out of the serendipity setting's negatives, so that its lists hold one serendipitous item
    and non-serendipitous others (MODELS.md 1.8).

    Users go in blocks: one (block x target items) utility product and one (target items x
    block history) similarity product per block, each under about ``_SIMS_BUDGET`` entries.

    Args:
        world: the world (its ground truth decides).
        users: (N,) the users to mark; other rows stay empty.
        history: what counts as rated and as the history (default ``world.history``).
    """
    h = _dedupe(world.history if history is None else history)
    users = np.unique(np.asarray(users, dtype=np.int64))
    shape = (world.n_users, world.n_items)
    pool = np.flatnonzero(world.item_domain == world.target_domain)
    if len(users) == 0 or len(pool) == 0:
        return sp.csr_matrix(shape, dtype=bool)
    vectors = world.truth.item_vectors()
    mine = np.flatnonzero(np.isin(h.users, users))  # only these users' ratings, so that a
    order = mine[np.argsort(h.users[mine], kind="stable")]  # block's history is contiguous
    hu, hi = h.users[order].astype(np.int64), h.items[order].astype(np.int64)
    starts = np.searchsorted(hu, users, side="left")
    ends = np.searchsorted(hu, users, side="right")
    # Position of each pool item, to mark the rated ones of a block.
    pool_pos = np.full(world.n_items, -1, dtype=np.int64)
    pool_pos[pool] = np.arange(len(pool))
    cap = max(1, _SIMS_BUDGET // len(pool))  # users, and history ratings, per block
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    first = 0
    while first < len(users):
        last = first + 1  # at least one user; then as many as the budget allows
        while last < len(users) and last - first < cap and ends[last] - starts[first] <= cap:
            last += 1
        block = users[first:last]
        lo, hi_ = int(starts[first]), int(ends[last - 1])
        util = world.truth.utility(block, pool)  # (B, P)
        far = np.full(util.shape, EMPTY_HISTORY_DISTANCE)
        if hi_ > lo:
            sims = vectors[pool] @ vectors[hi[lo:hi_]].T  # (P, R_b)
            local = np.searchsorted(block, hu[lo:hi_])  # block row of each history rating
            # History is sorted by user, so each user's columns are one run: one max per run.
            present, run_start = np.unique(local, return_index=True)
            far[present] = 1.0 - np.maximum.reduceat(sims, run_start, axis=1).T
            rated = pool_pos[hi[lo:hi_]]
            keep = rated >= 0
            far[local[keep], rated[keep]] = -np.inf  # a rated item is never "unrated"
        hit = (util >= world.like_threshold) & (far > world.comfort_radius[block][:, None])
        r, c = np.nonzero(hit)
        rows.append(block[r])
        cols.append(pool[c])
        first = last
    r_all, c_all = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r_all), dtype=bool), (r_all, c_all)), shape=shape)
