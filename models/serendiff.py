"""SerenDiff: conditional diffusion over a user portrait, matched back to items by cell rings.

MODELS.md 2 (PAPER: SerenDiff). Training (2.2-2.3, 2.8): one example per serendipitous
(user, item) pair; the condition is the user's portrait built from the rest of the history,
x_0 is the item's embedding at its (expectedness, relevance) cell; the U-Net learns the
noise ε with an MSE loss over a linear DDPM schedule (T = 1000). Scoring (2.5, 2.8): S
reverse chains of 50 DDIM steps give x̂_0; the strongest cells of x̂_0 are matched to the
candidates by Chebyshev ring distance first, cosine within a ring, averaged over the S chains.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import ClassVar, cast

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from models.portrait import (
    GRID,
    N_CELLS,
    CooccurrenceTable,
    DecileBins,
    UserRepr,
    history_cells,
    history_matrix,
    item_embeddings,
    ordered_interactions,
    query_relations,
    target_grid,
    user_condition,
)
from models.scoring import InteractionData, ProgressFn, Scorer, resolve_device
from models.serendiff_net import SerenDiffUNet, ddim_sample, init_unet_, linear_alpha_bar, q_sample
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


class SerenDiffConfig(BaseModel):
    """Settings of the compact SerenDiff (MODELS.md 2.8; paper values in 2.4)."""

    model_config = ConfigDict(extra="forbid")

    embedding_dim: int = Field(64, ge=1, description="item embedding channels d")
    max_history: int = Field(100, ge=1, description="most recent history items in a portrait")
    mu: float = Field(1.0, gt=0.0, description="Dirichlet smoothing of co-occurrence")
    user_repr: UserRepr = Field("portrait", description="ablation: how the user conditions")
    occupancy_channel: bool = Field(False, description="extra ±1 target-cell channel in x_0")
    max_targets_per_user: int = Field(3, ge=1, description="liked items used without labels")
    width: int = Field(64, ge=8)
    time_dim: int = Field(256, ge=8)
    groups: int = Field(8, ge=1)
    attention: bool = False
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    timesteps: int = Field(1000, ge=2, description="T of the DDPM training schedule")
    beta_start: float = Field(1e-4, gt=0.0)
    beta_end: float = Field(0.02, gt=0.0, lt=1.0)
    sample_steps: int = Field(50, ge=1, description="DDIM steps (η = 0) at scoring time")
    clip_denoised: bool = Field(True, description="clamp x̂_0 to the embedding range")
    n_samples: int = Field(2, ge=1, description="reverse chains S averaged per user")
    match_cells: int = Field(3, ge=1, le=N_CELLS, description="strongest cells P matched")
    ring_penalty: float = Field(2.0, ge=0.0, description="score lost per Chebyshev ring")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    sample_batch: int = Field(256, ge=1, description="chains denoised together when scoring")


def ring_match_scores(
    x0: torch.Tensor,
    cand_emb: torch.Tensor,
    cand_cells: torch.Tensor,
    n_cells: int,
    ring_penalty: float = 2.0,
    occupancy: bool = False,
) -> torch.Tensor:
    """Match generated points to candidates: same cell first, then rings (MODELS.md 2.5, 2.8).

    The P strongest cells of x̂_0 (channel-vector norm, or the occupancy channel) are the
    generated points v_c. A candidate j in cell c_j is ρ_j = min_c Chebyshev(c_j, c) rings
    away and scores cos(v_nearest, e_j) - ring_penalty·ρ_j; with the default penalty 2 any
    nearer ring outranks any farther one, reproducing "expand to adjacent areas" (PAPER 4.4).
    The scoring rule is RECONSTRUCTED (MODELS.md 2.8 design; the paper gives no formula).

    Args:
        x0: (N, Cx, G, G) generated grids; the first d channels are item space.
        cand_emb: (N, C, d) candidate embeddings.
        cand_cells: (N, C) int candidate cells.
        n_cells: P.

    Returns:
        (N, C) scores, higher = better.
    """
    n, dim = x0.shape[0], cand_emb.shape[-1]
    flat = x0.reshape(n, x0.shape[1], N_CELLS)
    vec = flat[:, :dim]  # (N, d, 100)
    strength = flat[:, dim] if occupancy else vec.norm(dim=1)  # (N, 100)
    sel = strength.topk(min(n_cells, N_CELLS), dim=1).indices  # (N, P)
    v = vec.gather(2, sel[:, None, :].expand(-1, dim, -1)).transpose(1, 2)  # (N, P, d)
    cos = F.normalize(cand_emb, dim=-1) @ F.normalize(v, dim=-1).transpose(1, 2)  # (N, C, P)
    dr = (cand_cells[:, :, None] // GRID - sel[:, None, :] // GRID).abs()
    dc = (cand_cells[:, :, None] % GRID - sel[:, None, :] % GRID).abs()
    ring = torch.maximum(dr, dc)  # (N, C, P) Chebyshev distance
    nearest = ring.min(dim=-1).values
    best = torch.where(ring == nearest[..., None], cos, torch.full_like(cos, -torch.inf))
    return best.max(dim=-1).values - ring_penalty * nearest.to(cos.dtype)


def training_targets(data: InteractionData, max_per_user: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) training targets: the serendipity labels, else recent liked target items.

    MODELS.md 2.2: one training example per serendipitous item. Without labels (or with
    none stored) the ``max_per_user`` most recent liked items of the target domain stand
    in, a RECONSTRUCTED relevance proxy the paper does not use (logged).
    """
    if data.serendipitous is not None and data.serendipitous.nnz > 0:
        coo = sp.coo_matrix(data.serendipitous)
        keep = coo.data != 0
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
    log.warning("no serendipity labels: training SerenDiff on recent liked target items")
    users, items, values, position = ordered_interactions(data.ratings, data.timestamps)
    liked = (values >= data.like_threshold) & (data.item_domain[items] == data.target_domain)
    users, items, position = users[liked], items[liked], position[liked]
    rank_from_end = np.zeros(users.size, dtype=np.int64)
    if users.size:
        # Rows are sorted by user then time, so counting back within each user run ranks recency.
        last = np.r_[np.flatnonzero(np.diff(users)), users.size - 1]
        run_end = np.repeat(last, np.diff(np.r_[-1, last]))
        rank_from_end = run_end - np.arange(users.size)
    keep = rank_from_end < max_per_user
    return users[keep], items[keep]


