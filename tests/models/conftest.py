"""Fixtures for the model tests: a cpu/cuda device and a synthetic world with known serendipity.

The synthetic world plants latent tastes so that serendipity has a ground truth:

* items of both domains fall in ``n_clusters`` clusters that share directions across domains;
* each user has a *home* cluster (most of what they consume, the expected part of the history)
  and a *hidden* cluster they love but rarely meet; the hidden cluster is a fixed function of
  the home cluster (``home + 3 mod n_clusters``) for ``pattern_share`` of the users, so other
  users' labels reveal it, and it is the same in both domains, so the source domain helps;
* users also explore a few items of other clusters; an explored item of the hidden cluster is
  rated high and is serendipitous (far from the history AND liked), the rest are rated low.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.scoring import InteractionData


@dataclass
class SyntheticWorld:
    """Interaction data plus the ground truth it was drawn from."""

    data: InteractionData
    cluster: np.ndarray  # (I,) cluster of each item
    home: np.ndarray  # (U,) home cluster
    hidden: np.ndarray  # (U,) hidden (serendipitous) cluster
    utility: np.ndarray  # (U, I) true utility

    def serendipity_truth(self) -> np.ndarray:
        """(U, I) bool: items of the user's hidden cluster (unexpected and valuable)."""
        return self.cluster[None, :] == self.hidden[:, None]


def _pick(rng: np.random.Generator, pool: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    p = weights[pool] / weights[pool].sum()
    return rng.choice(pool, size=min(n, len(pool)), replace=False, p=p)


def make_synthetic(
    n_users: int = 120,
    n_items: tuple[int, ...] = (90, 160),
    target_domain: int = 1,
    n_clusters: int = 6,
    n_home: int = 10,
    n_hidden: tuple[int, int] = (2, 3),
    n_explore: int = 4,
    pattern_share: float = 0.9,
    seed: int = 0,
) -> SyntheticWorld:
    """Draw a synthetic two-domain world (see the module docstring). Ratings on 1..5."""
    rng = np.random.default_rng(seed)
    item_domain = np.repeat(np.arange(len(n_items)), n_items)
    n_total = int(item_domain.shape[0])
    cluster = rng.integers(0, n_clusters, size=n_total)
    centres = np.eye(n_clusters)
    item_vec = centres[cluster] + 0.25 * rng.standard_normal((n_total, n_clusters))
    popularity = rng.lognormal(0.0, 0.5, size=n_total)  # exposure skew, not taste
    home = rng.integers(0, n_clusters, size=n_users)
    hidden = (home + 3) % n_clusters
    off = rng.random(n_users) > pattern_share
    shift = rng.integers(1, n_clusters - 1, size=n_users)
    hidden[off] = (home[off] + shift[off]) % n_clusters
    hidden[off & (hidden == home)] = (home[off & (hidden == home)] + 1) % n_clusters
    taste = centres[home] + centres[hidden] + 0.15 * rng.standard_normal((n_users, n_clusters))
    utility = taste @ item_vec.T  # (U, I), ~1 for home/hidden clusters, ~0 elsewhere

    rows, cols = [], []
    for u in range(n_users):  # world generation, not a hot path
        for d in range(len(n_items)):
            in_d = item_domain == d
            home_pool = np.flatnonzero(in_d & (cluster == home[u]))
            hidden_pool = np.flatnonzero(in_d & (cluster == hidden[u]))
            other_pool = np.flatnonzero(in_d & (cluster != home[u]) & (cluster != hidden[u]))
            picks = [
                _pick(rng, home_pool, popularity, n_home),
                _pick(
                    rng, hidden_pool, popularity, int(rng.integers(n_hidden[0], n_hidden[1] + 1))
                ),
                _pick(rng, other_pool, popularity, n_explore),
            ]
            chosen = np.concatenate(picks)
            rows.append(np.full(len(chosen), u))
            cols.append(chosen)
    r, c = np.concatenate(rows), np.concatenate(cols)
    noise = 0.4 * rng.standard_normal(len(r))
    values = np.clip(np.round(1.5 + 3.0 * utility[r, c] + noise), 1, 5)
    ratings = sp.csr_matrix((values, (r, c)), shape=(n_users, n_total))
    seren_mask = (cluster[c] == hidden[r]) & (values >= 4)
    serendipitous = sp.csr_matrix(
        (np.ones(int(seren_mask.sum())), (r[seren_mask], c[seren_mask])), shape=ratings.shape
    )
    data = InteractionData(
        ratings=ratings,
        item_domain=item_domain,
        target_domain=target_domain,
        like_threshold=4.0,
        serendipitous=serendipitous,
        item_features=item_vec,
    )
    return SyntheticWorld(data, cluster, home, hidden, utility)


@pytest.fixture(scope="session")
def synthetic_world() -> SyntheticWorld:
    """The default small world (120 users, 90 source + 160 target items), seed 0."""
    return make_synthetic()


@pytest.fixture(params=["cpu", "cuda"])
def torch_device(request: pytest.FixtureRequest) -> str:
    """Each device the tests should run on; CUDA is skipped without a GPU."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Small tensors on 2 shared cores: intra-op threads only contend (measured 3-10x slower)."""
    torch.set_num_threads(1)
