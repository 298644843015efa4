"""PURS: personalised unexpected recommender (Li et al.) as a CTR scorer, MODELS.md 3.

Utility (CODE, PAPER eq.4): z = b_i + b_u + CTR(u, i) + factor(u, i) · f(unexp(u, i)), with
a self-attentive GRU over the last 10 history items for CTR, a DIN local-activation unit over
the last 3 for the unexpected factor, and unexp from mean-shift clusters of the history item
embeddings, passed through f(x) = x e^{-x} under stop-gradient. Trained with BCE and plain
SGD (lr 1, global-norm clip 1, halved when the epoch's train AUC stalls).
REC choices (3.5/3.6): the history is the 10 items BEFORE the target (the code includes the
target), dropout p = 0.1 only in training, batch norms as learnable affines.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from models.portrait import ordered_interactions
from models.purs_net import PURSConfig, PURSNet, init_purs_
from models.scoring import InteractionData, ProgressFn, Scorer, resolve_device
from models.torch_utils import (
    Checkpoint,
    batch_indices,
    build_module,
    derive_seed,
    load_checkpoint,
    load_module_tensors,
    make_generator,
    module_tensors,
    numpy_rng,
    save_checkpoint,
)

log = logging.getLogger(__name__)


def sliding_windows(
    items: np.ndarray, position: np.ndarray, window: int, min_history: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and their histories: the ``window`` items BEFORE each target (REC 3.5).

    Args:
        items: (R,) item ids sorted by user then time.
        position: (R,) index of each row within its user's sequence.

    Returns:
        rows (N,) targets with at least ``min_history`` earlier items, hist (N, W) with the
        most recent item last and ``pad`` where the user has fewer than W earlier items.
    """
    rows = np.flatnonzero(position >= min_history)
    offsets = np.arange(-window, 0)
    valid = position[rows, None] + offsets >= 0
    hist = np.where(valid, items[np.maximum(rows[:, None] + offsets, 0)], pad)
    return rows, hist.astype(np.int64)


