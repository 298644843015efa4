"""Baseline scorers for the offline protocol: popularity, BPR-MF (torch) and user-kNN CF.

They follow the same ``Scorer`` contract as the deep models (models/scoring.py), so the
evaluation and the serendipity agent can swap any of them in.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from models.scoring import InteractionData, ProgressFn, Scorer, resolve_device
from models.torch_utils import (
    Checkpoint,
    batch_indices,
    build_module,
    csr_to_tensors,
    derive_seed,
    empty_module,
    load_checkpoint,
    load_module_tensors,
    module_tensors,
    numpy_rng,
    save_checkpoint,
    tensors_to_csr,
)

logger = logging.getLogger(__name__)


class PopularityScorer(Scorer):
    """Scores an item by its number of training ratings (every user gets the same ranking)."""

    name: ClassVar[str] = "popularity"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        resolve_device(device)
        self.counts = np.diff(sp.csc_matrix(data.ratings).indptr).astype(np.float64)
        if progress is not None:
            progress(1, 1)
        return {"epochs": 1.0, "n_rated_items": float((self.counts > 0).sum())}

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.counts is None:
            raise RuntimeError("fit or load the scorer first")
        return self.counts[np.asarray(items)]

    def save(self, path: Path) -> None:
        if self.counts is None:
            raise RuntimeError("fit the scorer first")
        tensors = {"counts": torch.from_numpy(self.counts)}
        save_checkpoint(path, Checkpoint(self.name, "{}", tensors))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> PopularityScorer:
        ckpt = load_checkpoint(path, cls.name)
        out = cls()
        out.counts = ckpt.tensors["counts"].numpy()
        return out


class BPRMFConfig(BaseModel):
    """BPR matrix factorisation (Rendle et al. 2009) trained with Adam on sampled triples."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(64, ge=1)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(0.01, gt=0)
    l2: float = Field(1e-4, ge=0)
    positives: Literal["rated", "liked"] = "rated"
    negatives_in_domain: bool = True  # a negative comes from the positive's domain


