"""SerenDiff's denoiser and noise schedule: the compact conditional U-Net, DDPM and DDIM.

MODELS.md 2.3 (PAPER eq.1-4, 9-10, implemented as standard DDPM, Ho et al. 2020) and 2.8
(the small CPU-trainable design). Time indices are 0-based: ``t = 0`` is the paper's t = 1.
The module knows tensors only; the scorer in ``models/serendiff.py`` owns data and devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.torch_utils import dropout

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]  # (x_t, t) -> predicted noise


def linear_alpha_bar(
    timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """ᾱ_t = Π_{s<=t} (1 - β_s) for a linear β schedule (MODELS.md 2.3, 2.8) -> (T,) float64."""
    betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def q_sample(x0: torch.Tensor, noise: torch.Tensor, alpha_bar_t: torch.Tensor) -> torch.Tensor:
    """Forward process x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε (MODELS.md 2.3, PAPER eq.1-2).

    Args:
        x0, noise: (N, C, G, G).
        alpha_bar_t: (N,) ᾱ at each sample's time step.
    """
    ab = alpha_bar_t.to(x0.dtype).view(-1, 1, 1, 1)
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` time indices spread evenly over 0..T-1, noisiest first (MODELS.md 2.8 DDIM)."""
    n = max(1, min(steps, timesteps))
    grid = torch.linspace(0, timesteps - 1, n, dtype=torch.float64).round().long()
    return sorted(set(grid.tolist()), reverse=True)


def ddim_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    alpha_bar_t: float,
    alpha_bar_prev: float,
    clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One deterministic DDIM update, η = 0 (Song et al. 2021; MODELS.md 2.8).

    x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t);  x_prev = sqrt(ᾱ_prev) x̂_0 + sqrt(1 - ᾱ_prev) ε.
    With ᾱ_prev = 1 (the last step) x_prev = x̂_0. With ``clip``, x̂_0 is clamped to
    [-clip, clip] and ε recomputed from it (DDPM's "clip denoised" to the data range, an
    addition to the paper: at large t an ε error e becomes an x̂_0 error e sqrt((1-ᾱ)/ᾱ),
    up to 160 e at t = T, which otherwise drives the deterministic chain off the data).

    Returns:
        (x_prev, x̂_0).
    """
    x0 = (x_t - math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = (x_t - math.sqrt(alpha_bar_t) * x0) / math.sqrt(1.0 - alpha_bar_t)
    return math.sqrt(alpha_bar_prev) * x0 + math.sqrt(1.0 - alpha_bar_prev) * eps, x0


def ddim_sample(
    eps_fn: EpsFn,
    x_start: torch.Tensor,
    alpha_bar: torch.Tensor,
    steps: int,
    clip: float | None = None,
) -> torch.Tensor:
    """Run the DDIM chain from x_T (pure noise) to x̂_0 (MODELS.md 2.3 inference, 2.8 respaced).

    Args:
        eps_fn: the conditioned denoiser, called as ``eps_fn(x_t, t)``.
        x_start: (N, C, G, G) x_T ~ N(0, I).
        alpha_bar: (T,) cumulative products from :func:`linear_alpha_bar`.
        steps: number of DDIM steps (50 by default in the config).
        clip: clamp x̂_0 to [-clip, clip] at every step (see :func:`ddim_step`).
    """
    ts = ddim_timesteps(int(alpha_bar.shape[0]), steps)
    x = x_start
    for k, t in enumerate(ts):
        prev = float(alpha_bar[ts[k + 1]]) if k + 1 < len(ts) else 1.0
        x, _ = ddim_step(x, eps_fn(x, t), float(alpha_bar[t]), prev, clip)
    return x


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (N,) time indices -> (N, dim) (MODELS.md 2.8, DDPM style)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GN-SiLU-Conv, + time bias, GN-SiLU-dropout-Conv, residual (MODELS.md 2.8)."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int, p_drop: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.p_drop = p_drop

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, gen: torch.Generator | None
    ) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = dropout(F.silu(self.norm2(h)), self.p_drop, gen, self.training)
        return self.skip(x) + self.conv2(h)


class SelfAttention2d(nn.Module):
    """One-head self-attention over the cells of a feature map (optional, MODELS.md 2.8)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)  # (N, C, HW) each
        att = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (N, HW, HW)
        return x + self.proj((v @ att.transpose(1, 2)).reshape(n, c, h, w))


