"""SerenCDR: cross-domain serendipity with shared user/item "essence" matrices (MODELS.md 1).

Read bottom-up: the losses, the network (MODELS.md 1.2-1.3), the config, then the scorer,
which owns the trainer loop (1.4-1.6); inputs and samples live in models/serencdr_data.py.
Two domains: the target and one source (the largest by number of ratings when there are
several); local index 0 = source, 1 = target. Deviations from the reference code follow
MODELS.md 1.7 (REC): layers built once, BPR on raw scores, the bounded auxiliary loss
back-propagated, 64+64 feature fusion."""

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

from models.expectedness import sample_row_items
from models.scoring import InteractionData, ProgressFn, Scorer, resolve_device
from models.serencdr_data import DomainSamples, domain_embeddings, domain_samples
from models.torch_utils import (
    Checkpoint,
    build_module,
    derive_seed,
    dropout,
    empty_module,
    init_all_linear_,
    load_checkpoint,
    load_module_tensors,
    make_generator,
    module_tensors,
    numpy_rng,
    pick_source_domain,
    save_checkpoint,
)

logger = logging.getLogger(__name__)


def bpr_loss(s_pos: torch.Tensor, s_neg: torch.Tensor) -> torch.Tensor:
    """Main loss, mean of −ln σ(ŷ(u,i+) − ŷ(u,i−)) (MODELS.md 1.4; PAPER eq.14-16, REC: on raw
    scores, where the reference code applies BCE to σ(s+) − σ(s−))."""
    return -F.logsigmoid(s_pos - s_neg).mean()


def bounded_aux_loss(s_rel: torch.Tensor, s_exp: torch.Tensor) -> torch.Tensor:
    """Auxiliary loss, mean of −ln σ(u·e_rel) − ln σ(−u·e_exp) (MODELS.md 1.4 REC).

    RECONSTRUCTED: the paper's −ln[σ(u·e_rel)/σ(u·e_exp)] (eq.17-19) is unbounded below; this
    bounded form keeps its two pulls (towards relevant, away from expected items) and is ≥ 0.

    Args:
        s_rel: (B, K) products u·e_rel with relevant items (raw embeddings or fused vectors,
            see ``aux_item``).
        s_exp: (B, K) products u·e_exp with expected items.
    """
    return -F.logsigmoid(s_rel).mean() - F.logsigmoid(-s_exp).mean()


class SerenCDRNet(nn.Module):
    """Domain-shareable and domain-specific towers (MODELS.md 1.2-1.3; PAPER eq.1-13).

    u'_s = ReLU(P'_s e_u) U_s,  u'_t = ReLU(P'_t e_u) (U_s T^U); same for items with I_s, T^I;
    u''_D = ReLU(P''_D e_u); u_D = [u'_D ; u''_D]; ŷ = u_D · i_D. Ablations: without
    ``use_shared`` each domain has its own essence matrix (no transfer); without
    ``use_alignment`` T is the identity (U_t = U_s).
    """

    def __init__(
        self,
        in_dim: int,
        latent_dim: int,
        use_shared: bool = True,
        use_alignment: bool = True,
        n_item_bias: int = 0,
    ) -> None:
        super().__init__()
        f = latent_dim
        self.use_shared, self.use_alignment = use_shared, use_alignment
        self.user_member = nn.ModuleList([nn.Linear(in_dim, f) for _ in range(2)])  # P'_s, P'_t
        self.item_member = nn.ModuleList([nn.Linear(in_dim, f) for _ in range(2)])  # Q'_s, Q'_t
        self.user_specific = nn.ModuleList([nn.Linear(in_dim, f) for _ in range(2)])  # P''_D
        self.item_specific = nn.ModuleList([nn.Linear(in_dim, f) for _ in range(2)])  # Q''_D
        n_essence = 1 if use_shared else 2
        self.user_essence = nn.Parameter(torch.empty(n_essence, f, f))  # U_s (and U_t unshared)
        self.item_essence = nn.Parameter(torch.empty(n_essence, f, f))  # I_s
        self.user_align = nn.Parameter(torch.empty(f, f))  # T^U
        self.item_align = nn.Parameter(torch.empty(f, f))  # T^I
        # b_i per global item id (an addition, see SerenCDRConfig.item_bias); empty when off.
        self.item_bias = nn.Parameter(torch.zeros(n_item_bias))

    def reset_parameters(self, generator: torch.Generator) -> None:
        init_all_linear_(self, generator)
        for ess in (self.user_essence, self.item_essence):
            for m in ess:
                nn.init.xavier_uniform_(m, generator=generator)
        # T starts at the identity: the target starts from the source's essence, not a scramble.
        nn.init.eye_(self.user_align)
        nn.init.eye_(self.item_align)
        nn.init.zeros_(self.item_bias)

    def _essence(self, essence: torch.Tensor, align: torch.Tensor, domain: int) -> torch.Tensor:
        if not self.use_shared:
            return essence[domain]
        if domain == 1 and self.use_alignment:
            return essence[0] @ align
        return essence[0]

    def user_vectors(self, e_u: torch.Tensor, domain: int) -> torch.Tensor:
        """(B, in) -> fused u_D (B, 2f)."""
        shared = F.relu(self.user_member[domain](e_u)) @ self._essence(
            self.user_essence, self.user_align, domain
        )
        return torch.cat([shared, F.relu(self.user_specific[domain](e_u))], dim=-1)

    def item_vectors(self, e_i: torch.Tensor, domain: int) -> torch.Tensor:
        """(..., in) -> fused i_D (..., 2f)."""
        shared = F.relu(self.item_member[domain](e_i)) @ self._essence(
            self.item_essence, self.item_align, domain
        )
        return torch.cat([shared, F.relu(self.item_specific[domain](e_i))], dim=-1)

    def forward(self, e_u: torch.Tensor, e_i: torch.Tensor, domain: int) -> torch.Tensor:
        """e_u (B, in), e_i (B, C, in) -> ŷ (B, C)."""
        u = self.user_vectors(e_u, domain)[:, None, :]  # (B, 1, 2f)
        return (u * self.item_vectors(e_i, domain)).sum(-1)