class BPRMFNet(nn.Module):
    """ŷ(u, i) = p_u · q_i + b_i."""

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)

    def reset_parameters(self, generator: torch.Generator) -> None:
        nn.init.normal_(self.user.weight, std=0.1, generator=generator)
        nn.init.normal_(self.item.weight, std=0.1, generator=generator)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users (B,), items (B, C) -> (B, C)."""
        p = self.user(users)[:, None, :]  # (B, 1, D)
        return (p * self.item(items)).sum(-1) + self.item_bias(items)[..., 0]


def train_bpr_mf(
    positives: sp.spmatrix,
    item_domain: np.ndarray,
    config: BPRMFConfig,
    seed: int,
    device: torch.device,
    progress: ProgressFn | None = None,
) -> tuple[BPRMFNet, float]:
    """Train BPR-MF on the stored pattern of ``positives`` (U, I); returns (net, last loss)."""
    pos = sp.coo_matrix(positives)
    n_users, n_items = pos.shape
    net = build_module(
        lambda: BPRMFNet(n_users, n_items, config.dim),
        lambda m, g: m.reset_parameters(g),
        derive_seed(seed, 11),
        device,
    )
    rng = numpy_rng(seed, 12)
    domain = item_domain if config.negatives_in_domain else np.zeros(n_items, dtype=np.int64)
    by_domain = np.argsort(domain, kind="stable")
    starts = np.searchsorted(domain[by_domain], domain)  # first slot of each item's domain
    counts = np.bincount(domain)[domain]
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    users_all = torch.from_numpy(pos.row.astype(np.int64))
    items_all = torch.from_numpy(pos.col.astype(np.int64))
    loss_value = float("nan")
    for epoch in range(config.epochs):
        total, n_batches = 0.0, 0
        for idx in batch_indices(pos.nnz, config.batch_size, rng):
            i_pos = pos.col[idx]
            slot = starts[i_pos] + np.floor(rng.random(len(idx)) * counts[i_pos]).astype(np.int64)
            i_neg = torch.from_numpy(by_domain[slot]).to(device)
            u = users_all[idx].to(device)
            i = torch.stack([items_all[idx].to(device), i_neg], dim=1)  # (B, 2)
            s = net(u, i)
            reg = net.user(u).pow(2).sum() + net.item(i).pow(2).sum()
            loss = -F.logsigmoid(s[:, 0] - s[:, 1]).mean() + config.l2 * reg / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n_batches += 1
        loss_value = total / max(n_batches, 1)
        if progress is not None:
            progress(epoch + 1, config.epochs)
    return net, loss_value


class BPRMFScorer(Scorer):
    """BPR-MF over all domains (users' ratings in every domain shape their one vector)."""

    name: ClassVar[str] = "bpr_mf"

    def __init__(self, config: BPRMFConfig | None = None) -> None:
        self.config = config or BPRMFConfig()
        self.net: BPRMFNet | None = None
        self.device = torch.device("cpu")

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        self.device = resolve_device(device)
        t0 = time.perf_counter()
        positives = data.liked() if self.config.positives == "liked" else data.ratings
        self.net, loss = train_bpr_mf(
            positives, data.item_domain, self.config, seed, self.device, progress
        )
        self.net.eval()
        return {
            "loss": loss,
            "epochs": float(self.config.epochs),
            "seconds": time.perf_counter() - t0,
        }

    @torch.no_grad()
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("fit or load the scorer first")
        uniq, inverse = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
        u = torch.tensor(np.asarray(users, dtype=np.int64), device=self.device)
        i = torch.tensor(uniq, device=self.device)
        # (B, unique) by one matmul, then gathered: no (B, C, D) intermediate.
        table = self.net.user(u) @ self.net.item(i).T + self.net.item_bias(i)[:, 0]
        inv = torch.tensor(inverse.reshape(np.shape(items)), device=self.device)
        return torch.gather(table, 1, inv).double().cpu().numpy()

    def save(self, path: Path) -> None:
        if self.net is None:
            raise RuntimeError("fit the scorer first")
        ckpt = Checkpoint(self.name, self.config.model_dump_json(), module_tensors("net", self.net))
        save_checkpoint(path, ckpt)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> BPRMFScorer:
        ckpt = load_checkpoint(path, cls.name)
        out = cls(BPRMFConfig.model_validate_json(ckpt.config_json))
        out.device = resolve_device(device)
        n_users, dim = ckpt.tensors["net.user.weight"].shape
        n_items = ckpt.tensors["net.item.weight"].shape[0]
        net = empty_module(lambda: BPRMFNet(int(n_users), int(n_items), int(dim)))
        load_module_tensors("net", net, ckpt.tensors)
        out.net = net.to(out.device).eval()
        return out


class UserCFConfig(BaseModel):
    """User-kNN collaborative filtering: neighbour vote (ranking) or Resnick (rating) scores."""

    model_config = ConfigDict(extra="forbid")

    similarity: Literal["pearson", "cosine"] = "pearson"
    k: int = Field(30, ge=1)
    min_overlap: int = Field(2, ge=1)  # fewer co-rated items -> similarity 0
    user_batch: int = Field(512, ge=1)
    # "vote": Σ_v s_uv · 1[v liked i] (top-N kNN); "resnick": mean-centred rating prediction.
    score: Literal["vote", "resnick"] = "vote"


def user_similarity(
    ratings: sp.csr_matrix, users: np.ndarray, kind: Literal["pearson", "cosine"], min_overlap: int
) -> np.ndarray:
    """Similarity of each of ``users`` to every user -> (B, U), self-similarity set to 0.

    Pearson is computed on the co-rated items of each pair exactly, from six sparse products
    (sums, sums of squares and cross products restricted to the co-rated set).
    """
    r = sp.csr_matrix(ratings, dtype=np.float64)
    b = r.astype(bool).astype(np.float64)
    rb, bb = r[users], b[users]
    n = np.asarray((bb @ b.T).todense())
    if kind == "cosine":
        dot = np.asarray((rb @ r.T).todense())
        norms = np.sqrt(np.asarray(r.multiply(r).sum(axis=1)).ravel())
        denom = norms[users][:, None] * norms[None, :]
        sim = np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)
    else:
        r2 = r.multiply(r).tocsr()
        s_u = np.asarray((rb @ b.T).todense())  # Σ_C r_u
        s_v = np.asarray((bb @ r.T).todense())  # Σ_C r_v
        cross = np.asarray((rb @ r.T).todense())
        q_u = np.asarray((r2[users] @ b.T).todense())
        q_v = np.asarray((bb @ r2.T).todense())
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = cross - s_u * s_v / n
            var = (q_u - s_u**2 / n) * (q_v - s_v**2 / n)
            sim = np.where(var > 1e-12, cov / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    sim[n < min_overlap] = 0.0
    sim[np.arange(len(users)), users] = 0.0
    return np.nan_to_num(sim)


class UserCFScorer(Scorer):
    """User-kNN over the k most similar users with a positive similarity, two scoring rules.

    ``score="vote"`` (default), the top-N user-kNN of Herlocker et al. 1999 / Sarwar et al.
    2000 and the implicit-feedback kNN baselines of RecBole and Elliot:

        score(u, i) = Σ_{v ∈ N_k(u)} s_uv · w_vi,   w_vi = 1[r_vi ≥ like threshold]

    ``score="resnick"`` (FORMULAS.md 6, Resnick et al. 1994):

        score(u, i) = r̄_u + Σ_{v ∈ R} s_uv (r_vi − r̄_v) / Σ_{v ∈ R} s_uv,   R = N_k(u) ∩ U_i

    (U_i the users who rated i); an item none of the neighbours rated scores r̄_u.

    Why vote for ranking: Resnick predicts a rating, not a preference order. On a candidate
    list of one held-out positive and mostly unrated negatives, most items were rated by no
    neighbour and all score exactly r̄_u, so the rank of the positive is decided by tie-breaking;
    and one neighbour's single rating weighs as much as thirty neighbours' agreement, because
    the prediction is normalised by the weight of the neighbours who rated the item. The vote
    grows with the number and similarity of neighbours who liked the item, which is the
    evidence a top-N list needs; an item no neighbour liked scores 0.

    N_k(u) is chosen once per user from all users (every domain's ratings count in the
    similarity); s_uv ≤ 0 neighbours get weight 0.
    """

    name: ClassVar[str] = "user_cf"

    def __init__(self, config: UserCFConfig | None = None) -> None:
        self.config = config or UserCFConfig()
        self.ratings: sp.csr_matrix | None = None  # (U, I)
        self.means: np.ndarray | None = None  # (U,)
        self.like_threshold: float | None = None
        # What the neighbours' weights multiply, derived from the ratings on first use: the
        # liked matrix (vote), or the mean-centred ratings and the rated pattern (Resnick).
        self._targets: tuple[sp.csr_matrix, sp.csr_matrix | None] | None = None

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        resolve_device(device)
        self.ratings = sp.csr_matrix(data.ratings, dtype=np.float64)
        counts = np.diff(self.ratings.indptr)
        sums = np.asarray(self.ratings.sum(axis=1)).ravel()
        self.means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        self.like_threshold = float(data.like_threshold)
        self._targets = None
        if progress is not None:
            progress(1, 1)
        return {"epochs": 1.0, "n_users": float(self.ratings.shape[0])}

    def neighbour_weights(self, users: np.ndarray) -> sp.csr_matrix:
        """(B, U) sparse s_uv over each user's k most similar users, s_uv ≤ 0 dropped."""
        if self.ratings is None:
            raise RuntimeError("fit or load the scorer first")
        cfg = self.config
        sim = user_similarity(self.ratings, users, cfg.similarity, cfg.min_overlap)  # (B, U)
        k = min(cfg.k, self.ratings.shape[0] - 1)
        if k <= 0:
            return sp.csr_matrix(sim.shape, dtype=np.float64)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # (B, k)
        w_val = np.maximum(np.take_along_axis(sim, top, axis=1), 0.0)
        rows = np.repeat(np.arange(len(users)), k)
        w = sp.csr_matrix((w_val.ravel(), (rows, top.ravel())), shape=sim.shape)
        w.eliminate_zeros()
        return w

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users (B,), items (B, C) -> (B, C) vote or Resnick scores (see the class)."""
        if self.ratings is None or self.means is None or self.like_threshold is None:
            raise RuntimeError("fit or load the scorer first")
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.empty(items.shape, dtype=np.float64)
        if self._targets is None:
            if self.config.score == "vote":
                liked = self.ratings.copy()
                liked.data = (liked.data >= self.like_threshold).astype(np.float64)
                liked.eliminate_zeros()
                self._targets = (liked, None)
            else:
                centred = self.ratings.copy()
                centred.data -= np.repeat(self.means, np.diff(centred.indptr))
                self._targets = (centred, self.ratings.astype(bool).astype(np.float64))
        target, rated = self._targets
        for start in range(0, len(users), self.config.user_batch):
            sl = slice(start, start + self.config.user_batch)
            ub, ib = users[sl], items[sl]
            w = self.neighbour_weights(ub)  # (B, U)
            cols, inverse = np.unique(ib, return_inverse=True)
            inv = inverse.reshape(ib.shape)
            num = np.asarray((w @ target[:, cols]).todense())  # (B, C')
            if rated is None:  # vote
                out[sl] = np.take_along_axis(num, inv, axis=1)
                continue
            den = np.asarray((w @ rated[:, cols]).todense())
            dev = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
            out[sl] = self.means[ub][:, None] + np.take_along_axis(dev, inv, axis=1)
        return out

    def save(self, path: Path) -> None:
        if self.ratings is None or self.means is None or self.like_threshold is None:
            raise RuntimeError("fit the scorer first")
        tensors = {
            **csr_to_tensors("ratings", self.ratings),
            "means": torch.from_numpy(self.means),
            "like_threshold": torch.tensor(self.like_threshold, dtype=torch.float64),
        }
        save_checkpoint(path, Checkpoint(self.name, self.config.model_dump_json(), tensors))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> UserCFScorer:
        ckpt = load_checkpoint(path, cls.name)
        config = UserCFConfig.model_validate_json(ckpt.config_json)
        if "like_threshold" not in ckpt.tensors:
            # Written before the vote rule existed: a Resnick scorer, which needs no threshold.
            config = UserCFConfig.model_validate({**config.model_dump(), "score": "resnick"})
        out = cls(config)
        out.ratings = tensors_to_csr("ratings", ckpt.tensors)
        out.means = ckpt.tensors["means"].numpy()
        threshold = ckpt.tensors.get("like_threshold")
        out.like_threshold = float("nan") if threshold is None else float(threshold)
        return out
