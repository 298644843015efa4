"""Timing of SerenDiff and PURS at quickstart scale (MODELS.md 2.8, 3.7, 6).

    PYTHONPATH=. python bench/bench_deep2.py [--users 300] [--items 600] [--device cpu]

Builds a synthetic ``InteractionData`` (taste-driven ratings with timestamps, about 1.5
serendipity labels per user), then measures SerenDiff training seconds per epoch and
sampling seconds per user (50 DDIM steps x S chains, ring matching over 100 candidates),
and PURS training seconds per epoch and scoring throughput. Results go to the log and,
with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from models.purs import PURSConfig, PURSScorer
from models.scoring import InteractionData
from models.serendiff import SerenDiffConfig, SerenDiffScorer

log = logging.getLogger("bench_deep2")


def synthetic_data(n_users: int, n_items: int, per_user: int, seed: int) -> InteractionData:
    """Two domains, ratings from latent tastes, about 1.5 serendipitous items per user."""
    rng = np.random.default_rng(seed)
    util = rng.normal(size=(n_users, 8)) @ rng.normal(size=(8, n_items)) / np.sqrt(8)
    items = np.argsort(-(util + rng.gumbel(size=util.shape)), axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users), per_user)
    cols = items.ravel()
    values = np.clip(np.round(3.0 + 1.5 * util[users, cols] + rng.normal(0, 0.5, users.size)), 1, 5)
    times = rng.random(users.size) * 1e6
    ratings = sp.csr_matrix((values, (users, cols)), shape=(n_users, n_items))
    stamps = sp.csr_matrix((times, (users, cols)), shape=(n_users, n_items))
    domain = (np.arange(n_items) >= n_items // 2).astype(np.int64)
    liked_target = (values >= 4) & (domain[cols] == 1)
    share = 1.5 * n_users / max(int(liked_target.sum()), 1)
    pick = liked_target & (rng.random(users.size) < share)
    seren = sp.csr_matrix((np.ones(pick.sum()), (users[pick], cols[pick])), shape=ratings.shape)
    return InteractionData(ratings, domain, 1, 4.0, seren, stamps)


def candidates(data: InteractionData, users: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` random target-domain items per user -> (B, n)."""
    rng = np.random.default_rng(seed)
    pool = data.domain_items(data.target_domain)
    return pool[rng.integers(0, pool.size, (users.size, n))]


def bench_serendiff(
    data: InteractionData, device: str, epochs: int, score_users: int
) -> dict[str, float]:
    cfg = SerenDiffConfig(epochs=epochs)
    scorer = SerenDiffScorer(cfg)
    fit = scorer.fit(data, seed=0, device=device)
    users = np.arange(min(score_users, data.n_users))
    items = candidates(data, users, 100, seed=1)
    start = time.perf_counter()
    scorer.score(users, items)
    sample_s = time.perf_counter() - start
    return {
        "serendiff_examples": fit["examples"],
        "serendiff_parameters": fit["parameters"],
        "serendiff_prepare_s": fit["prepare_seconds"],
        "serendiff_train_s_per_epoch": (fit["seconds"] - fit["prepare_seconds"]) / epochs,
        "serendiff_sample_s_per_user": sample_s / users.size,
        "serendiff_chains_per_user": float(cfg.n_samples),
        "serendiff_ddim_steps": float(cfg.sample_steps),
    }


def bench_purs(data: InteractionData, device: str, epochs: int) -> dict[str, float]:
    scorer = PURSScorer(PURSConfig(epochs=epochs))
    fit = scorer.fit(data, seed=0, device=device)
    users = np.arange(data.n_users)
    items = candidates(data, users, 100, seed=2)
    start = time.perf_counter()
    scorer.score(users, items)
    score_s = time.perf_counter() - start
    return {
        "purs_samples": fit["samples"],
        "purs_train_s_per_epoch": (fit["seconds"] - fit["prepare_seconds"]) / epochs,
        "purs_train_auc": fit["train_auc"],
        "purs_score_pairs_per_s": users.size * items.shape[1] / score_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--per-user", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--serendiff-epochs", type=int, default=3)
    parser.add_argument("--purs-epochs", type=int, default=2)
    parser.add_argument("--score-users", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = synthetic_data(args.users, args.items, args.per_user, seed=0)
    results: dict[str, float] = {
        "users": float(data.n_users),
        "items": float(data.n_items),
        "ratings": float(data.ratings.nnz),
        "torch_threads": float(torch.get_num_threads()),
    }
    results.update(bench_serendiff(data, args.device, args.serendiff_epochs, args.score_users))
    results.update(bench_purs(data, args.device, args.purs_epochs))
    for key, value in results.items():
        log.info("%-32s %12.4f", key, value)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