def _drop_items(hist: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Remove each row's target from its history and close the gap (order kept)."""
    keep = (hist >= 0) & (hist != items[:, None])
    order = np.argsort(~keep, axis=1, kind="stable")
    return np.take_along_axis(np.where(keep, hist, -1), order, axis=1)


class SerenDiffScorer(Scorer):
    """SerenDiff behind the scorer contract (``models/scoring.py``)."""

    name: ClassVar[str] = "serendiff"

    def __init__(self, config: SerenDiffConfig | None = None) -> None:
        self.config = config or SerenDiffConfig()
        self._net: SerenDiffUNet | None = None
        self._device = torch.device("cpu")
        self._seed = 0

    # ----- fitted state shared by fit and score -------------------------------------------

    def _prepare(self, data: InteractionData, rng: np.random.Generator) -> None:
        cfg = self.config
        self._table = CooccurrenceTable.from_ratings(data.ratings, cfg.mu)
        self._emb = item_embeddings(data.ratings, data.item_features, cfg.embedding_dim, rng)
        self._hist = history_matrix(data.ratings, data.timestamps, cfg.max_history)
        self._set_unit()

    def _set_unit(self) -> None:
        # float64 and contiguous: cells compare cosines with decile edges that are often
        # equal to a pooled cosine, so the bits must not depend on memory layout.
        self._emb = np.ascontiguousarray(self._emb, dtype=np.float32)
        emb = self._emb.astype(np.float64)
        self._unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def _channels(self) -> tuple[int, int]:
        dim = self._emb.shape[1]
        return dim + int(self.config.occupancy_channel), dim + 1

    def _new_net(self, seed: int) -> SerenDiffUNet:
        cfg = self.config
        data_ch, cond_ch = self._channels()

        def factory() -> SerenDiffUNet:
            return SerenDiffUNet(
                data_ch, cond_ch, cfg.width, cfg.time_dim, cfg.groups, cfg.dropout, cfg.attention
            )

        return cast(SerenDiffUNet, build_module(factory, init_unet_, seed, self._device))

    def _history_cells(self, hist: np.ndarray) -> np.ndarray:
        exp, rel = query_relations(self._table, self._unit, hist, hist, causal=True)
        return history_cells(hist, exp, rel, self._bins)

    def _condition(self, hist: np.ndarray, cells: np.ndarray | None = None) -> torch.Tensor:
        if cells is None and self.config.user_repr == "portrait":
            cells = self._history_cells(hist)
        cond = user_condition(self.config.user_repr, hist, self._emb, cells)
        return torch.from_numpy(cond).to(self._device)

    # ----- training ------------------------------------------------------------------------

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        """Train the denoiser on the serendipity labels (MODELS.md 2.2, 2.3, 2.8)."""
        cfg, start = self.config, time.perf_counter()
        self._device, self._seed = resolve_device(device), int(seed)
        rng = numpy_rng(seed, 0)
        self._prepare(data, rng)
        users, items = training_targets(data, cfg.max_targets_per_user)
        if users.size == 0:
            raise ValueError("SerenDiff found no training examples (no labels, no liked items)")
        # Decile edges pool every user's portrait positions m >= 2 (PAPER: the training set).
        exp, rel = query_relations(self._table, self._unit, self._hist, self._hist, causal=True)
        pooled = (self._hist >= 0) & (np.arange(self._hist.shape[1]) >= 1)
        self._bins = DecileBins.fit(exp[pooled], rel[pooled])
        hist = _drop_items(self._hist[users], items)
        cells = self._history_cells(hist)
        pattern = sp.csr_matrix(data.ratings, dtype=np.float64, copy=True)
        pattern.data[:] = 1.0  # stored pattern, whatever the rating value
        held = np.asarray(pattern[users, items]).ravel() > 0
        t_exp, t_rel = query_relations(
            self._table, self._unit, hist, items[:, None], leave_out=held
        )
        x0_all = target_grid(
            self._bins.cells(t_exp, t_rel)[:, 0], self._emb[items], cfg.occupancy_channel
        )

        prepared = time.perf_counter()
        net = self._new_net(derive_seed(seed, 1))
        ema = copy.deepcopy(net).eval().requires_grad_(False)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = make_generator(derive_seed(seed, 2), self._device)
        alpha_bar = linear_alpha_bar(cfg.timesteps, cfg.beta_start, cfg.beta_end).to(self._device)
        step, loss_mean = 0, float("nan")
        for epoch in range(cfg.epochs):
            net.train()
            losses = []
            for batch in batch_indices(users.size, cfg.batch_size, rng):
                cond = self._condition(hist[batch], cells[batch])
                x0 = torch.from_numpy(x0_all[batch]).to(self._device)
                t = torch.randint(
                    0, cfg.timesteps, (batch.size,), generator=gen, device=self._device
                )
                noise = torch.randn(x0.shape, generator=gen, device=self._device)
                loss = F.mse_loss(net(q_sample(x0, noise, alpha_bar[t]), t, cond, gen), noise)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                # Warm-up keeps the EMA from sitting on the (zero-output) initial weights.
                decay = min(cfg.ema_decay, (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                        p_ema.lerp_(p, 1.0 - decay)
                losses.append(float(loss.detach()))
            loss_mean = float(np.mean(losses))
            log.debug("serendiff epoch %d loss %.4f", epoch + 1, loss_mean)
            if progress is not None:
                progress(epoch + 1, cfg.epochs)
        self._net = ema
        return {
            "loss": loss_mean,
            "epochs": float(cfg.epochs),
            "examples": float(users.size),
            "parameters": float(sum(p.numel() for p in net.parameters())),
            "prepare_seconds": prepared - start,
            "seconds": time.perf_counter() - start,
        }

    # ----- scoring -------------------------------------------------------------------------

    def _start_noise(self, users: np.ndarray) -> torch.Tensor:
        """x_T per user from a stream keyed by (seed, user): scores do not depend on batching."""
        data_ch = self._channels()[0]
        shape = (self.config.n_samples, data_ch, GRID, GRID)
        draws = [
            torch.randn(shape, generator=make_generator(derive_seed(self._seed, 3, int(u))))
            for u in users
        ]
        return torch.stack(draws).to(self._device)  # (B, S, Cx, G, G)

    @torch.no_grad()
    def generate(self, users: np.ndarray) -> torch.Tensor:
        """Generated serendipity grids x̂_0 for ``users`` -> (B, S, Cx, G, G) (MODELS.md 2.3)."""
        if self._net is None:
            raise RuntimeError("SerenDiffScorer.generate called before fit or load")
        cfg, users, net = self.config, np.asarray(users, dtype=np.int64), self._net
        cond = self._condition(self._hist[users]).repeat_interleave(cfg.n_samples, dim=0)
        x_start = self._start_noise(users).flatten(0, 1)  # (B*S, Cx, G, G)
        alpha_bar = linear_alpha_bar(cfg.timesteps, cfg.beta_start, cfg.beta_end)
        # x_0 holds embedding values (and ±1 occupancy), so its range is the embeddings'.
        clip = max(1.0, float(np.abs(self._emb).max())) if cfg.clip_denoised else None
        out = []
        for lo in range(0, x_start.shape[0], cfg.sample_batch):
            c = cond[lo : lo + cfg.sample_batch]

            def eps(x: torch.Tensor, t: int, c: torch.Tensor = c) -> torch.Tensor:
                steps = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
                return net(x, steps, c)

            chunk = x_start[lo : lo + cfg.sample_batch]
            out.append(ddim_sample(eps, chunk, alpha_bar, cfg.sample_steps, clip))
        return torch.cat(out).reshape(users.size, cfg.n_samples, *x_start.shape[1:])

    def candidate_cells(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cells of candidates against each user's full history (MODELS.md 2.2, 2.5) -> (B, C)."""
        exp, rel = query_relations(self._table, self._unit, self._hist[users], items)
        return self._bins.cells(exp, rel)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Ring-matching scores averaged over S reverse chains (MODELS.md 2.8) -> (B, C)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        x0 = self.generate(users)  # (B, S, Cx, G, G)
        s = self.config.n_samples
        cells = torch.from_numpy(self.candidate_cells(users, items)).to(self._device)
        emb = torch.from_numpy(self._emb[items]).to(self._device)
        scores = ring_match_scores(
            x0.flatten(0, 1),
            emb.repeat_interleave(s, dim=0),
            cells.repeat_interleave(s, dim=0),
            self.config.match_cells,
            self.config.ring_penalty,
            self.config.occupancy_channel,
        )
        return scores.reshape(users.size, s, -1).mean(dim=1).double().cpu().numpy()

    # ----- persistence ---------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Config, EMA weights and fitted arrays (table, embeddings, histories, deciles)."""
        if self._net is None:
            raise RuntimeError("nothing to save: fit first")
        arrays = {
            "keys": self._table.keys,
            "counts": self._table.counts,
            "totals": self._table.totals,
            "item_counts": self._table.item_counts,
            "emb": self._emb,
            "hist": self._hist,
            "exp_edges": self._bins.exp_edges,
            "rel_edges": self._bins.rel_edges,
        }
        tensors = {f"fit.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        tensors.update(module_tensors("net", self._net))
        extra: dict[str, float | int | str] = {"seed": self._seed, "mu": self._table.mu}
        save_checkpoint(path, Checkpoint(self.name, self.config.model_dump_json(), tensors, extra))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> SerenDiffScorer:
        """Rebuild a scorer written by :meth:`save` on ``device``."""
        ckpt = load_checkpoint(path, cls.name)
        scorer = cls(SerenDiffConfig.model_validate_json(ckpt.config_json))
        scorer._device, scorer._seed = resolve_device(device), int(ckpt.extra["seed"])
        arr = {k[4:]: v.numpy() for k, v in ckpt.tensors.items() if k.startswith("fit.")}
        scorer._table = CooccurrenceTable(
            arr["keys"], arr["counts"], arr["totals"], arr["item_counts"], float(ckpt.extra["mu"])
        )
        scorer._emb, scorer._hist = arr["emb"], arr["hist"]
        scorer._set_unit()
        scorer._bins = DecileBins(arr["exp_edges"], arr["rel_edges"])
        net = scorer._new_net(0)
        load_module_tensors("net", net, ckpt.tensors)
        scorer._net = net.eval()
        return scorer
