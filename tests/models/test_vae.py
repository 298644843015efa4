"""Tests for models/vae.py: losses, the asymmetric link, the cold-start map, the modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.evaluation import CandidateLists, rank_metrics, score_candidates, split_cold_start
from models.torch_utils import build_module
from models.vae import (
    CrossDomainVAEConfig,
    CrossDomainVAENet,
    CrossDomainVAEScorer,
    kl_divergence,
    mmd2_unbiased,
    reconstruction_loss,
)
from tests.models.conftest import SyntheticWorld

SMALL = {"hidden_dim": 32, "latent_dim": 8, "batch_size": 32}


def test_reconstruction_loss_by_hand() -> None:
    logits, x = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    bce = np.log(2.0) + np.log1p(np.exp(2.0))  # −ln σ(0) − ln(1 − σ(2))
    observed = np.log(2.0)  # β term touches item 0 only
    got = float(reconstruction_loss(logits, x, beta=90.0)[0])
    assert got == pytest.approx(bce + 90.0 * observed)


def test_kl_divergence_by_hand() -> None:
    assert float(kl_divergence(torch.zeros(1, 3), torch.zeros(1, 3))[0]) == 0.0
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, np.log(2.0)]])
    by_hand = 0.5 * (1.0 + 0.0) + 0.5 * (2.0 - np.log(2.0) - 1.0)
    assert float(kl_divergence(mu, logvar)[0]) == pytest.approx(by_hand)


def test_mmd_is_unbiased_near_zero_and_positive_for_a_shift() -> None:
    g = torch.Generator().manual_seed(0)
    same = [
        float(mmd2_unbiased(torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g)))
        for _ in range(30)
    ]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(30) + 1e-3  # mean zero: unbiased
    assert min(same) < 0 < max(same)  # an unbiased estimate can go below zero
    a, b = torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g) + 1.5
    shifted = float(mmd2_unbiased(a, b))
    assert shifted > 10 * max(abs(v) for v in same)
    assert float(mmd2_unbiased(b, a)) == pytest.approx(shifted, rel=1e-5)
    assert float(mmd2_unbiased(a[:1], b)) == 0.0  # too few samples for the estimator


def test_target_decoder_reads_both_latents_and_feeds_the_source_encoder() -> None:
    net = build_module(
        lambda: CrossDomainVAENet(7, 9, 16, 4),
        lambda m, g: m.reset_parameters(g),
        seed=0,
        device=torch.device("cpu"),
    )
    assert net.dec_t.body[0].in_features == 8  # [z_s ; z_t]
    out = net(torch.rand(3, 7), torch.rand(3, 9))
    assert out["logits_t"].shape == (3, 9) and out["logits_s"].shape == (3, 7)
    out["logits_t"].sum().backward()  # target reconstruction only
    assert net.enc_s.mu.weight.grad is not None and net.enc_s.mu.weight.grad.abs().sum() > 0
    assert net.dec_s.out.weight.grad is None  # the source decoder is not on that path


def test_mu_at_evaluation_is_deterministic_and_sampling_is_seeded(
    synthetic_world: SyntheticWorld,
) -> None:
    data = synthetic_world.data
    users, items = np.arange(5), np.tile(data.domain_items(1)[:6], (5, 1))
    mu_scorer = CrossDomainVAEScorer(CrossDomainVAEConfig(**SMALL, epochs=1))
    mu_scorer.fit(data, seed=0, device="cpu")
    np.testing.assert_array_equal(mu_scorer.score(users, items), mu_scorer.score(users, items))
    sampled = CrossDomainVAEScorer(CrossDomainVAEConfig(**SMALL, epochs=1, eval_sample=True))
    sampled.fit(data, seed=0, device="cpu")
    np.testing.assert_array_equal(sampled.score(users, items), sampled.score(users, items))
    assert not np.allclose(sampled.score(users, items), mu_scorer.score(users, items))


def test_catalogues_of_the_three_modes(synthetic_world: SyntheticWorld) -> None:
    data = synthetic_world.data
    source_item = data.domain_items(0)[:1][None, :]
    for mode, scores_source in (("cross", True), ("merged", True), ("single", False)):
        scorer = CrossDomainVAEScorer(CrossDomainVAEConfig(**SMALL, epochs=1, mode=mode))
        scorer.fit(data, seed=0, device="cpu")
        if scores_source:
            assert np.isfinite(scorer.score(np.array([0]), source_item)).all()
        else:
            with pytest.raises(ValueError, match="catalogue"):
                scorer.score(np.array([0]), source_item)


def test_cold_start_users_are_decoded_from_the_mapped_source_latent(
    synthetic_world: SyntheticWorld,
) -> None:
    data = synthetic_world.data
    split = split_cold_start(data, seed=0, fraction=0.25)
    train = split.train_data(data)
    scorer = CrossDomainVAEScorer(CrossDomainVAEConfig(**SMALL, epochs=2, cold_start=True))
    log = scorer.fit(train, seed=0, device="cpu")
    assert log["mapping"] >= 0.0
    net = scorer.net
    assert isinstance(net, CrossDomainVAENet)
    u = split.users[:3]
    target = data.domain_items(1)
    x_s = torch.as_tensor(scorer.inputs[u][:, data.domain_items(0)].toarray())
    with torch.no_grad():
        mu_s, _ = net.enc_s(x_s)
        by_hand = net.dec_t(torch.cat([mu_s, net.mapping(mu_s)], dim=-1))
    got = scorer.score(u, np.tile(target, (3, 1)))
    np.testing.assert_allclose(got, by_hand.double().numpy(), rtol=1e-5, atol=1e-5)


def test_cross_domain_vae_beats_single_domain_for_cold_start_users(
    synthetic_world: SyntheticWorld,
) -> None:
    data = synthetic_world.data
    split = split_cold_start(data, seed=0, fraction=0.3)
    cands = CandidateLists.sample(data, split, seed=0)
    train = split.train_data(data)
    hr = {}
    for mode in ("cross", "single"):
        config = CrossDomainVAEConfig(**SMALL, epochs=40, lr=3e-3, mode=mode)
        scorer = CrossDomainVAEScorer(config)
        scorer.fit(train, seed=0, device="cpu")
        hr[mode] = rank_metrics(score_candidates(scorer, cands))["HR@10"]
    # Single-domain: a cold user encodes an empty row, so everyone gets one ranking.
    assert hr["cross"] > 0.35 and hr["cross"] > hr["single"] + 0.2
