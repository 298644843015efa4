"""The SerenDiff noise schedule, DDIM sampler and U-Net (MODELS.md 2.3, 2.8)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.serendiff_net import (
    SerenDiffUNet,
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    init_unet_,
    linear_alpha_bar,
    q_sample,
)
from models.torch_utils import build_module


def test_linear_schedule_endpoints_and_monotone() -> None:
    ab = linear_alpha_bar(1000, 1e-4, 0.02)
    assert ab.shape == (1000,)
    assert float(ab[0]) == pytest.approx(1.0 - 1e-4, abs=1e-12)
    assert float(ab[1]) == pytest.approx((1 - 1e-4) * (1 - (1e-4 + 0.0199 / 999)), rel=1e-12)
    # Π (1 - β_t) for the standard DDPM schedule ≈ 4.036e-5
    assert float(ab[-1]) == pytest.approx(4.0358e-5, rel=1e-4)
    assert bool(torch.all(ab[1:] < ab[:-1]))


def test_q_sample_mixes_signal_and_noise() -> None:
    x0 = torch.ones(2, 1, 2, 2, dtype=torch.float64)
    eps = torch.full_like(x0, 2.0)
    xt = q_sample(x0, eps, torch.tensor([0.64, 0.36], dtype=torch.float64))
    np.testing.assert_allclose(xt[:, 0, 0, 0].numpy(), [0.8 + 0.6 * 2, 0.6 + 0.8 * 2])


def test_ddim_timesteps_span_the_schedule_noisiest_first() -> None:
    ts = ddim_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0
    assert all(a > b for a, b in itertools.pairwise(ts))
    assert ddim_timesteps(5, 50) == [4, 3, 2, 1, 0]


def test_ddim_step_with_the_true_noise_recovers_x0() -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 10, 10, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    ab = linear_alpha_bar(1000)
    xt = q_sample(x0, eps, ab[[700] * 3])
    x_prev, x0_hat = ddim_step(xt, eps, float(ab[700]), float(ab[300]))
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(x_prev, q_sample(x0, eps, ab[[300] * 3]), rtol=0, atol=1e-10)
    last, _ = ddim_step(xt, eps, float(ab[700]), 1.0)
    torch.testing.assert_close(last, x0, rtol=0, atol=1e-10)


def test_ddim_step_clipping_bounds_x0_and_keeps_the_step_consistent() -> None:
    x0 = torch.tensor([[[[3.0, -0.5]]]], dtype=torch.float64)
    eps = torch.tensor([[[[0.2, -1.0]]]], dtype=torch.float64)
    ab = linear_alpha_bar(1000)
    xt = q_sample(x0, eps, ab[[500]])
    x_prev, x0_hat = ddim_step(xt, eps, float(ab[500]), float(ab[200]), clip=2.0)
    torch.testing.assert_close(x0_hat, torch.tensor([[[[2.0, -0.5]]]], dtype=torch.float64))
    # ε is recomputed from the clipped x̂_0, so x_t = sqrt(ᾱ) x̂_0 + sqrt(1-ᾱ) ε still holds.
    eps_c = (xt - ab[500].sqrt() * x0_hat) / (1 - ab[500]).sqrt()
    torch.testing.assert_close(x_prev, ab[200].sqrt() * x0_hat + (1 - ab[200]).sqrt() * eps_c)
    assert float(eps_c[0, 0, 0, 1]) == pytest.approx(-1.0)  # unclipped entries keep ε


def test_ddim_chain_with_an_oracle_denoiser_reproduces_x0() -> None:
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 3, 10, 10, generator=gen, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    ab = linear_alpha_bar(1000)
    x_start = q_sample(x0, eps, ab[[999, 999]])
    out = ddim_sample(lambda x, t: eps, x_start, ab, steps=50)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-8)
    bound = float(x0.abs().max())  # a clip at the data range changes nothing for the oracle
    torch.testing.assert_close(ddim_sample(lambda x, t: eps, x_start, ab, 50, clip=bound), x0)


def test_unet_shapes_zero_output_and_size() -> None:
    net = build_module(
        lambda: SerenDiffUNet(65, 65), init_unet_, seed=0, device=torch.device("cpu")
    )
    n_params = sum(p.numel() for p in net.parameters())
    assert 1.0e6 < n_params < 1.3e6  # MODELS.md 2.8: ≈ 1.1 M
    x = torch.randn(2, 65, 10, 10)
    out = net(x, torch.tensor([0, 999]), torch.randn(2, 65, 10, 10))
    assert out.shape == (2, 65, 10, 10)
    assert float(out.detach().abs().max()) == 0.0  # zero-initialised output conv
    out.sum().backward()
    assert net.out.weight.grad is not None and float(net.out.weight.grad.abs().sum()) > 0


def test_unet_init_is_seeded_and_dropout_uses_the_generator() -> None:
    def make(seed: int) -> torch.nn.Module:
        return build_module(
            lambda: SerenDiffUNet(4, 5, width=16, time_dim=32, attention=True, p_drop=0.5),
            init_unet_,
            seed,
            torch.device("cpu"),
        )

    a, b, c = make(3), make(3), make(4)
    torch.testing.assert_close(a.stem.weight, b.stem.weight)
    assert not torch.equal(a.stem.weight, c.stem.weight)
    torch.nn.init.normal_(a.out.weight, generator=torch.Generator().manual_seed(0))
    x, t, cond = torch.randn(2, 4, 10, 10), torch.tensor([3, 7]), torch.randn(2, 5, 10, 10)
    a.train()
    y1 = a(x, t, cond, torch.Generator().manual_seed(9))
    y2 = a(x, t, cond, torch.Generator().manual_seed(9))
    y3 = a(x, t, cond, torch.Generator().manual_seed(10))
    torch.testing.assert_close(y1, y2)
    assert not torch.allclose(y1, y3)
    a.eval()
    torch.testing.assert_close(a(x, t, cond, torch.Generator()), a(x, t, cond))
