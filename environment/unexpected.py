"""Ground-truth unexpectedness: how far an item lies from what a user has consumed.

The distance of item i to user u is ``1 - max_{j in H_u} cos(v_i, v_j)`` over the unit taste
vectors of ``LatentTruth.item_vectors()`` (shared part, comparable across domains); in [0, 2].
An item is unexpected to u when this exceeds u's comfort radius. Only the environment uses
this: the recommender agents estimate unexpectedness from co-occurrence (FORMULAS.md section 9).
"""

from __future__ import annotations

import numpy as np

EMPTY_HISTORY_DISTANCE = 2.0  # nothing consumed yet: everything is as far as it can be


def distance_to_history(
    vectors: np.ndarray,
    hist_users: np.ndarray,
    hist_items: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    """Distances (B, C) of ``items`` to each of ``users``' histories.

    One matrix product per user (the history sizes differ), never a loop over pairs.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    sims = vectors[items] @ vectors.T  # (C, I)
    order = np.argsort(hist_users, kind="stable")
    hu, hi = hist_users[order], hist_items[order]
    starts = np.searchsorted(hu, users, side="left")
    ends = np.searchsorted(hu, users, side="right")
    out = np.full((len(users), len(items)), EMPTY_HISTORY_DISTANCE)
    for b, (s, e) in enumerate(zip(starts, ends, strict=True)):
        if e > s:
            out[b] = 1.0 - sims[:, hi[s:e]].max(axis=1)
    return out


def item_distances(vectors: np.ndarray, history: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Distances (C,) of ``items`` to one user's ``history`` (item ids)."""
    if len(history) == 0:
        return np.full(len(items), EMPTY_HISTORY_DISTANCE)
    return 1.0 - (vectors[items] @ vectors[history].T).max(axis=1)