class SerenDiffUNet(nn.Module):
    """Compact conditional U-Net ε_θ(x_t, M^u, t) over a 10x10 grid (MODELS.md 2.8).

    stem Conv3x3 @10x10 -> ResBlock(w) [skip] -> Conv3x3 s2 (w->2w) @5x5 -> 2 x ResBlock(2w)
    (optional attention between them) -> ConvTranspose 2x2 s2 (2w->w) @10x10 -> concat skip
    -> ResBlock(2w->w) -> GN, SiLU, Conv1x1(w->x channels), zero-initialised by the scorer.
    The condition enters by channel concatenation (SR3-style, REC of 2.4); time through a
    sinusoidal embedding and an MLP, added as a bias in every residual block. No output
    activation: the net predicts signed Gaussian noise (the paper's final ReLU cannot).
    The conditioning path is RECONSTRUCTED (MODELS.md 2.4: the paper does not say).
    """

    def __init__(
        self,
        data_channels: int,
        cond_channels: int,
        width: int = 64,
        time_dim: int = 256,
        groups: int = 8,
        p_drop: float = 0.1,
        attention: bool = False,
    ) -> None:
        super().__init__()
        self.width = width
        self.time_mlp = nn.Sequential(
            nn.Linear(width, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.stem = nn.Conv2d(data_channels + cond_channels, width, 3, padding=1)
        self.enc = ResBlock(width, width, time_dim, groups, p_drop)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.mid1 = ResBlock(2 * width, 2 * width, time_dim, groups, p_drop)
        self.attn = SelfAttention2d(2 * width, groups) if attention else None
        self.mid2 = ResBlock(2 * width, 2 * width, time_dim, groups, p_drop)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec = ResBlock(2 * width, width, time_dim, groups, p_drop)
        self.out_norm = nn.GroupNorm(groups, width)
        self.out = nn.Conv2d(width, data_channels, 1)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x_t (N, Cx, 10, 10), t (N,) int, cond (N, Cc, 10, 10) -> ε̂ (N, Cx, 10, 10)."""
        temb = self.time_mlp(timestep_embedding(t, self.width))  # (N, time_dim)
        skip = self.enc(self.stem(torch.cat([x_t, cond], dim=1)), temb, gen)  # (N, w, 10, 10)
        h = self.mid1(self.down(skip), temb, gen)  # (N, 2w, 5, 5)
        if self.attn is not None:
            h = self.attn(h)
        h = self.up(self.mid2(h, temb, gen))  # (N, w, 10, 10)
        h = self.dec(torch.cat([h, skip], dim=1), temb, gen)
        return self.out(F.silu(self.out_norm(h)))


def init_unet_(net: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default conv/linear initialisation drawn from ``gen``; zero output conv.

    Kaiming-uniform (a = sqrt 5) weights, uniform(±1/sqrt(fan_in)) biases, unit norms; the
    zero output layer makes the untrained net predict ε̂ = 0 (MODELS.md 2.8).
    """
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=gen)
            fan_in = module.weight.shape[1] * module.weight[0][0].numel()
            if module.bias is not None:
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(module.bias, -bound, bound, generator=gen)
        elif isinstance(module, nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    out = getattr(net, "out", None)
    if isinstance(out, nn.Conv2d):
        nn.init.zeros_(out.weight)
        if out.bias is not None:
            nn.init.zeros_(out.bias)
