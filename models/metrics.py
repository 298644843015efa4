"""Evaluation metrics of TFCDSRS (FORMULAS.md §11), pure functions on arrays.

Top-N metrics take one list per user. Lists are flattened once into (user, item) arrays
and membership is decided with ``np.isin`` on int64 keys user·(max_item+1) + item, so no
Python loop runs over items. Duplicate ids within one list count once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

IdLists = Sequence[Sequence[int]] | Sequence[set[int]] | Sequence[Iterable[int]]


def _pair_arrays(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError("pred and truth must have the same number of entries")
    return p, t


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error over the test pairs T (FORMULAS.md §11, STANDARD).

    Args:
        pred: predictions p_{u,i}; pairs without a prediction must be dropped by the caller.
        truth: ratings r_{u,i}, same length.

    Returns:
        MAE; NaN for empty input.
    """
    p, t = _pair_arrays(pred, truth)
    return float(np.mean(np.abs(p - t))) if p.size else float("nan")


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error over the test pairs T (FORMULAS.md §11, STANDARD).

    Args:
        pred: predictions p_{u,i}.
        truth: ratings r_{u,i}, same length.

    Returns:
        RMSE; NaN for empty input.
    """
    p, t = _pair_arrays(pred, truth)
    return float(np.sqrt(np.mean((p - t) ** 2))) if p.size else float("nan")


def _flatten(lists: IdLists, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of the lists, each cut to its first n ids (all ids when n is None)."""
    arrays = [np.fromiter(ids, dtype=np.int64)[:n] for ids in lists]
    arrays = [a[a >= 0] for a in arrays]  # -1 padding is no item
    lens = np.array([a.size for a in arrays], dtype=np.int64)
    items = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
    return np.repeat(np.arange(len(arrays)), lens), items


def _keys(users: np.ndarray, items: np.ndarray, width: int) -> np.ndarray:
    return np.unique(users * width + items)


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError("n must be >= 1")


def _per_user_hits(
    recommended: IdLists, relevant: IdLists, n: int, primitive: IdLists | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per user: |RS(N) [\\ PM(N)] ∩ REL| and |REL|, plus the number of users."""
    if len(recommended) != len(relevant) or (
        primitive is not None and len(primitive) != len(recommended)
    ):
        raise ValueError("one list per user is required in every argument")
    n_users = len(recommended)
    ru, ri = _flatten(recommended, n)
    lu, li = _flatten(relevant)
    pu, pi = _flatten(primitive, n) if primitive is not None else (ru[:0], ri[:0])
    width = int(max(ri.max(initial=0), li.max(initial=0), pi.max(initial=0))) + 1
    rec, rel = _keys(ru, ri, width), _keys(lu, li, width)
    rec = rec[~np.isin(rec, _keys(pu, pi, width))]
    hits = np.bincount(rec[np.isin(rec, rel)] // width, minlength=n_users)
    return hits, np.bincount(rel // width, minlength=n_users), n_users


def precision_recall_at_n(
    recommended: Sequence[Sequence[int]],
    relevant: Sequence[set[int] | Sequence[int]],
    n: int,
) -> tuple[float, float, float]:
    """Macro P@N, R@N and F@N (FORMULAS.md §11, STANDARD).

    P@N = mean_u |RS_u(N) ∩ REL_u| / N and R@N = mean_u |RS_u(N) ∩ REL_u| / |REL_u|, both
    over the users with a non-empty REL_u; a list shorter than N still divides by N.
    F@N = 2·P·R/(P + R) is the F of the *averaged* P and R, not the mean of per-user F
    values (which gives different numbers).

    Args:
        recommended: per user, the ranked list RS_u.
        relevant: per user, REL_u (test items, possibly thresholded by the caller).
        n: list cut-off N.

    Returns:
        (P@N, R@N, F@N); NaN for all three when no user has relevant items; F is 0 when
        P + R = 0.
    """
    _check_n(n)
    hits, rel_size, _ = _per_user_hits(recommended, relevant, n)
    ok = rel_size > 0
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    p = float(np.mean(hits[ok] / n))
    r = float(np.mean(hits[ok] / rel_size[ok]))
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f


def unexpectedness_co_at_n(une_lists: Sequence[Sequence[float]], n: int) -> float:
    """Unexp_co@N = mean_u (1/N) Σ_{i∈RS_u(N)} une(i, u) (FORMULAS.md §11, RECONSTRUCTED).

    Args:
        une_lists: per user, une(i, u) of the ranked list's items in rank order.
        n: cut-off N (a shorter list still divides by N).

    Returns:
        The mean over all users given; NaN when there are none.
    """
    _check_n(n)
    if len(une_lists) == 0:
        return float("nan")
    arrays = [np.asarray(v, dtype=np.float64).ravel()[:n] for v in une_lists]
    lens = np.array([a.size for a in arrays], dtype=np.int64)
    users = np.repeat(np.arange(len(arrays)), lens)
    sums = np.bincount(users, weights=np.concatenate(arrays), minlength=len(arrays))
    return float(np.mean(sums / n))


def unexpectedness_pm_at_n(
    recommended: Sequence[Sequence[int]], primitive: Sequence[Sequence[int]], n: int
) -> float:
    """Unexp_pm@N = mean_u |RS_u(N) \\ PM_u(N)| / N (FORMULAS.md §11; Murakami 2008, Ge 2010).

    Args:
        recommended: per user, the ranked list RS_u.
        primitive: per user, the primitive recommender's ranked list PM_u.
        n: cut-off N.

    Returns:
        The mean over all users given; NaN when there are none.
    """
    _check_n(n)
    if len(recommended) == 0:
        return float("nan")
    everything = [np.fromiter(ids, dtype=np.int64)[:n] for ids in recommended]
    unexpected, _, n_users = _per_user_hits(recommended, everything, n, primitive)
    return float(np.sum(unexpected) / (n * n_users))


def serendipity_at_n(
    recommended: Sequence[Sequence[int]],
    primitive: Sequence[Sequence[int]],
    relevant: Sequence[set[int] | Sequence[int]],
    n: int,
) -> float:
    """Seren@N = mean_u |(RS_u(N) \\ PM_u(N)) ∩ REL_u| / N (FORMULAS.md §11, RECONSTRUCTED).

    Args:
        recommended: per user, the ranked list RS_u.
        primitive: per user, the primitive recommender's list PM_u.
        relevant: per user, REL_u.
        n: cut-off N.

    Returns:
        The mean over users with a non-empty REL_u (as for P@N); NaN when there are none.
    """
    _check_n(n)
    hits, rel_size, _ = _per_user_hits(recommended, relevant, n, primitive)
    ok = rel_size > 0
    return float(np.mean(hits[ok] / n)) if ok.any() else float("nan")


def hit_rate(flags: np.ndarray | Sequence[bool]) -> float:
    """Share of true flags (e.g. HR@k over users, or liked recommendations); NaN if empty."""
    f = np.asarray(flags, dtype=bool).ravel()
    return float(f.mean()) if f.size else float("nan")


def coverage(recommended_items: np.ndarray, n_items: int) -> float:
    """Catalogue coverage: distinct recommended items / n_items.

    Args:
        recommended_items: item ids of any shape; ids outside [0, n_items) (such as -1
            padding) are ignored.
        n_items: catalogue size.

    Returns:
        Coverage in [0, 1].
    """
    if n_items < 1:
        raise ValueError("n_items must be >= 1")
    ids = np.asarray(recommended_items, dtype=np.int64).ravel()
    ids = ids[(ids >= 0) & (ids < n_items)]
    return float(np.unique(ids).size / n_items)
