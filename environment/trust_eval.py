"""Learned trust against a real trust network (Ciao): does feedback recover who trusts whom?

The score is the AUC of the learned trust τ_{x,y} for telling real trust edges (x trusts y
in the data) from random user pairs, in its Mann-Whitney form: the probability that a real
edge scores above a random pair, ties counting one half. Pairs the model holds no trust for
score 0 (the simulation stores τ only for pairs that were ever neighbour candidates), so an
AUC above 0.5 says that trusted pairs are more often candidates, more trusted, or both.
"""

from __future__ import annotations

import numpy as np

_MAX_DRAWS = 64  # rounds of negative sampling before giving up on a (nearly) complete graph


def mann_whitney_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 1/2 P(equal), from average ranks.

    Args:
        positive: (P,) scores of the positives.
        negative: (N,) scores of the negatives.

    Returns:
        The AUC in [0, 1]; NaN when either set is empty.
    """
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    from scipy.stats import (
        rankdata,  # scipy.stats costs ~1 s to import; only Ciao-like runs need it
    )

    ranks = rankdata(np.concatenate([pos, neg]))  # ties get their average rank
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def _pair_scores(keys: np.ndarray, score_keys: np.ndarray, scores: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(score_keys, keys)
    found = pos < score_keys.size
    found[found] = score_keys[pos[found]] == keys[found]
    out = np.zeros(keys.shape)
    out[found] = scores[pos[found]]
    return out


def trust_auc(
    x: np.ndarray,
    y: np.ndarray,
    tau: np.ndarray,
    edges: np.ndarray,
    n_users: int,
    rng: np.random.Generator,
    negatives: int = 20_000,
    present: np.ndarray | None = None,
) -> float:
    """AUC of learned trust for real trust edges against random user pairs.

    Positives are the real edges (truster, trustee) whose two users are present; negatives
    are ``negatives`` pairs (a, b), a != b, drawn uniformly with replacement among present
    users and kept only when (a, b) is not a real edge. Each pair scores the learned
    τ_{a,b}, 0 where none is held.

    Args:
        x: (P,) trusters of the learned trust values.
        y: (P,) trustees.
        tau: (P,) τ_{x,y}; a pair given twice keeps its last value.
        edges: (E, 2) real trust edges (truster, trustee) on the same user ids.
        n_users: number of user ids.
        rng: draws the negative pairs.
        negatives: how many negative pairs to score.
        present: (n_users,) bool users in the world now (default: everyone).

    Returns:
        The AUC; NaN when there is no positive or no negative pair.
    """
    if negatives < 1:
        raise ValueError("negatives must be >= 1")
    here = np.ones(n_users, dtype=bool) if present is None else np.asarray(present, dtype=bool)
    keys = np.asarray(x, dtype=np.int64) * n_users + np.asarray(y, dtype=np.int64)
    # The last occurrence of a repeated pair wins, as in TrustState.observe.
    uniq, last_rev = np.unique(keys[::-1], return_index=True)
    values = np.asarray(tau, dtype=np.float64)[::-1][last_rev]

    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = e[(e[:, 0] != e[:, 1]) & here[e[:, 0]] & here[e[:, 1]]]
    edge_keys = np.unique(e[:, 0] * n_users + e[:, 1])
    users = np.flatnonzero(here)
    if edge_keys.size == 0 or users.size < 2:
        return float("nan")

    drawn: list[np.ndarray] = []
    have = 0
    for _ in range(_MAX_DRAWS):
        a = users[rng.integers(0, users.size, size=2 * negatives)]
        b = users[rng.integers(0, users.size, size=2 * negatives)]
        k = a * n_users + b
        k = k[(a != b) & ~np.isin(k, edge_keys)]
        drawn.append(k)
        have += k.size
        if have >= negatives:
            break
    neg_keys = np.concatenate(drawn)[:negatives]
    return mann_whitney_auc(
        _pair_scores(edge_keys, uniq, values), _pair_scores(neg_keys, uniq, values)
    )