class SerenCDRConfig(BaseModel):
    """SerenCDR hyper-parameters (MODELS.md 1.6; defaults REC where code and paper differ)."""

    model_config = ConfigDict(extra="forbid")

    input_dim: int = Field(128, ge=1)  # e_u, e_i size for svd/bpr embeddings
    latent_dim: int = Field(64, ge=1)  # l_u = l_i = f
    embedding: Literal["svd", "bpr", "features"] = "svd"
    aux_item: Literal["raw", "fused"] = "raw"  # CODE: raw e_i in the aux term; needs in = 2f
    use_aux: bool = True
    use_shared: bool = True
    use_alignment: bool = True
    aux_weight: float = Field(1.0, ge=0)
    l2: float = Field(1e-3, ge=0)  # PAPER L2 1e-3 (as Adam weight decay)
    dropout: float = Field(0.2, ge=0, lt=1)  # PAPER 0.2 on the inputs (absent in CODE)
    lr: float = Field(1e-3, gt=0)  # PAPER 1e-4 over 100 epochs; 1e-3 converges in fewer
    epochs: int = Field(40, ge=1)  # PAPER: converges in ~40
    batch_size: int = Field(32, ge=1)  # target users per step
    source_batch_ratio: int = Field(5, ge=1)  # source batch = 5 x target batch
    pairs_per_user: int = Field(50, ge=1)  # (serendipitous, non-serendipitous) pairs
    # Share of the BPR negatives drawn from the domain's items at random (mostly items the user
    # never rated) instead of their consumed non-serendipitous items (MODELS.md 1.5 uses only
    # the latter). An addition, not in the paper: rankings over unrated candidates need it.
    unrated_negatives: float = Field(0.0, ge=0.0, le=1.0)
    aux_per_user: int = Field(50, ge=1)  # relevant / expected items per user
    expected_frac: float = Field(0.3, gt=0, le=0.5)
    mu: float = Field(1.0, gt=0)  # Dirichlet smoothing of expectedness
    # A learned per-item bias b_i added to ŷ (an addition, not in the paper): how likely an
    # item is to be serendipitous to anyone, which the dot product alone expresses poorly.
    item_bias: bool = False


