"""The PURS network (MODELS.md 3.2-3.3, 3.6): config, module and initialisation.

The module knows tensors only; ``models/purs.py`` builds the training windows, trains it
and maps users and items to rows. Shapes: B users, C candidates, W history window, S short
window, H hidden width (item and user embeddings have H/2 each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from models.purs_unexp import (
    cluster_centres,
    cluster_labels,
    mean_shift,
    unexpected_activation,
    unexpectedness,
)
from models.torch_utils import dropout


class PURSConfig(BaseModel):
    """Settings of PURS (MODELS.md 3.2-3.4; CODE values by default)."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(128, ge=2, description="GRU width; item and user embeddings get half")
    window: int = Field(10, ge=1, description="long history window W_L")
    short_window: int = Field(3, ge=1, description="short window W_S of the DIN unit")
    attention_size: int = Field(10, ge=1)
    min_history: int = Field(10, ge=1, description="history items a training target needs")
    bandwidth: float = Field(0.2, gt=0.0, description="mean-shift window radius r")
    shift_tol: float = Field(1e-5, gt=0.0)
    shift_max_iter: int = Field(50, ge=1)
    merge_radius: float = Field(0.1, gt=0.0, description="modes closer than this are one cluster")
    unexpectedness: Literal["paper", "code"] = Field("paper", description="eq.3 or code variant")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1.0, gt=0.0)
    clip_norm: float = Field(1.0, gt=0.0)
    auc_tolerance: float = Field(1e-3, ge=0.0, description="halve lr when train AUC moves less")
    score_pairs: int = Field(32_768, ge=1, description="(user, candidate) pairs per block")


