"""Hand-computed cases for models/trust.py (FORMULAS.md §4-5, RECONSTRUCTED forms)."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.trust import (
    TrustConfig,
    TrustState,
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


def tv(x1: float, x2: float, x3: float) -> float:
    return float(trust_value(x1, x2, x3, 1e-3, 1e-3))


def test_observe_inserts_updates_and_keeps_reputation_in_step() -> None:
    state = TrustState(3, TrustConfig())
    got = state.observe(np.array([0, 1, 2]), np.array([1, 2, 2]), [0.5, -0.3, 0.9], [0.25, 0.5, 1])
    # new pairs start at one R-A sweep with ROU = 0; x1 = max(0, -0.3) = 0; (2,2) is a self-pair
    np.testing.assert_allclose(got, [tv(0.5, 0.25, 0), tv(0.0, 0.5, 0), 1.0])
    assert state.n_pairs == 2
    np.testing.assert_allclose(state.reputation, [0.0, got[0], got[1]])  # known_pairs
    # a repeat keeps τ, takes the last x1/x2 of the call; trust() of unknown pairs is 0
    again = state.observe(np.array([0, 0]), np.array([1, 1]), [0.1, 0.8], [0.1, 0.6])
    np.testing.assert_allclose(again, [got[0], got[0]])
    np.testing.assert_array_equal(state.trust(np.array([1, 2, 1]), np.array([0, 0, 1])), [0, 0, 1])
    # the sweep now uses x1 = 0.8, x2 = 0.6 and ROU_1 = τ01
    state.sweep()
    rho = 0.05
    want = (1 - rho) * got[0] + rho * tv(0.8, 0.6, got[0])
    assert state.trust(np.array([0]), np.array([1]))[0] == pytest.approx(want)


def test_all_users_reputation_divides_by_n_minus_one() -> None:
    state = TrustState(3, TrustConfig(reputation_norm="all_users"))
    tau = state.observe(np.array([0, 2]), np.array([1, 1]), [1.0, 0.5], [1.0, 0.5])
    np.testing.assert_allclose(state.reputation, [0.0, tau.sum() / 2, 0.0])


def test_feedback_compounds_in_order_by_hand() -> None:
    cfg = TrustConfig(reward_k1=0.3, reward_k2=0.3, rho_neg=0.2)
    state = TrustState(3, cfg)
    t01 = state.observe(np.array([0]), np.array([1]), [0.5], [0.5])[0]
    x = np.array([0, 2, 0, 0, 1])
    y = np.array([1, 0, 1, 1, 1])
    liked = np.array([True, True, True, False, True])
    before, after = state.feedback(x, y, liked)
    # (2,0) is unknown: inserted at tv(0, 0, ROU_0 = 0) before any update. ROU snapshot
    # (known_pairs): ROU_1 = t01, ROU_0 = t20. Deposits: Δ01 = 0.3·0.5·0.5 + 0.3·t01,
    # Δ20 = 0 + 0.3·t20. Events on (0,1): +Δ, +Δ, ×0.8 in order; (1,1) is a self-pair.
    t20 = tv(0.0, 0.0, 0.0)
    d01, d20 = 0.075 + 0.3 * t01, 0.3 * t20
    a1 = t01 + d01
    a2 = a1 + d01
    np.testing.assert_allclose(before, [t01, t20, a1, a2, 1.0])
    # symmetric penalty (default): the dislike also takes away the deposit Δ01
    np.testing.assert_allclose(after, [a1, t20 + d20, a2, 0.8 * a2 - d01, 1.0])
    np.testing.assert_allclose(state.reputation, [t20 + d20, 0.8 * a2 - d01, 0.0])


def test_proportional_penalty_is_the_literal_decrement() -> None:
    cfg = TrustConfig(reward_k1=0.3, reward_k2=0.3, rho_neg=0.2, penalty="proportional")
    state = TrustState(3, cfg)
    t01 = state.observe(np.array([0]), np.array([1]), [0.5], [0.5])[0]
    _, after = state.feedback(np.array([0, 0]), np.array([1, 1]), np.array([True, False]))
    d01 = 0.075 + 0.3 * t01
    np.testing.assert_allclose(after, [t01 + d01, 0.8 * (t01 + d01)])


def test_repeated_dislikes_drive_trust_and_reputation_down() -> None:
    state = TrustState(4, TrustConfig(rho_neg=0.2, penalty="proportional"))
    start = state.observe(np.array([0, 1]), np.array([3, 3]), [0.9, 0.9], [0.9, 0.9])
    rep0 = state.reputation[3]
    before, after = state.feedback(np.zeros(20, int), np.full(20, 3), np.zeros(20, bool))
    assert np.all(np.diff(after) < 0)
    assert after[-1] == pytest.approx(start[0] * 0.8**20)
    assert state.reputation[3] < rep0
    np.testing.assert_allclose(before[1:], after[:-1])


def test_symmetric_dislikes_reach_zero_and_stay_there() -> None:
    state = TrustState(4, TrustConfig(rho_neg=0.2))
    start = state.observe(np.array([0, 1]), np.array([3, 3]), [0.9, 0.9], [0.9, 0.9])
    rep0 = state.reputation[3]
    deposit = 0.3 * 0.9 * 0.9 + 0.3 * rep0
    _, after = state.feedback(np.zeros(3, int), np.full(3, 3), np.zeros(3, bool))
    assert after[0] == pytest.approx(max(0.0, 0.8 * start[0] - deposit))
    assert np.all(np.diff(after) <= 0) and after[-1] == 0.0
    assert state.reputation[3] < rep0


def test_batch_feedback_equals_one_event_at_a_time_without_reputation_term() -> None:
    # With reward_k2 = 0 the ROU snapshot does not matter, so (all pairs known beforehand,
    # since a new pair's starting τ reads ROU) the grouped batch must equal applying the
    # events one call at a time.
    cfg = TrustConfig(reward_k2=0.0, reward_k1=0.4, rho_neg=0.3)
    rng = np.random.default_rng(11)
    x, y = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    liked = rng.random(40) < 0.6
    px, py = np.divmod(np.arange(16), 4)
    batch, single = TrustState(4, cfg), TrustState(4, cfg)
    for s in (batch, single):
        s.observe(px, py, np.linspace(0, 1, 16), np.ones(16))
    _, after = batch.feedback(x, y, liked)
    one_by_one = [
        single.feedback(x[i : i + 1], y[i : i + 1], liked[i : i + 1])[1][0] for i in range(40)
    ]
    np.testing.assert_allclose(after, one_by_one, atol=1e-15)
    np.testing.assert_allclose(batch.pairs()[2], single.pairs()[2], atol=1e-15)


def test_state_round_trip_is_exact() -> None:
    cfg = TrustConfig()
    state = TrustState(5, cfg)
    state.observe(
        np.array([0, 1, 4, 3]), np.array([1, 0, 2, 2]), [0.3, 0.6, 0.1, 0.9], [1, 0.5, 0.2, 0.7]
    )
    state.sweep()
    state.feedback(np.array([0, 3]), np.array([1, 4]), np.array([True, False]))
    copy = TrustState.from_state_dict(state.state_dict(), cfg)
    for key, value in state.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key], value)
    np.testing.assert_array_equal(copy.reputation, state.reputation)
    for s in (state, copy):
        s.sweep()
    np.testing.assert_array_equal(copy.pairs()[2], state.pairs()[2])
    bad = state.state_dict()
    bad["tau"] = bad["tau"][:-1]
    with pytest.raises(ValueError):
        TrustState.from_state_dict(bad, cfg)


ops = st.lists(
    st.tuples(
        st.sampled_from(["observe", "sweep", "feedback"]),
        st.lists(st.integers(0, 5), min_size=1, max_size=8),
        st.lists(st.integers(0, 5), min_size=1, max_size=8),
        st.lists(st.one_of(st.floats(-1, 1), st.just(float("nan"))), min_size=8, max_size=8),
        st.lists(st.floats(0, 1), min_size=8, max_size=8),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(ops=ops, norm=st.sampled_from(["all_users", "known_pairs"]))
def test_trust_and_reputation_stay_in_unit_interval(ops: list, norm: str) -> None:
    state = TrustState(6, TrustConfig(reputation_norm=norm, reward_k1=1.0, reward_k2=1.0))
    for kind, xs, ys, s1, s2 in ops:
        k = min(len(xs), len(ys))
        x, y = np.array(xs[:k]), np.array(ys[:k])
        if kind == "observe":
            state.observe(x, y, np.array(s1[:k]), np.array(s2[:k]))
        elif kind == "sweep":
            state.sweep()
        else:
            before, after = state.feedback(x, y, np.array(s2[:k]) > 0.5)
            assert np.all((before >= 0) & (before <= 1) & (after >= 0) & (after <= 1))
        tau = state.pairs()[2]
        assert np.all((tau >= 0) & (tau <= 1))
        rep = state.reputation
        assert np.all((rep >= 0) & (rep <= 1 + 1e-12))