class SerenCDRScorer(Scorer):
    """SerenCDR behind the scorer contract; scores items of the target and the source domain."""

    name: ClassVar[str] = "serencdr"

    def __init__(self, config: SerenCDRConfig | None = None) -> None:
        self.config = config or SerenCDRConfig()
        self.net: SerenCDRNet | None = None
        self.device = torch.device("cpu")
        self.user_emb: torch.Tensor | None = None  # (2, U, in) per local domain
        self.item_emb: torch.Tensor | None = None  # (I, in), items of other domains zero
        self.local_domain: np.ndarray | None = None  # (n_domains,) 0/1 or -1
        self.item_domain: np.ndarray | None = None  # (I,)

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
        source = pick_source_domain(data.item_domain, data.target_domain, data.ratings)
        domains = (source, data.target_domain)
        n_dom = int(data.item_domain.max()) + 1
        self.local_domain = np.full(n_dom, -1, dtype=np.int64)
        self.local_domain[list(domains)] = [0, 1]
        self.item_domain = np.asarray(data.item_domain, dtype=np.int64)
        need_pools = cfg.use_aux and cfg.aux_weight > 0
        samples = [domain_samples(data, d, cfg.mu, cfg.expected_frac, need_pools) for d in domains]
        if len(samples[1].users) == 0:
            raise ValueError(
                "no target user has both serendipitous (data.serendipitous) and other items"
            )
        user_emb, item_emb = self._embed(data, domains, seed)
        in_dim = user_emb.shape[-1]
        if cfg.use_aux and cfg.aux_item == "raw" and in_dim != 2 * cfg.latent_dim:
            raise ValueError(f"aux_item='raw' needs input size 2*latent_dim, not {in_dim}")
        self.user_emb = torch.as_tensor(user_emb, dtype=torch.float32, device=self.device)
        self.item_emb = torch.as_tensor(item_emb, dtype=torch.float32, device=self.device)
        n_bias = data.n_items if cfg.item_bias else 0
        self.net = build_module(
            lambda: SerenCDRNet(in_dim, cfg.latent_dim, cfg.use_shared, cfg.use_alignment, n_bias),
            lambda m, g: m.reset_parameters(g),
            derive_seed(seed, 22),
            self.device,
        )
        log = self._train(samples, seed, progress)
        log["seconds"] = time.perf_counter() - t0
        return log

    def _embed(
        self, data: InteractionData, domains: tuple[int, int], seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        ratings = sp.csr_matrix(data.ratings, dtype=np.float64)
        users: list[np.ndarray] = []
        item_emb = np.zeros((0, 0))
        for local, d in enumerate(domains):
            items = data.domain_items(d)
            feats = None if data.item_features is None else data.item_features[items]
            u, it = domain_embeddings(
                ratings[:, items], cfg.input_dim, cfg.embedding, derive_seed(seed, 23, local), feats
            )
            if local == 0:
                item_emb = np.zeros((data.n_items, it.shape[1]))  # other domains stay zero
            item_emb[items] = it
            users.append(u)
        return np.stack(users), item_emb

    def _train(
        self, samples: list[DomainSamples], seed: int, progress: ProgressFn | None
    ) -> dict[str, float]:
        cfg, net = self.config, self.net
        assert net is not None and self.user_emb is not None and self.item_emb is not None
        rng = numpy_rng(seed, 24)
        gen = make_generator(derive_seed(seed, 25), self.device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.l2)
        sizes = (cfg.batch_size * cfg.source_batch_ratio, cfg.batch_size)
        main_v = aux_v = float("nan")
        net.train()
        for epoch in range(cfg.epochs):
            # An epoch is one pass over the target users; the source loader cycles (the
            # reference zips both and stops at the shorter, which wastes target users here).
            orders = [rng.permutation(s.users) for s in samples]
            n_steps = -(-len(orders[1]) // sizes[1])
            sums = np.zeros(2)
            for step in range(n_steps):
                main = aux = torch.zeros((), device=self.device)
                for local, s in enumerate(samples):
                    if len(orders[local]) == 0:
                        continue
                    idx = np.arange(step * sizes[local], (step + 1) * sizes[local])
                    rows = np.unique(idx % len(orders[local]))
                    m, a = self._losses(local, s, orders[local][rows], rng, gen)
                    main, aux = main + m, aux + a
                loss = main + cfg.aux_weight * aux if cfg.use_aux else main
                opt.zero_grad()
                loss.backward()
                opt.step()
                sums += [float(main.detach()), float(aux.detach())]
            main_v, aux_v = sums / max(n_steps, 1)
            if progress is not None:
                progress(epoch + 1, cfg.epochs)
        net.eval()
        return {"main_loss": float(main_v), "aux_loss": float(aux_v), "epochs": float(cfg.epochs)}

    def _losses(
        self,
        local: int,
        s: DomainSamples,
        users: np.ndarray,
        rng: np.random.Generator,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """BPR main loss (PAPER eq.14-16) and bounded aux loss (REC of eq.17-19) of a batch."""
        cfg, net = self.config, self.net
        assert net is not None and self.user_emb is not None and self.item_emb is not None

        e_u = self.user_emb[local][torch.as_tensor(users, device=self.device)]
        u = net.user_vectors(dropout(e_u, cfg.dropout, gen, True), local)  # (B, 2f)
        # The domain's whole item table goes through the tower once per step, and every user
        # is scored against all of it by one matmul; the sampled slots are then gathered
        # from the (B, I_d) scores (far cheaper backward than gathering (B, n, 2f) vectors).
        raw = self.item_emb[torch.as_tensor(s.items, device=self.device)]  # (I_d, in)
        fused = net.item_vectors(dropout(raw, cfg.dropout, gen, True), local)  # (I_d, 2f)
        scores = u @ fused.T  # (B, I_d)
        if cfg.item_bias:
            scores = scores + net.item_bias[torch.as_tensor(s.items, device=self.device)]

        def pick(table: torch.Tensor, local_items: np.ndarray) -> torch.Tensor:
            return table.gather(1, torch.as_tensor(local_items, device=self.device))  # (B, n)

        pos = sample_row_items(s.seren, users, cfg.pairs_per_user, rng)
        n_random = round(cfg.unrated_negatives * cfg.pairs_per_user)
        neg = sample_row_items(s.other, users, cfg.pairs_per_user - n_random, rng)
        if n_random:
            random_items = rng.integers(0, len(s.items), (len(users), n_random))
            neg = np.concatenate([neg, random_items], axis=1)
        main = bpr_loss(pick(scores, pos), pick(scores, neg))
        if not cfg.use_aux or s.pools is None:
            return main, torch.zeros((), device=self.device)
        rows = np.searchsorted(s.users, users)
        aux_scores = scores if cfg.aux_item == "fused" else u @ raw.T  # (B, I_d)
        rel = pick(aux_scores, sample_row_items(s.history, users, cfg.aux_per_user, rng))
        exp = pick(aux_scores, s.pools.sample(cfg.aux_per_user, rng, "expected", rows))
        return main, bounded_aux_loss(rel, exp)

    @torch.no_grad()
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.net is None or self.user_emb is None or self.item_emb is None:
            raise RuntimeError("fit or load the scorer first")
        assert self.local_domain is not None and self.item_domain is not None
        uniq, inverse = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
        dom_of = self.local_domain[self.item_domain[uniq]]
        if np.any(dom_of < 0):
            raise ValueError("SerenCDR scores only items of its target and source domains")
        u_ids = torch.tensor(np.asarray(users, dtype=np.int64), device=self.device)
        # Each distinct item goes through its tower once; scores are (B, unique) matmuls
        # gathered back, so scoring a whole catalogue costs B x I x 2f, not B x I x tower.
        out = torch.zeros((len(u_ids), len(uniq)), device=self.device)
        for local in (0, 1):
            cols = np.flatnonzero(dom_of == local)
            if len(cols) == 0:
                continue
            e_i = self.item_emb[torch.tensor(uniq[cols], device=self.device)]  # (n, in)
            i_vec = self.net.item_vectors(e_i, local)  # (n, 2f)
            u_vec = self.net.user_vectors(self.user_emb[local][u_ids], local)  # (B, 2f)
            block = u_vec @ i_vec.T
            if self.config.item_bias:
                block = block + self.net.item_bias[torch.tensor(uniq[cols], device=self.device)]
            out[:, torch.tensor(cols, device=self.device)] = block
        inv = torch.tensor(inverse.reshape(np.shape(items)), device=self.device)
        out = torch.gather(out, 1, inv)  # (B, C)
        return out.double().cpu().numpy()

    def save(self, path: Path) -> None:
        if self.net is None or self.user_emb is None or self.item_emb is None:
            raise RuntimeError("fit the scorer first")
        assert self.local_domain is not None and self.item_domain is not None
        tensors = {
            **module_tensors("net", self.net),
            "user_emb": self.user_emb,
            "item_emb": self.item_emb,
            "local_domain": torch.from_numpy(self.local_domain),
            "item_domain": torch.from_numpy(self.item_domain),
        }
        save_checkpoint(path, Checkpoint(self.name, self.config.model_dump_json(), tensors))

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> SerenCDRScorer:
        ckpt = load_checkpoint(path, cls.name)
        cfg = SerenCDRConfig.model_validate_json(ckpt.config_json)
        out = cls(cfg)
        out.device = resolve_device(device)
        t = ckpt.tensors
        in_dim = int(t["user_emb"].shape[-1])
        t = {"net.item_bias": torch.zeros(0), **t}  # checkpoints from before item_bias
        n_bias = int(t["net.item_bias"].shape[0])
        net = empty_module(
            lambda: SerenCDRNet(in_dim, cfg.latent_dim, cfg.use_shared, cfg.use_alignment, n_bias)
        )
        load_module_tensors("net", net, t)
        out.net = net.to(out.device).eval()
        out.user_emb, out.item_emb = t["user_emb"].to(out.device), t["item_emb"].to(out.device)
        out.local_domain = t["local_domain"].numpy()
        out.item_domain = t["item_domain"].numpy()
        return out
