"""Timings of the CF cores (models/cf.py) on a synthetic domain.

Run from the repository root: ``python -m bench.bench_cores``. Reports, best of a few runs:
pearson for 100 query users against 5,000 users x 2,000 items (density 2%),
domain_correlation between two such domains, neighbourhood_scores for the same 100 users
(K = 30), and the speed-up of the vectorised pearson over a per-pair Python loop on a small
case, measured in this process.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from models.cf import domain_correlation, neighbourhood_scores, pearson

logger = logging.getLogger("bench_cores")


def random_ratings(
    rng: np.random.Generator, n_users: int, n_items: int, density: float
) -> sp.csr_matrix:
    """Integer ratings 1-5 on a uniformly random pattern."""
    nnz = round(n_users * n_items * density)
    flat = rng.choice(n_users * n_items, size=nnz, replace=False)
    rows, cols = np.divmod(flat, n_items)
    values = rng.integers(1, 6, size=nnz).astype(np.float64)
    return sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_items))


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_pearson(R: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Co-rated Pearson with one Python iteration per (query, user) pair: the baseline."""
    dense = R.toarray()
    mask = np.zeros(R.shape, dtype=bool)
    mask[np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)), R.indices] = True
    out = np.full((len(rows), R.shape[0]), np.nan)
    for b, x in enumerate(rows):
        for y in range(R.shape[0]):
            common = mask[x] & mask[y]
            if x == y or common.sum() < 2:
                continue
            a = dense[x, common] - dense[x, common].mean()
            c = dense[y, common] - dense[y, common].mean()
            den = np.sqrt((a * a).sum() * (c * c).sum())
            if den > 0:
                out[b, y] = (a * c).sum() / den
    return out


def main() -> None:
    """Run every timing and log one line per figure."""
    rng = np.random.default_rng(2024)
    n_users, n_items, density = 5_000, 2_000, 0.02
    R_t = random_ratings(rng, n_users, n_items, density)
    R_s = random_ratings(rng, n_users, n_items, density)
    rows = rng.choice(n_users, size=100, replace=False)
    logger.info("domain: %d users x %d items, %d ratings", n_users, n_items, R_t.nnz)

    t = best_of(lambda: pearson(R_t, rows))
    logger.info("pearson, 100 query users (co-rated means):    %8.1f ms", 1e3 * t)
    t = best_of(lambda: pearson(R_t, rows, delta=1.0))
    logger.info("pearson, 100 query users, with delta counts:  %8.1f ms", 1e3 * t)

    t = best_of(lambda: domain_correlation(R_t, R_s), repeats=1)
    logger.info("domain_correlation, adjusted cosine:          %8.1f ms", 1e3 * t)
    t = best_of(lambda: domain_correlation(R_t, R_s, method="pearson"), repeats=1)
    logger.info("domain_correlation, pearson:                  %8.1f ms", 1e3 * t)

    sim = pearson(R_t, rows).similarity
    order = np.argsort(-np.nan_to_num(sim, nan=-np.inf), axis=1)[:, :30]
    weights = np.take_along_axis(sim, order, axis=1)
    neighbours = np.where(np.isfinite(weights), order, -1)
    means = np.full(len(rows), 3.0)
    t = best_of(lambda: neighbourhood_scores(R_t, neighbours, weights, means, (1.0, 5.0)))
    logger.info("neighbourhood_scores, 100 users, K = 30:      %8.1f ms", 1e3 * t)

    small = random_ratings(rng, 300, 200, 0.1)
    small_rows = np.arange(20)
    fast = best_of(lambda: pearson(small, small_rows))
    slow = best_of(lambda: naive_pearson(small, small_rows), repeats=1)
    gap = np.nanmax(
        np.abs(pearson(small, small_rows).similarity - naive_pearson(small, small_rows))
    )
    logger.info(
        "pearson 20 x 300 users: vectorised %.2f ms, naive loop %.1f ms, speed-up x%.0f "
        "(max difference %.1e)",
        1e3 * fast,
        1e3 * slow,
        slow / fast,
        gap,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main()
