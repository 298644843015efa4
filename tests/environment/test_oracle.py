"""The oracle: a biased two-part factor model fitted to ratings as the world's ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from environment.datasets.common import DenseRatings
from environment.oracle import OracleConfig, bias_baseline, fit_oracle

FAST = OracleConfig(shared_dim=3, specific_dim=2, epochs=120, lr=0.05, l2=0.05)


def planted(
    seed: int = 0, n_users: int = 160, n_items: int = 140, density: float = 0.35, noise: float = 0.3
) -> tuple[DenseRatings, np.ndarray]:
    """Ratings drawn from a known low-rank world with two domains; returns (data, true utility)."""
    rng = np.random.default_rng(seed)
    item_domain = (np.arange(n_items) >= n_items // 2).astype(np.int64)
    p = rng.normal(0, 0.8, (n_users, 3))
    q = rng.normal(0, 0.8, (n_items, 3))
    p_d = rng.normal(0, 0.6, (n_users, 2, 2))
    s = rng.normal(0, 0.6, (n_items, 2))
    b_u, b_i = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    util = 3.0 + b_u[:, None] + b_i[None, :] + p @ q.T
    util += np.einsum("ukd,id->uki", p_d, s)[:, item_domain, np.arange(n_items)]
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    ratings = np.clip(util[users, items] + rng.normal(0, noise, len(users)), 1.0, 5.0)
    data = DenseRatings(
        name="planted",
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        ratings=ratings,
        timestamps=np.full(len(users), np.nan),
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
        item_domain=item_domain,
        item_labels=[str(i) for i in range(n_items)],
        domain_names=["a", "b"],
        target_domain=1,
        scale=(1.0, 5.0),
        rating_step=1.0,
    )
    return data, np.clip(util, 1.0, 5.0)


def test_bias_baseline_matches_hand_computation() -> None:
    users = np.array([0, 0, 1])
    items = np.array([0, 1, 0])
    ratings = np.array([4.0, 2.0, 3.0])
    mu, b_u, b_i = bias_baseline(users, items, ratings, 2, 2, shrink=0.0, sweeps=1)
    # mu = 3; b_i = mean residual per item; then b_u = mean residual after b_i per user.
    assert mu == 3.0
    np.testing.assert_allclose(b_i, [0.5, -1.0])
    np.testing.assert_allclose(b_u, [0.25, -0.5])
    _, _, shrunk = bias_baseline(users, items, ratings, 2, 2, shrink=2.0, sweeps=1)
    np.testing.assert_allclose(shrunk, [1.0 / 4.0, -1.0 / 3.0])  # sum / (n + shrink)


def test_oracle_recovers_planted_structure_better_than_biases() -> None:
    data, util = planted()
    truth, rep = fit_oracle(data, FAST, np.random.default_rng(1))
    assert rep.n_holdout == round(0.1 * len(data.ratings))
    assert rep.rmse < rep.rmse_bias - 0.1 < rep.rmse_global_mean - 0.1
    # On pairs nobody rated, the truth tracks the planted utility far better than biases do.
    unseen = np.ones_like(util, dtype=bool)
    unseen[data.users, data.items] = False
    fitted = truth.utility(np.arange(truth.n_users))
    mu, b_u, b_i = bias_baseline(
        data.users, data.items, data.ratings, truth.n_users, truth.n_items, 5.0
    )
    bias_only = np.clip(mu + b_u[:, None] + b_i[None, :], 1.0, 5.0)
    corr_truth = np.corrcoef(fitted[unseen], util[unseen])[0, 1]
    corr_bias = np.corrcoef(bias_only[unseen], util[unseen])[0, 1]
    assert corr_truth > 0.85 and corr_truth > corr_bias + 0.2


def test_oracle_shapes_and_unrated_domains() -> None:
    data, _ = planted(n_users=40, n_items=30, density=0.5)
    only_a = data.item_domain[data.items] == 0
    # User 0 rates only domain a: no evidence of a domain-b taste of their own.
    keep = (data.users != 0) | only_a
    data.users, data.items, data.ratings, data.timestamps = (
        data.users[keep],
        data.items[keep],
        data.ratings[keep],
        data.timestamps[keep],
    )
    truth, _ = fit_oracle(data, FAST, np.random.default_rng(0))
    assert truth.user_shared.shape == (40, 3) and truth.item_shared.shape == (30, 3)
    assert truth.user_specific.shape == (40, 2, 2) and truth.item_specific.shape == (30, 2)
    assert np.all(truth.user_specific[0, 1] == 0.0) and np.any(truth.user_specific[0, 0] != 0.0)
    assert truth.scale == (1.0, 5.0) and np.array_equal(truth.item_domain, data.item_domain)
    u = truth.utility(np.arange(40))
    assert u.min() >= 1.0 and u.max() <= 5.0


def test_oracle_is_deterministic_and_seed_overrides_rng() -> None:
    data, _ = planted(n_users=30, n_items=25)
    cfg = OracleConfig(shared_dim=2, specific_dim=1, epochs=20)
    a, rep_a = fit_oracle(data, cfg, np.random.default_rng(5))
    b, rep_b = fit_oracle(data, cfg, np.random.default_rng(5))
    assert np.array_equal(a.user_shared, b.user_shared) and rep_a.rmse == rep_b.rmse
    c, _ = fit_oracle(data, cfg, np.random.default_rng(6))
    assert not np.array_equal(a.user_shared, c.user_shared)
    pinned = cfg.model_copy(update={"seed": 11})
    d, _ = fit_oracle(data, pinned, np.random.default_rng(5))
    e, _ = fit_oracle(data, pinned, np.random.default_rng(6))
    assert np.array_equal(d.item_shared, e.item_shared)


def test_without_holdout_the_report_says_so() -> None:
    data, _ = planted(n_users=30, n_items=25)
    _, rep = fit_oracle(data, OracleConfig(holdout=0.0, epochs=10), np.random.default_rng(0))
    assert rep.n_holdout == 0 and math.isnan(rep.rmse) and rep.n_train == len(data.ratings)
    assert "no held-out ratings" in rep.line()


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="less than 1"):
        OracleConfig(holdout=1.0)
    with pytest.raises(ValueError, match="extra"):
        OracleConfig(rank=3)
