"""Benchmark of the deep scorers at MovieLens-latest-small scale (MODELS.md 1.9, 4.6, 6).

Random sparse ratings of that shape (671 users x 9,066 items, density 1.6 %, two domains of
equal size, 5 % of the liked ratings labelled serendipitous) stand in for the real data, so
the bench needs no download. It reports training seconds per epoch (the median over the
epochs after the first) and scoring throughput in (user, item) pairs per second, for lists
of 100 candidates (the evaluation protocol) and for the whole target catalogue. A standalone
script: it prints its table (the one exception to "only main.py prints").

Run from the repository root: ``python -m bench.bench_deep --epochs 3 --threads 1``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from models.baselines import BPRMFConfig, BPRMFScorer
from models.scoring import InteractionData, Scorer
from models.serencdr import SerenCDRConfig, SerenCDRScorer
from models.vae import CrossDomainVAEConfig, CrossDomainVAEScorer

N_USERS, N_ITEMS, DENSITY = 671, 9066, 0.016


def random_world(seed: int) -> InteractionData:
    """Random ratings of the MovieLens-latest-small shape, half-star scale 0.5-5."""
    rng = np.random.default_rng(seed)
    nnz = int(N_USERS * N_ITEMS * DENSITY)
    flat = rng.choice(N_USERS * N_ITEMS, size=nnz, replace=False)
    users, items = np.divmod(flat, N_ITEMS)
    values = rng.integers(1, 11, size=nnz) / 2.0
    ratings = sp.csr_matrix((values, (users, items)), shape=(N_USERS, N_ITEMS))
    liked = values >= 4.0
    seren = liked & (rng.random(nnz) < 0.05)
    labels = sp.csr_matrix(
        (np.ones(int(seren.sum())), (users[seren], items[seren])), shape=ratings.shape
    )
    item_domain = (np.arange(N_ITEMS) >= N_ITEMS // 2).astype(np.int64)
    return InteractionData(ratings, item_domain, 1, 4.0, serendipitous=labels)


def time_fit(build: Callable[[int], Scorer], data: InteractionData, epochs: int) -> float:
    """Median seconds between consecutive epoch ends (the first epoch and setup excluded)."""
    stamps: list[float] = []
    build(1 + epochs).fit(
        data, seed=0, device="cpu", progress=lambda d, t: stamps.append(time.perf_counter())
    )
    return float(np.median(np.diff(stamps)))


def throughput(scorer: Scorer, users: np.ndarray, items: np.ndarray, batch: int) -> float:
    """Pairs scored per second over all ``users`` in batches."""
    scorer.score(users[:batch], items[:batch])  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(users), batch):
        scorer.score(users[start : start + batch], items[start : start + batch])
    return items.size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = random_world(args.seed)
    rng = np.random.default_rng(args.seed)
    target = data.domain_items(1)
    users = np.arange(N_USERS)
    cand = target[rng.integers(0, len(target), size=(N_USERS, 100))]
    full = np.broadcast_to(target, (N_USERS, len(target)))
    models: dict[str, Callable[[int], Scorer]] = {
        "serencdr (128->64+64)": lambda e: SerenCDRScorer(SerenCDRConfig(epochs=e)),
        "cross_vae (n-256-128)": lambda e: CrossDomainVAEScorer(CrossDomainVAEConfig(epochs=e)),
        "cross_vae cold+paired": lambda e: CrossDomainVAEScorer(
            CrossDomainVAEConfig(epochs=e, cold_start=True, link="both")
        ),
        "single_vae": lambda e: CrossDomainVAEScorer(CrossDomainVAEConfig(epochs=e, mode="single")),
        "bpr_mf (d=64)": lambda e: BPRMFScorer(BPRMFConfig(epochs=e)),
    }
    print(
        f"ratings {data.ratings.nnz:,}  serendipitous {data.serendipitous.nnz:,}  "
        f"torch threads {torch.get_num_threads()}  device cpu"
    )
    print(f"{'model':<24}{'s/epoch':>10}{'pairs/s (100 cand)':>22}{'pairs/s (catalogue)':>22}")
    for name, build in models.items():
        per_epoch = time_fit(build, data, args.epochs)
        scorer = build(1)
        scorer.fit(data, seed=0, device="cpu")
        fast = throughput(scorer, users, cand, batch=256)
        whole = throughput(scorer, users, full, batch=64)
        print(f"{name:<24}{per_epoch:>10.3f}{fast:>22,.0f}{whole:>22,.0f}")


if __name__ == "__main__":
    main()
