"""Cross-domain VAE linked at the latent layer (SharedVAE, Ahangama et al.; MODELS.md 4).

Read bottom-up: losses (reconstruction, KL, MMD), the encoder/decoder blocks, the networks,
the config, then the scorer, which owns the trainer loop. Modes (one config field):

* ``cross``: an encoder per domain; the target decoder reads [z_s ; z_t] (asymmetric link);
  with ``cold_start`` a learned map z_s -> z_t (MSE mapping loss) stands in for z_t when a
  user has no target history;
* ``single``: one VAE over the target items only;
* ``merged``: one VAE over the source and target items as one catalogue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
    init_all_linear_,
    load_checkpoint,
    load_module_tensors,
    make_generator,
    module_tensors,
    numpy_rng,
    pick_source_domain,
    save_checkpoint,
    tensors_to_csr,
)

logger = logging.getLogger(__name__)

MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, beta: float) -> torch.Tensor:
    """Σ_j BCE(x_j, x̂_j) + β Σ_j x_j (−ln x̂_j) per user (MODELS.md 4.3; PAPER eq.8). -> (B,)."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return (bce + beta * x * F.softplus(-logits)).sum(-1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """−½ Σ_k (1 + log σ²_k − μ_k² − σ²_k) per user (MODELS.md 4.3). -> (B,)."""
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


def mmd2_unbiased(
    a: torch.Tensor, b: torch.Tensor, scales: tuple[float, ...] = MMD_SCALES
) -> torch.Tensor:
    """Unbiased MMD² between samples a (n, d) and b (m, d) (MODELS.md 4.3 REC; PAPER eq.10).

    RECONSTRUCTED: the paper names neither kernel nor λ. Kernel: the mean of Gaussian kernels
    exp(−||x−y||²/(2h²)), h² = scale x the median pairwise squared distance of the pooled
    sample (detached, so the bandwidth is not a training target).
    """
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        return a.new_zeros(())
    pooled = torch.cat([a, b])
    d2 = torch.cdist(pooled, pooled).pow(2)  # (n+m, n+m)
    off = ~torch.eye(n + m, dtype=torch.bool, device=a.device)
    median = d2.detach()[off].median().clamp_min(1e-12)
    k = sum(torch.exp(-d2 / (2.0 * s * median)) for s in scales) / len(scales)
    k_aa, k_bb, k_ab = k[:n, :n], k[n:, n:], k[:n, n:]
    diag_a, diag_b = k_aa.diagonal().sum(), k_bb.diagonal().sum()
    return (
        (k_aa.sum() - diag_a) / (n * (n - 1))
        + (k_bb.sum() - diag_b) / (m * (m - 1))
        - 2.0 * k_ab.mean()
    )


class Encoder(nn.Module):
    """n -> h tanh -> h/2 tanh -> (μ, log σ²) of size latent (MODELS.md 4.2)."""

    def __init__(self, n_in: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden // 2), nn.Tanh()
        )
        self.mu = nn.Linear(hidden // 2, latent)
        self.logvar = nn.Linear(hidden // 2, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)  # (B, h/2)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z -> h/2 tanh -> h tanh -> n logits (sigmoid applied in the loss) (MODELS.md 4.2)."""

    def __init__(self, n_latent_in: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_latent_in, hidden // 2),
            nn.Tanh(),
            nn.Linear(hidden // 2, hidden),
            nn.Tanh(),
        )
        self.out = nn.Linear(hidden, n_out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(z))  # (B, n)


def _reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    if generator is None:
        return mu
    eps = torch.randn(mu.shape, generator=generator, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


class CrossDomainVAENet(nn.Module):
    """Two VAEs linked at the latent layer; the target decoder reads [z_s ; z_t]."""

    def __init__(self, n_source: int, n_target: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.enc_s, self.enc_t = (
            Encoder(n_source, hidden, latent),
            Encoder(n_target, hidden, latent),
        )
        self.dec_s = Decoder(latent, hidden, n_source)
        self.dec_t = Decoder(2 * latent, hidden, n_target)
        # Cold-start map z_s -> z_t; trained only in the cold-start variant.
        self.mapping = nn.Sequential(
            nn.Linear(latent, latent), nn.Tanh(), nn.Linear(latent, latent)
        )

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_all_linear_(self, generator)

    def output_layers(self) -> list[nn.Linear]:
        return [self.dec_s.out, self.dec_t.out]

    def forward(
        self,
        x_s: torch.Tensor,
        x_t: torch.Tensor,
        generator: torch.Generator | None = None,
        mapped: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """x_s (B, n_s), x_t (B, n_t) -> logits and latents; sampled z iff ``generator``.

        ``mapped`` (B,) bool: users whose z_t is replaced by mapping(z_s) (cold start).
        """
        mu_s, lv_s = self.enc_s(x_s)
        mu_t, lv_t = self.enc_t(x_t)
        z_s, z_t = _reparameterise(mu_s, lv_s, generator), _reparameterise(mu_t, lv_t, generator)
        z_map = self.mapping(z_s)
        z_t_in = z_t if mapped is None else torch.where(mapped[:, None], z_map, z_t)
        return {
            "logits_s": self.dec_s(z_s),
            "logits_t": self.dec_t(torch.cat([z_s, z_t_in], dim=-1)),  # (B, n_t)
            "mu_s": mu_s, "logvar_s": lv_s, "mu_t": mu_t, "logvar_t": lv_t,
            "z_s": z_s, "z_t": z_t, "z_map": z_map,
        }  # fmt: skip


class SingleVAENet(nn.Module):
    """One VAE over one catalogue (the single-domain and merged-domain baselines)."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.enc, self.dec = Encoder(n_items, hidden, latent), Decoder(latent, hidden, n_items)

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_all_linear_(self, generator)

    def output_layers(self) -> list[nn.Linear]:
        return [self.dec.out]

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        mu, lv = self.enc(x)
        z = _reparameterise(mu, lv, generator)
        return {"logits": self.dec(z), "mu": mu, "logvar": lv, "z": z}


class CrossDomainVAEConfig(BaseModel):
    """Hyper-parameters (MODELS.md 4.2-4.4; hidden 256 is the paper's MovieLens setting)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["cross", "single", "merged"] = "cross"
    cold_start: bool = False  # cross mode: map z_s -> z_t for users with no target history
    hidden_dim: int = Field(256, ge=2)
    latent_dim: int = Field(128, ge=1)
    beta: float = Field(90.0, ge=0)  # CODE "hadamard" weight on observed items
    link: Literal["mmd", "paired", "both", "none"] = "mmd"  # PAPER MMD; CODE paired L2
    link_weight: float = Field(1.0, ge=0)  # λ
    mapping_weight: float = Field(1.0, ge=0)
    l2: float = Field(1e-4, ge=0)  # on all layers but the output layers
    lr: float = Field(1e-3, gt=0)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=2)
    implicit: Literal["liked", "rated"] = "liked"  # PAPER: ratings 4-5 -> 1
    eval_sample: bool = False  # CODE samples z at prediction; REC uses μ


class CrossDomainVAEScorer(Scorer):
    """The cross-domain VAE (or its single/merged baselines) behind the scorer contract."""

    name: ClassVar[str] = "cross_vae"

    def __init__(self, config: CrossDomainVAEConfig | None = None) -> None:
        self.config = config or CrossDomainVAEConfig()
        self.net: CrossDomainVAENet | SingleVAENet | None = None
        self.device = torch.device("cpu")
        self.inputs: sp.csr_matrix | None = None  # (U, I) binary training interactions
        self.blocks: list[np.ndarray] = []  # item ids of each input block (source, target)
        self.col_of: np.ndarray | None = None  # (I,) output column of an item, -1 if none
        self.eval_seed = 0

    def fit(
        self,
        data: InteractionData,
        *,
        seed: int,
        device: str = "auto",
        progress: ProgressFn | None = None,
    ) -> dict[str, float]:
        cfg = self.config
        self.device = resolve_device(device)
        t0 = time.perf_counter()
        target = data.domain_items(data.target_domain)
        if cfg.mode == "single":
            self.blocks = [target]
        else:
            source = data.domain_items(
                pick_source_domain(data.item_domain, data.target_domain, data.ratings)
            )
            self.blocks = (
                [source, target] if cfg.mode == "cross" else [np.concatenate([source, target])]
            )
        x = data.liked() if cfg.implicit == "liked" else sp.csr_matrix(data.ratings)
        self.inputs = sp.csr_matrix(x.astype(bool), dtype=np.float32)
        self._index_columns(data.n_items)
        self.eval_seed = derive_seed(seed, 31)
        self.net = build_module(
            self._factory(), lambda m, g: m.reset_parameters(g), derive_seed(seed, 32), self.device
        )
        log = self._train(seed, progress)
        log["seconds"] = time.perf_counter() - t0
        return log

    def _factory(self) -> Callable[[], CrossDomainVAENet | SingleVAENet]:
        """A zero-argument constructor of the network for the current blocks."""
        cfg, sizes = self.config, [len(b) for b in self.blocks]

        def make() -> CrossDomainVAENet | SingleVAENet:
            if cfg.mode == "cross":
                return CrossDomainVAENet(sizes[0], sizes[1], cfg.hidden_dim, cfg.latent_dim)
            return SingleVAENet(sizes[0], cfg.hidden_dim, cfg.latent_dim)

        return make

    def _index_columns(self, n_items: int) -> None:
        self.col_of = np.full(n_items, -1, dtype=np.int64)
        all_cols = np.concatenate(self.blocks)
        self.col_of[all_cols] = np.arange(len(all_cols))

    def _batch_inputs(self, users: np.ndarray) -> list[torch.Tensor]:
        assert self.inputs is not None
        rows = self.inputs[users]
        return [torch.as_tensor(rows[:, b].toarray(), device=self.device) for b in self.blocks]

    def _loss(
        self, xs: list[torch.Tensor], gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Batch loss (MODELS.md 4.3): ELBOs of non-empty rows, link, cold-start map, L2."""
        cfg, net = self.config, self.net
        if isinstance(net, SingleVAENet):
            out = net(xs[0], gen)
            has = (xs[0].sum(-1) > 0).float()  # an empty row carries nothing to reconstruct
            elbo = (
                reconstruction_loss(out["logits"], xs[0], cfg.beta)
                + kl_divergence(out["mu"], out["logvar"])
            ) * has
            loss = elbo.sum() / float(len(xs[0]))  # batch mean, as in cross mode
            parts = {"elbo": float(loss.detach())}
        else:
            assert isinstance(net, CrossDomainVAENet)
            has_s, has_t = (xs[0].sum(-1) > 0), (xs[1].sum(-1) > 0)
            mapped = ~has_t if cfg.cold_start else None
            out = net(xs[0], xs[1], gen, mapped)
            rec_s = reconstruction_loss(out["logits_s"], xs[0], cfg.beta)
            rec_s = rec_s + kl_divergence(out["mu_s"], out["logvar_s"])
            rec_t = reconstruction_loss(out["logits_t"], xs[1], cfg.beta)
            rec_t = rec_t + kl_divergence(out["mu_t"], out["logvar_t"])
            n = float(len(xs[0]))
            loss = (rec_s * has_s).sum() / n + (rec_t * has_t).sum() / n
            parts = {"elbo": float(loss.detach())}
            both = has_s & has_t
            link = torch.zeros((), device=self.device)
            if cfg.link in ("mmd", "both"):
                link = link + mmd2_unbiased(out["z_s"][has_s], out["z_t"][has_t])
            if cfg.link in ("paired", "both") and bool(both.any()):
                link = link + (out["z_s"][both] - out["z_t"][both]).pow(2).sum(-1).mean()
            loss = loss + cfg.link_weight * link
            parts["link"] = float(link.detach())
            if cfg.cold_start and bool(both.any()):
                target_mu = out["mu_t"][both].detach()  # the map follows z_t, never drags it
                mapping = (net.mapping(out["mu_s"][both]) - target_mu).pow(2).sum(-1).mean()
                loss = loss + cfg.mapping_weight * mapping
                parts["mapping"] = float(mapping.detach())
        assert net is not None
        outputs = {id(p) for layer in net.output_layers() for p in layer.parameters()}
        reg = sum(p.pow(2).sum() for p in net.parameters() if id(p) not in outputs)
        return loss + cfg.l2 * reg, parts

    def _train(self, seed: int, progress: ProgressFn | None) -> dict[str, float]:
        cfg, net = self.config, self.net
        assert net is not None and self.inputs is not None
        rng = numpy_rng(seed, 33)
        gen = make_generator(derive_seed(seed, 34), self.device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        log: dict[str, float] = {}
        net.train()
        for epoch in range(cfg.epochs):
            sums: dict[str, float] = {}
            n_batches = 0
            for users in batch_indices(self.inputs.shape[0], cfg.batch_size, rng):
                loss, parts = self._loss(self._batch_inputs(users), gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                parts["loss"] = float(loss.detach())
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_batches += 1
            log = {k: v / max(n_batches, 1) for k, v in sums.items()}
            if progress is not None:
                progress(epoch + 1, cfg.epochs)
        net.eval()
        log["epochs"] = float(cfg.epochs)
        return log

    @torch.no_grad()
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Output logits of the decoders (μ at evaluation unless ``eval_sample``)."""
        if self.net is None or self.col_of is None:
            raise RuntimeError("fit or load the scorer first")
        items = np.asarray(items, dtype=np.int64)
        cols = self.col_of[items]
        if np.any(cols < 0):
            raise ValueError(f"{self.config.mode} VAE scores only items of its catalogue")
        xs = self._batch_inputs(np.asarray(users, dtype=np.int64))
        gen = make_generator(self.eval_seed, self.device) if self.config.eval_sample else None
        if isinstance(self.net, SingleVAENet):
            logits = self.net(xs[0], gen)["logits"]
        else:
            mapped = (xs[1].sum(-1) == 0) if self.config.cold_start else None
            out = self.net(xs[0], xs[1], gen, mapped)
            logits = torch.cat([out["logits_s"], out["logits_t"]], dim=-1)  # (B, n_s + n_t)
        picked = torch.gather(logits, 1, torch.as_tensor(cols, device=self.device))
        return picked.double().cpu().numpy()

    def save(self, path: Path) -> None:
        if self.net is None or self.inputs is None:
            raise RuntimeError("fit the scorer first")
        tensors = {
            **module_tensors("net", self.net),
            **csr_to_tensors("inputs", self.inputs),
            **{f"block{k}": torch.from_numpy(b) for k, b in enumerate(self.blocks)},
        }
        extra = {"eval_seed": str(self.eval_seed), "n_blocks": len(self.blocks)}
        save_checkpoint(path, Checkpoint(self.name, self.config.model_dump_json(), tensors, extra))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> CrossDomainVAEScorer:
        ckpt = load_checkpoint(path, cls.name)
        out = cls(CrossDomainVAEConfig.model_validate_json(ckpt.config_json))
        out.device = resolve_device(device)
        out.blocks = [ckpt.tensors[f"block{k}"].numpy() for k in range(int(ckpt.extra["n_blocks"]))]
        inputs = tensors_to_csr("inputs", ckpt.tensors)
        out.inputs = sp.csr_matrix(inputs, dtype=np.float32)
        out._index_columns(inputs.shape[1])
        out.eval_seed = int(ckpt.extra["eval_seed"])
        net = empty_module(out._factory())
        load_module_tensors("net", net, ckpt.tensors)
        out.net = net.to(out.device).eval()
        return out
