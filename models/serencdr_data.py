"""The data side of SerenCDR: input embeddings and training samples (MODELS.md 1.1, 1.5).

Split from models/serencdr.py so that the network/trainer file stays one idea: this file maps
the world's ids and ratings to the arrays the trainer samples from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from models.baselines import BPRMFConfig, train_bpr_mf
from models.expectedness import ExpectednessPools, expectedness, expectedness_pools
from models.scoring import InteractionData
from models.torch_utils import numpy_rng


def randomized_svd(
    mat: sp.spmatrix, dim: int, rng: np.random.Generator, n_iter: int = 4, oversample: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated SVD by random projection (Halko et al. 2011): (U (m,k), S (k,), Vt (k,n))."""
    a = sp.csr_matrix(mat, dtype=np.float64)
    k = min(dim, *a.shape)
    width = min(k + oversample, *a.shape)
    y = a @ rng.standard_normal((a.shape[1], width))
    for _ in range(n_iter):  # power iterations sharpen the spectrum; QR keeps them stable
        y, _ = np.linalg.qr(a @ (a.T @ np.linalg.qr(y)[0]))
    q, _ = np.linalg.qr(y)
    ub, s, vt = np.linalg.svd(np.asarray((a.T @ q).T), full_matrices=False)
    return (q @ ub)[:, :k], s[:k], vt[:k]


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return x / rms if rms > 0 else x


def domain_embeddings(
    ratings: sp.csr_matrix,
    dim: int,
    method: Literal["svd", "bpr", "features"],
    seed: int,
    features: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-computed e_u, e_i of one domain (MODELS.md 1.1; MF replaces BERT of reviews).

    Args:
        ratings: (U, I_d) the domain's training ratings.
        dim: embedding size for ``svd``/``bpr`` (zero-padded when the rank is smaller).
        method: truncated SVD of ratings/max, a short BPR-MF, or item features with users as
            the mean feature of their history.
        seed: seed of the factorisation.
        features: (I_d, F) item features for ``features``.

    Returns:
        Users (U, D) and items (I_d, D), scaled to unit RMS.
    """
    n_users, n_items = ratings.shape
    if method == "features":
        if features is None:
            raise ValueError("embedding='features' needs data.item_features")
        items = _unit_rms(features - features.mean(axis=0))
        binary = ratings.astype(bool).astype(np.float64)
        counts = np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1.0)
        return np.asarray(binary @ items) / counts[:, None], items
    users, items = np.zeros((n_users, dim)), np.zeros((n_items, dim))
    if ratings.nnz == 0:
        return users, items
    if method == "svd":
        scaled = ratings / max(float(np.abs(ratings.data).max()), 1e-12)
        u, s, vt = randomized_svd(scaled, dim, numpy_rng(seed, 21))
        users[:, : len(s)] = u * np.sqrt(s)
        items[:, : len(s)] = vt.T * np.sqrt(s)
    else:
        cfg = BPRMFConfig(dim=dim, epochs=10, batch_size=256, lr=0.01)
        net, _ = train_bpr_mf(
            ratings, np.zeros(n_items, dtype=np.int64), cfg, seed, torch.device("cpu")
        )
        users, items = net.user.weight.detach().numpy(), net.item.weight.detach().numpy()
    return _unit_rms(users), _unit_rms(items)


@dataclass
class DomainSamples:
    """One domain's training material: rows of the local domain item indices."""

    users: np.ndarray  # (N,) training users (≥1 serendipitous and ≥1 other item)
    seren: sp.csr_matrix  # (U, I_d) serendipitous consumed items
    other: sp.csr_matrix  # (U, I_d) consumed, not serendipitous
    history: sp.csr_matrix  # (U, I_d) relevant items R_u
    pools: ExpectednessPools | None  # rows aligned with ``users``
    items: np.ndarray  # (I_d,) global item ids


def domain_samples(
    data: InteractionData, domain: int, mu: float, frac: float, need_pools: bool
) -> DomainSamples:
    """Serendipitous / other / history rows of ``domain`` and its expectedness pools (1.5)."""
    items = data.domain_items(domain)
    rated = sp.csr_matrix(data.ratings)[:, items].astype(bool).astype(np.float64)
    labels = (
        data.serendipitous if data.serendipitous is not None else sp.csr_matrix(data.ratings.shape)
    )
    seren = sp.csr_matrix(labels)[:, items].astype(bool).astype(np.float64).multiply(rated).tocsr()
    other = (rated - seren).tocsr()
    other.eliminate_zeros()
    ok = (np.diff(seren.indptr) > 0) & (np.diff(other.indptr) > 0)
    users = np.flatnonzero(ok)
    pools = None
    if need_pools and len(users):
        exp = expectedness(rated, users, mu=mu, log=True)
        pools = expectedness_pools(exp, np.arange(len(items)), rated[users], frac)
    return DomainSamples(users, seren, other, rated, pools, items)