class Affine(nn.Module):
    """γ x + β per feature: TF batch norm frozen in inference mode (MODELS.md 3.6, REC)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features))
        self.bias = nn.Parameter(torch.empty(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


@dataclass
class UserState:
    """Candidate-independent part of PURS for a batch of users (computed once per user)."""

    user_vec: torch.Tensor  # (B, H/2) E_U(u)
    pref: torch.Tensor  # (B, H) attention-pooled GRU output p
    keys: torch.Tensor  # (B, S, H) short-window keys k_j
    key_mask: torch.Tensor  # (B, S) bool
    centres: torch.Tensor  # (B, K, H/2) cluster centres, detached
    weights: torch.Tensor  # (B, K) N_k / N per centre entry


class PURSNet(nn.Module):
    """The PURS network (MODELS.md 3.2-3.3); item row ``n_items`` is the padding item."""

    def __init__(self, n_users: int, n_items: int, cfg: PURSConfig) -> None:
        super().__init__()
        h, half = cfg.hidden, cfg.hidden // 2
        self.cfg = cfg
        self.pad = n_items
        self.item_emb = nn.Embedding(n_items + 1, half, padding_idx=n_items)
        self.user_emb = nn.Embedding(n_users, half)
        self.item_bias = nn.Embedding(n_items + 1, 1, padding_idx=n_items)
        self.user_bias = nn.Embedding(n_users, 1)
        self.gru = nn.GRU(2 * half, h, batch_first=True)
        self.att_w = nn.Linear(h, cfg.attention_size)
        self.att_u = nn.Linear(cfg.attention_size, 1, bias=False)
        self.ctr_affine = Affine(h + 2 * half)
        self.ctr = nn.Sequential(
            nn.Linear(h + 2 * half, 80),
            nn.Sigmoid(),
            nn.Linear(80, 40),
            nn.Sigmoid(),
            nn.Linear(40, 1),
        )
        self.din1 = nn.Linear(4 * 2 * half, 32)
        self.din2 = nn.Linear(32, 16)
        self.din3 = nn.Linear(16, 1)
        self.factor_affine = Affine(2 * half)
        self.factor = nn.Sequential(nn.Linear(2 * half, h), nn.Linear(h, 1))

    def user_state(
        self, users: torch.Tensor, hist: torch.Tensor, gen: torch.Generator | None = None
    ) -> UserState:
        """Candidate-independent state: GRU + attention pooling p, DIN keys, mean-shift centres.

        MODELS.md 3.3. users (B,), hist (B, W) item ids (padding = ``n_items``, most recent
        last). Padding is masked out of the attention, the DIN softmax and the clusters.
        """
        cfg = self.cfg
        mask = hist != self.pad  # (B, W)
        items = self.item_emb(hist)  # (B, W, H/2)
        user_vec = self.user_emb(users)  # (B, H/2)
        steps = torch.cat([items, user_vec[:, None].expand_as(items)], dim=-1)  # (B, W, H)
        out, _ = self.gru(steps)  # (B, W, H)
        att = self.att_u(torch.tanh(self.att_w(out))).squeeze(-1).masked_fill(~mask, -1e9)
        pref = (torch.softmax(att, dim=-1)[..., None] * out).sum(dim=1)  # (B, H)
        pref = dropout(pref, cfg.dropout, gen, self.training)
        with torch.no_grad():  # unexpectedness is under stop-gradient (CODE)
            x = items.detach()
            modes = mean_shift(x, mask, cfg.bandwidth, cfg.shift_tol, cfg.shift_max_iter)
            n = mask.sum(dim=1, keepdim=True).clamp_min(1)
            if cfg.unexpectedness == "paper":
                labels = cluster_labels(modes, mask, cfg.merge_radius)
                centres, weights = cluster_centres(modes, labels, mask), mask / n
            else:
                centres = ((modes * mask[..., None]).sum(dim=1) / n)[:, None]
                weights = torch.ones_like(centres[..., 0])
        s = cfg.short_window
        return UserState(user_vec, pref, steps[:, -s:], mask[:, -s:], centres, weights.float())

    def din_activation(self, keys: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """DIN unit σ(MLP([k; k - q; q; k ⊙ q])) (MODELS.md 3.3): keys (B, S, H), queries
        (B, C, H) -> (B, C, S).

        The first layer is split by input block, W [k; k-q; q; k⊙q] = (W_k + W_d) k +
        (W_q - W_d) q + W_p (k ⊙ q), so the (B, C, S, 4H) concatenation is never built.
        """
        n, c, h = query.shape
        s = keys.shape[1]
        w_k, w_d, w_q, w_p = self.din1.weight.split(h, dim=1)  # (32, H) each
        per_key = keys @ (w_k + w_d).T  # (B, S, 32)
        per_query = query @ (w_q - w_d).T  # (B, C, 32)
        scaled = (keys[:, :, None, :] * w_p).flatten(1, 2)  # (B, S*32, H)
        product = (query @ scaled.transpose(1, 2)).view(n, c, s, -1)  # (B, C, S, 32)
        pre = per_key[:, None] + per_query[:, :, None] + product + self.din1.bias
        return torch.sigmoid(self.din3(F.relu(self.din2(F.relu(pre))))).squeeze(-1)

    def ctr_score(self, state: UserState, item_vec: torch.Tensor) -> torch.Tensor:
        """CTR branch r = MLP(affine([p; q])) (MODELS.md 3.3) for item vectors (B, C, H/2).

        The affine and the first layer act per feature, so the user part (p and E_U(u)) is
        computed once per user and only the item slice per candidate; exact, no (B, C, 2H).
        """
        first, h, half = self.ctr[0], state.pref.shape[-1], item_vec.shape[-1]
        slot = torch.zeros_like(state.user_vec)  # the item slot gets only its shift β here
        per_user = first(self.ctr_affine(torch.cat([state.pref, slot, state.user_vec], dim=-1)))
        scale = self.ctr_affine.weight[h : h + half]
        per_item = (item_vec * scale) @ first.weight[:, h : h + half].T  # (B, C, 80)
        return self.ctr[1:](per_user[:, None] + per_item).squeeze(-1)

    def logits(
        self, state: UserState, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z = b_i + b_u + r + factor · f(unexp) (MODELS.md 3.3 CODE; PAPER eq.4) and raw unexp.

        items (B, C) -> (B, C) each; f(unexp) carries no gradient (stop-gradient, CODE).
        """
        item_vec = self.item_emb(items)  # (B, C, H/2)
        query = torch.cat([item_vec, state.user_vec[:, None].expand_as(item_vec)], dim=-1)
        g = self.din_activation(state.keys, query) / math.sqrt(query.shape[-1])
        w = torch.softmax(g.masked_fill(~state.key_mask[:, None], -1e9), dim=-1)  # (B, C, S)
        # The factor head (affine, two linear layers) is affine and Σ_j w_j = 1, so it maps
        # each key once and the weights mix the results: head(Σ w_j k_j) = Σ w_j head(k_j).
        per_key = self.factor(self.factor_affine(state.keys))  # (B, S, 1)
        factor = (w @ per_key).squeeze(-1)  # (B, C)
        unexp = unexpectedness(item_vec.detach(), state.centres, state.weights)
        bias = self.item_bias(items).squeeze(-1) + self.user_bias(users)
        return bias + self.ctr_score(state, item_vec) + factor * unexpected_activation(unexp), unexp


def init_purs_(net: nn.Module, gen: torch.Generator) -> None:
    """CODE initialisation (MODELS.md 3.2, 3.6): Glorot embeddings and dense kernels, zero
    biases, N(0, 0.1²) attention, TF-inference batch norm scale 1/sqrt(1 + 1e-3); PyTorch's
    GRU default.
    """
    assert isinstance(net, PURSNet)
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight, generator=gen)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, Affine):
            nn.init.constant_(module.weight, 1.0 / math.sqrt(1.0 + 1e-3))
            nn.init.zeros_(module.bias)
    for emb in (net.item_emb, net.user_emb):
        nn.init.xavier_uniform_(emb.weight, generator=gen)
    for bias in (net.item_bias, net.user_bias):
        nn.init.zeros_(bias.weight)
    with torch.no_grad():
        net.item_emb.weight[net.pad].zero_()
    bound = 1.0 / math.sqrt(net.gru.hidden_size)
    for p in net.gru.parameters():
        nn.init.uniform_(p, -bound, bound, generator=gen)
    for p in (net.att_w.weight, net.att_w.bias, net.att_u.weight):
        nn.init.normal_(p, 0.0, 0.1, generator=gen)
