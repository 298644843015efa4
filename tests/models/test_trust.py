"""Hand-computed cases for models/trust.py (FORMULAS.md §4-5, RECONSTRUCTED forms)."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from models.trust import (
    TrustConfig,
    experienced_reputation,
    ra_fixed_point,
    reputation_dense,
    trust_value,
)

NAN = np.nan


def test_trust_value_forms_by_hand() -> None:
    # k1 = k2 = 0.5, x = (0.5, 0, 1.5): a = 1, b = 0.5, c = 2
    x1, x2, x3 = np.array([0.5]), np.array([0.0]), np.array([1.5])
    assert trust_value(x1, x2, x3, 0.5, 0.5) == pytest.approx(3 / (1 + 2 + 0.5))
    assert trust_value(x1, x2, x3, 0.5, 0.5, "product") == pytest.approx(1 / 1.5**3)
    assert trust_value(x1, x2, x3, 0.5, 0.5, "harmonic_no_reputation") == pytest.approx(2 / 3)
    # a = b = c = 1 -> 1; larger inputs are clipped to 1
    assert trust_value(0.5, 0.5, 0.5, 0.5, 0.5) == 1.0
    assert trust_value(1.0, 1.0, 1.0, 0.5, 0.5) == 1.0
    # default guards, no reputation yet: 3 / (2/1.001 + 1/0.001) ~ 3·k2, "negligible"
    assert trust_value(1.0, 1.0, 0.0, 1e-3, 1e-3) == pytest.approx(3 / (2 / 1.001 + 1000))
    with pytest.raises(ValueError):
        trust_value(1.0, 1.0, 1.0, 1e-3, 1e-3, "bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize("form", ["harmonic", "product", "harmonic_no_reputation"])
def test_trust_value_is_monotone_and_in_unit_interval(form: str) -> None:
    g = np.linspace(0.0, 1.0, 11)
    x1, x2, x3 = np.meshgrid(g, g, g, indexing="ij")
    tau = trust_value(x1, x2, x3, 1e-3, 1e-3, form)  # type: ignore[arg-type]
    assert np.all(tau > 0) and np.all(tau <= 1)
    for axis in range(3):
        assert np.all(np.diff(tau, axis=axis) >= -1e-15)
    if form != "harmonic_no_reputation":
        assert np.all(np.diff(tau, axis=2)[tau[:, :, 1:] < 1] > 0)  # strict below the clip


def test_reputation_dense_both_norms() -> None:
    tau = np.array([[1.0, 0.2, 0.4], [0.6, 1.0, 0.8], [NAN, 0.3, 1.0]])
    # all_users: col0 (0.6 + 0)/2, col1 (0.2 + 0.3)/2, col2 (0.4 + 0.8)/2 (diagonal ignored)
    np.testing.assert_allclose(reputation_dense(tau), [0.3, 0.25, 0.6])
    # known_pairs: col0 has one known truster
    np.testing.assert_allclose(reputation_dense(tau, "known_pairs"), [0.6, 0.25, 0.6])


# Three users, k1 = 0.25, k2 = 0.5, x2 = 0.75 off the diagonal (so x2 + k1 = 1).
# x1 (negative and NaN read as 0):  a = x1 + k1
#   (0,1) 0.75 -> 1     (0,2) 0.25 -> 0.5
#   (1,0) 0.75 -> 1     (1,2) -0.5 -> 0.25
#   (2,0) 0.25 -> 0.5   (2,1) NaN  -> 0.25
X1 = np.array([[0.0, 0.75, 0.25], [0.75, 0.0, -0.5], [0.25, NAN, 0.0]])
X2 = np.full((3, 3), 0.75)


def hand_sweep(rou: np.ndarray) -> np.ndarray:
    inv_a = {(0, 1): 1.0, (0, 2): 2.0, (1, 0): 1.0, (1, 2): 4.0, (2, 0): 2.0, (2, 1): 4.0}
    tau = np.eye(3)
    for (x, y), ia in inv_a.items():
        tau[x, y] = min(1.0, 3.0 / (ia + 1.0 + 1.0 / (rou[y] + 0.5)))
    return tau


def test_ra_fixed_point_matches_hand_iteration() -> None:
    # k = 1 (ROU^0 = 0, 1/c = 2): τ01 = 3/4, τ02 = 3/5, τ10 = 3/4, τ12 = 3/7, τ20 = 3/5, τ21 = 3/7
    tau1, rou1, it1 = ra_fixed_point(X1, X2, 0.25, 0.5, max_iter=1)
    want1 = np.array([[1, 0.75, 0.6], [0.75, 1, 3 / 7], [0.6, 3 / 7, 1]])
    np.testing.assert_allclose(tau1, want1)
    np.testing.assert_allclose(rou1, [(0.75 + 0.6) / 2, (0.75 + 3 / 7) / 2, (0.6 + 3 / 7) / 2])
    assert it1 == 1
    tau2, rou2, _ = ra_fixed_point(X1, X2, 0.25, 0.5, max_iter=2)
    np.testing.assert_allclose(tau2, hand_sweep(rou1))
    np.testing.assert_allclose(rou2, reputation_dense(hand_sweep(rou1)))
    assert np.all(rou2 >= rou1)


def test_ra_fixed_point_converges_monotonically() -> None:
    rng = np.random.default_rng(3)
    x1 = rng.uniform(-0.2, 1.0, (12, 12))
    x2 = rng.uniform(0.0, 1.0, (12, 12))
    tau, rou, iters = ra_fixed_point(x1, x2, 1e-3, 1e-3)
    assert iters < 50
    previous = np.zeros(12)
    for k in range(1, iters + 1):
        _, r_k, _ = ra_fixed_point(x1, x2, 1e-3, 1e-3, max_iter=k, tol=0.0)
        assert np.all(r_k >= previous - 1e-15)  # monotone from ROU^0 = 0
        previous = r_k
    np.testing.assert_allclose(previous, rou)
    # a fixed point: one more sweep barely moves τ
    again = trust_value(np.clip(x1, 0, 1), x2, rou[None, :], 1e-3, 1e-3)
    np.fill_diagonal(again, 1.0)
    assert np.max(np.abs(again - tau)) < 1e-3
    assert np.all(np.diag(tau) == 1) and np.all((tau > 0) & (tau <= 1))


def test_config_validation() -> None:
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(k1=0.0)
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(rho=1.5)
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(reward_k2=-0.1)
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(theta=2.0)
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(experience_prior=0.0)
    with pytest.raises(pydantic.ValidationError):
        TrustConfig(credit="everyone")  # type: ignore[arg-type]
    # the defaults that drive the attackers out (scenarios/shilling.yaml)
    cfg = TrustConfig()
    assert (cfg.reputation, cfg.credit, cfg.experience_prior) == ("earned", "vouchers", 5.0)


def test_experienced_reputation_by_hand() -> None:
    # κ = 2. y0: no feedback -> S_0 = 0.2. y1: n = (2, 1, 0), τ = (0.6, 0.1, 0.4):
    # (2·0.5 + 2·0.6 + 1·0.1) / (2 + 3) = 2.3 / 5. y2 has no pairs: S_2 = 0.
    got = experienced_reputation(
        np.array([0.2, 0.5, 0.0]),
        np.array([1, 1, 1, 0]),
        np.array([0.6, 0.1, 0.4, 0.3]),
        np.array([2.0, 1.0, 0.0, 0.0]),
        prior=2.0,
    )
    np.testing.assert_allclose(got, [0.2, 0.46, 0.0])
