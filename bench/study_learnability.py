"""What the ratings reveal of a synthetic world's serendipity: signals ranked on the test lists.

A world's ground truth calls a rated item serendipitous when it is liked (true utility at least
the like threshold) AND far from everything else the user consumed (distance in the true taste
space beyond the user's comfort radius; ``environment/interactions.py``). The ranking
protocol's serendipity lists hold that item and 99 non-serendipitous unrated items
(MODELS.md 1.8). This study ranks those lists by single signals, without training any deep
model, to show which half of the definition a scorer could learn from the data:

* truth (upper bounds no scorer sees): true utility, "liked", "far" and both;
* unexpectedness estimated from the training ratings: minus the co-occurrence expectedness of
  SerenCDR's auxiliary loss (MODELS.md 1.5), and 1 - the best cosine to a history item with
  item vectors from co-occurrence columns or a truncated SVD (the ground truth's own formula
  on learned vectors). The AUC columns say how well each estimate separates truly far from
  truly near candidates, over all candidates and among the liked ones only;
* serendipity labels of the training data: how many users found the item serendipitous, and
  a neighbour vote over those labels (cosine user similarity, like the user-kNN baseline);
* relevance: the protocol's user-kNN vote, alone and summed (by rank) with the label vote.

Nothing here chooses a hyper-parameter (``bench/study_validation.py`` does that, on a
validation split), so it reads the same test lists as ``python main.py evaluate``; the
user-kNN row reproduces that table's figure.

A standalone script: it prints its table (the one exception to "only main.py prints").
Run from the repository root (about 15 seconds)::

    python -m bench.study_learnability [--scenario scenarios/synthetic_serendipity.yaml]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import scipy.sparse as sp
from rich.console import Console
from rich.table import Table
from scipy.stats import rankdata

from bench.study_validation import lists, load_world
from environment.unexpected import item_distances
from models.baselines import UserCFConfig, UserCFScorer
from models.evaluation import CandidateLists, rank_metrics, score_candidates, split_serendipity
from models.expectedness import expectedness
from models.serencdr_data import randomized_svd

SVD_DIM = 32


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC of ``scores`` for the boolean ``positive`` (nan when one class)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def list_distances(vectors: np.ndarray, x: sp.csr_matrix, cands: CandidateLists) -> np.ndarray:
    """(N, 1 + n) distances 1 - max cos of each candidate to its user's training history."""
    return np.stack(
        [
            item_distances(vectors, x[u].indices, items)
            for u, items in zip(cands.users, cands.items, strict=True)
        ]
    )


def rank01(s: np.ndarray) -> np.ndarray:
    """Per-row ranks scaled to [0, 1) (to sum signals on different scales)."""
    return s.argsort(axis=1).argsort(axis=1) / s.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/synthetic_serendipity.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    console = Console(width=120)
    t0 = time.perf_counter()
    scenario, world, data = load_world(args.scenario)
    truth_vectors = world.truth.item_vectors()
    hr: dict[str, list[float]] = {}
    aucs: dict[str, list[tuple[float, float]]] = {}
    labels_per_user: list[float] = []
    for seed in (scenario.run.seed + k for k in range(args.seeds)):
        split = split_serendipity(data, seed)
        cands = lists(world, data, split, seed)
        train = split.train_data(data)
        x = sp.csr_matrix(train.ratings, dtype=np.float64, copy=True)
        x.data[:] = 1.0
        labels = sp.csr_matrix(train.serendipitous, dtype=np.float64)
        labels_per_user.append(labels.sum() / train.n_users)
        users, items = cands.users, cands.items

        util = world.truth.pair_utility(np.repeat(users, items.shape[1]), items.ravel())
        util = util.reshape(items.shape)
        liked = util >= world.like_threshold
        far = list_distances(truth_vectors, x, cands) > world.comfort_radius[users][:, None]
        exp = np.take_along_axis(expectedness(x, users), items, axis=1)
        cooc_vectors = unit_rows(x.T.toarray())  # item = its column of users
        _, s, vt = randomized_svd(x, SVD_DIM, np.random.default_rng(seed))
        svd_vectors = unit_rows(vt.T * s)
        estimates = {
            "−expectedness (co-occurrence, MODELS.md 1.5)": -exp,
            "1 − max cos to history, co-occurrence vectors": list_distances(cooc_vectors, x, cands),
            f"1 − max cos to history, SVD-{SVD_DIM} vectors": list_distances(svd_vectors, x, cands),
        }
        cf = UserCFScorer(UserCFConfig(similarity="cosine", k=100))
        cf.fit(train, seed=seed, device="cpu")
        vote = score_candidates(cf, cands)
        norms = np.maximum(np.sqrt(np.asarray(x.sum(axis=1)).ravel()), 1e-12)
        sim = (x[users] @ x.T).toarray() / norms[users, None] / norms[None, :]
        sim[np.arange(len(users)), users] = 0.0
        label_vote = np.take_along_axis(np.asarray(labels.T @ sim.T).T, items, axis=1)
        label_count = np.asarray(labels.sum(axis=0)).ravel()[items]
        signals = {
            "truth: utility (relevance oracle)": util,
            "truth: liked": liked.astype(float),  # ties are broken at random
            "truth: far from the history": far.astype(float),
            "truth: liked and far (serendipity oracle)": (liked & far).astype(float),
            **estimates,
            "labels: users who found the item serendipitous": label_count.astype(float),
            "labels: neighbour vote over serendipity labels": label_vote,
            "relevance: user-kNN vote (the protocol's best baseline)": vote,
            "user-kNN vote + label vote (rank sum)": rank01(vote) + rank01(label_vote),
        }
        for name, score in signals.items():
            hr.setdefault(name, []).append(rank_metrics(score, seed=seed)["HR@10"])
        for name, est in estimates.items():
            aucs.setdefault(name, []).append(
                (auc(est.ravel(), far.ravel()), auc(est[liked], far[liked]))
            )

    table = Table(title=f"synthetic world, serendipity lists ({args.seeds} seeds): HR_seren@10")
    for col in ("signal", "HR_seren@10", "AUC far vs near", "AUC among liked"):
        table.add_column(col, justify="left" if col == "signal" else "right")
    for name, values in hr.items():
        a = np.nanmean(aucs[name], axis=0) if name in aucs else None
        table.add_row(
            name,
            f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}",
            "" if a is None else f"{a[0]:.3f}",
            "" if a is None else f"{a[1]:.3f}",
        )
    console.print(table)
    console.print(
        f"random ranking: HR_seren@10 = 0.100; {len(cands.users)} test users per seed, "
        f"{np.mean(labels_per_user):.1f} serendipity labels per training user; "
        f"{time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
