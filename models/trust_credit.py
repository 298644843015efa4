"""Who is credited for a recommended item: the neighbours R-B feedback reaches (FORMULAS.md §5-6).

A feedback event on item i moves x's trust in the neighbours named with i. Which neighbours
is ``TrustConfig.credit`` (RECONSTRUCTED): all who rated i, or the vouchers, whose rating
pushed the Resnick prediction p_{x,i} up.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from models.cf import user_means


def top_contributors(
    R: sp.csr_matrix,
    neighbours: np.ndarray,
    weights: np.ndarray,
    user_row_index: int,
    items: np.ndarray,
    limit: int = 10,
    only: Literal["raters", "vouchers"] = "raters",
) -> list[list[int]]:
    """Neighbours whose ratings produced each item's score, for crediting feedback (§5, §6).

    ``vouchers`` (RECONSTRUCTED, see ``TrustConfig.credit``) keeps the neighbours who pushed
    the Resnick prediction up: with a positive weight, y's term w(x,y)(r_{y,i} - r̄_y) raises
    p_{x,i} exactly when r_{y,i} > r̄_y (r̄_y over all of y's ratings in R, as in
    ``models.cf.neighbourhood_scores``); with a negative weight, when r_{y,i} < r̄_y. So a
    neighbour is credited or blamed for an item only if they recommended it.

    Args:
        R: (U, I) ratings.
        neighbours: (B, K) user rows padded with -1 (as for ``neighbourhood_scores``).
        weights: (B, K) weights; NaN entries are ignored.
        user_row_index: the batch row b of the query user.
        items: (n,) item ids.
        limit: at most this many ids per item.
        only: ``raters`` every neighbour who rated the item; ``vouchers`` those whose rating
            pushed its prediction up.

    Returns:
        For each item, the neighbour user ids who rated it (and vouched for it, if asked),
        by |weight| descending (ties keep the neighbour order).
    """
    nb = np.asarray(neighbours[user_row_index], dtype=np.int64)
    w = np.asarray(weights[user_row_index], dtype=np.float64)
    valid = (nb >= 0) & np.isfinite(w)
    nb, w = nb[valid], w[valid]
    order = np.argsort(-np.abs(w), kind="stable")
    nb, w = nb[order], w[order]
    items = np.asarray(items, dtype=np.int64)
    rows = sp.csr_matrix(R, dtype=np.float64)[nb]
    rows.sort_indices()
    sub = rows[:, items]
    row_of = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))  # neighbour per entry
    rated = np.zeros((len(items), len(nb)), dtype=bool)  # (n, K')
    if only == "vouchers":
        # A neighbour's term raises the prediction when sign(w)·(r_yi - r̄_y) > 0.
        push = (sub.data - user_means(rows)[row_of]) * w[row_of]
        keep = push > 0
        rated[sub.indices[keep], row_of[keep]] = True
    else:
        rated[sub.indices, row_of] = True
    item_pos, k = np.nonzero(rated)
    groups = np.split(nb[k], np.cumsum(np.bincount(item_pos, minlength=len(items)))[:-1])
    return [g[:limit].tolist() for g in groups]