def last_windows(
    users: np.ndarray, items: np.ndarray, position: np.ndarray, n_users: int, window: int, pad: int
) -> np.ndarray:
    """Each user's last ``window`` items, most recent last, left-padded -> (U, W).

    The history a candidate is scored against (MODELS.md 3.5 REC, 3.7).
    """
    length = np.bincount(users, minlength=n_users)
    col = position - length[users] + window
    keep = col >= 0
    out = np.full((n_users, window), pad, dtype=np.int64)
    out[users[keep], col[keep]] = items[keep]
    return out


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Train AUC for the lr rule (MODELS.md 3.4): rank-sum formula, ties averaged; NaN with
    one class."""
    pos = labels > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class PURSScorer(Scorer):
    """PURS behind the scorer contract; scores are logits z (higher = better)."""

    name: ClassVar[str] = "purs"

    def __init__(self, config: PURSConfig | None = None) -> None:
        self.config = config or PURSConfig()
        self._net: PURSNet | None = None
        self._device = torch.device("cpu")

    def _new_net(self, n_users: int, n_items: int, seed: int) -> PURSNet:
        net = build_module(
            lambda: PURSNet(n_users, n_items, self.config), init_purs_, seed, self._device
        )
        return cast(PURSNet, net)

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        """Train on sliding windows of every user's ordered ratings (MODELS.md 3.4-3.5).

        Labels are binarised ratings (liked = at or above the like threshold); negatives
        are the logged non-liked ratings, as in the code (no sampling).
        """
        cfg, start = self.config, time.perf_counter()
        self._device = resolve_device(device)
        users, items, values, position = ordered_interactions(data.ratings, data.timestamps)
        pad = data.n_items
        rows, hist = sliding_windows(items, position, cfg.window, cfg.min_history, pad)
        if rows.size == 0:
            raise ValueError(f"PURS needs users with more than {cfg.min_history} ratings")
        self._windows = last_windows(users, items, position, data.n_users, cfg.window, pad)
        labels = (values[rows] >= data.like_threshold).astype(np.float32)
        prepared = time.perf_counter()
        net = self._new_net(data.n_users, data.n_items, derive_seed(seed, 1))
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr)
        rng, gen = numpy_rng(seed, 0), make_generator(derive_seed(seed, 2), self._device)
        t_users, t_items = torch.from_numpy(users[rows]), torch.from_numpy(items[rows])
        t_hist, t_y = torch.from_numpy(hist), torch.from_numpy(labels)
        lr, last_auc, loss_mean, auc = cfg.lr, float("nan"), float("nan"), float("nan")
        net.train()
        for epoch in range(cfg.epochs):
            losses, seen = [], []
            for batch in batch_indices(rows.size, cfg.batch_size, rng):
                b = torch.from_numpy(batch)
                u, y = t_users[b].to(self._device), t_y[b].to(self._device)
                state = net.user_state(u, t_hist[b].to(self._device), gen)
                z = net.logits(state, u, t_items[b].to(self._device)[:, None])[0][:, 0]
                loss = F.binary_cross_entropy_with_logits(z, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_norm)
                opt.step()
                losses.append(float(loss.detach()))
                seen.append((batch, z.detach().cpu().numpy()))
            order = np.concatenate([s[0] for s in seen])
            auc = roc_auc(np.concatenate([s[1] for s in seen]), labels[order])
            if abs(auc - last_auc) < cfg.auc_tolerance:  # CODE's plateau rule
                lr /= 2.0
                for group in opt.param_groups:
                    group["lr"] = lr
            last_auc, loss_mean = auc, float(np.mean(losses))
            log.debug("purs epoch %d loss %.4f train AUC %.4f lr %g", epoch + 1, loss_mean, auc, lr)
            if progress is not None:
                progress(epoch + 1, cfg.epochs)
        self._net = net.eval()
        return {
            "loss": loss_mean,
            "train_auc": auc,
            "lr": lr,
            "epochs": float(cfg.epochs),
            "samples": float(rows.size),
            "prepare_seconds": prepared - start,
            "seconds": time.perf_counter() - start,
        }

    @torch.no_grad()
    def score_with_unexpectedness(
        self, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits z and raw unexp(u, i) for (B,) users x (B, C) candidates.

        The GRU, attention pooling and mean-shift clusters are computed once per user, then
        reused for every candidate (MODELS.md 3.7).
        """
        if self._net is None:
            raise RuntimeError("PURSScorer.score called before fit or load")
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        step = max(1, self.config.score_pairs // max(1, items.shape[1]))
        z_out, u_out = [], []
        for lo in range(0, users.size, step):
            u = torch.from_numpy(users[lo : lo + step]).to(self._device)
            hist = torch.from_numpy(self._windows[users[lo : lo + step]]).to(self._device)
            state = self._net.user_state(u, hist)
            z, unexp = self._net.logits(
                state, u, torch.from_numpy(items[lo : lo + step]).to(self._device)
            )
            z_out.append(z.double().cpu().numpy())
            u_out.append(unexp.double().cpu().numpy())
        return np.concatenate(z_out), np.concatenate(u_out)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits z (MODELS.md 3.3) -> (B, C)."""
        return self.score_with_unexpectedness(users, items)[0]

    def save(self, path: Path) -> None:
        """Config, weights and each user's last history window."""
        if self._net is None:
            raise RuntimeError("nothing to save: fit first")
        tensors = {"fit.windows": torch.from_numpy(self._windows)}
        tensors.update(module_tensors("net", self._net))
        extra: dict[str, float | int | str] = {
            "n_users": self._net.user_emb.num_embeddings,
            "n_items": self._net.pad,
        }
        save_checkpoint(path, Checkpoint(self.name, self.config.model_dump_json(), tensors, extra))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> PURSScorer:
        """Rebuild a scorer written by :meth:`save` on ``device``."""
        ckpt = load_checkpoint(path, cls.name)
        scorer = cls(PURSConfig.model_validate_json(ckpt.config_json))
        scorer._device = resolve_device(device)
        scorer._windows = ckpt.tensors["fit.windows"].numpy()
        net = scorer._new_net(int(ckpt.extra["n_users"]), int(ckpt.extra["n_items"]), 0)
        load_module_tensors("net", net, ckpt.tensors)
        scorer._net = net.eval()
        return scorer
