"""Hand-computed cases for models/trust_state.py (FORMULAS.md §4-5, RECONSTRUCTED forms)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.trust import TrustConfig, trust_value
from models.trust_state import TrustState


def tv(x1: float, x2: float, x3: float) -> float:
    return float(trust_value(x1, x2, x3, 1e-3, 1e-3))


def test_observe_inserts_updates_and_keeps_reputation_in_step() -> None:
    state = TrustState(3, TrustConfig(reputation="structural"))
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
    state = TrustState(3, TrustConfig(reputation_norm="all_users", reputation="structural"))
    tau = state.observe(np.array([0, 2]), np.array([1, 1]), [1.0, 0.5], [1.0, 0.5])
    np.testing.assert_allclose(state.reputation, [0.0, tau.sum() / 2, 0.0])


def test_feedback_compounds_in_order_by_hand() -> None:
    cfg = TrustConfig(reward_k1=0.3, reward_k2=0.3, rho_neg=0.2, reputation="structural")
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
    cfg = TrustConfig(
        reward_k1=0.3, reward_k2=0.3, rho_neg=0.2, penalty="proportional", reputation="structural"
    )
    state = TrustState(3, cfg)
    t01 = state.observe(np.array([0]), np.array([1]), [0.5], [0.5])[0]
    _, after = state.feedback(np.array([0, 0]), np.array([1, 1]), np.array([True, False]))
    d01 = 0.075 + 0.3 * t01
    np.testing.assert_allclose(after, [t01 + d01, 0.8 * (t01 + d01)])


def test_repeated_dislikes_drive_trust_and_reputation_down() -> None:
    state = TrustState(4, TrustConfig(rho_neg=0.2, penalty="proportional", reputation="structural"))
    start = state.observe(np.array([0, 1]), np.array([3, 3]), [0.9, 0.9], [0.9, 0.9])
    rep0 = state.reputation[3]
    before, after = state.feedback(np.zeros(20, int), np.full(20, 3), np.zeros(20, bool))
    assert np.all(np.diff(after) < 0)
    assert after[-1] == pytest.approx(start[0] * 0.8**20)
    assert state.reputation[3] < rep0
    np.testing.assert_allclose(before[1:], after[:-1])


def test_symmetric_dislikes_reach_zero_and_stay_there() -> None:
    state = TrustState(4, TrustConfig(rho_neg=0.2, reputation="structural"))
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
@given(
    ops=ops,
    norm=st.sampled_from(["all_users", "known_pairs"]),
    kind=st.sampled_from(["earned", "experienced", "structural"]),
)
def test_trust_and_reputation_stay_in_unit_interval(ops: list, norm: str, kind: str) -> None:
    cfg = TrustConfig(reputation_norm=norm, reputation=kind, reward_k1=1.0, reward_k2=1.0)
    state = TrustState(6, cfg)
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


def _two_pairs_one_like_two_dislikes(reputation: str, prior: float = 1.0) -> TrustState:
    """Pairs (0,2) and (1,2) at t = tv(0.5, 0.5, 0); 0 likes 2 once, 1 dislikes 2 twice."""
    cfg = TrustConfig(
        reward_k1=0.3,
        reward_k2=0.0,
        rho_neg=0.2,
        reputation=reputation,  # type: ignore[arg-type]
        experience_prior=prior,
    )
    state = TrustState(3, cfg)
    state.observe(np.array([0, 1]), np.array([2, 2]), [0.5, 0.5], [0.5, 0.5])
    state.feedback(np.array([0, 1, 1]), np.array([2, 2, 2]), np.array([True, False, False]))
    return state


def test_reputation_kinds_after_feedback_by_hand() -> None:
    # Deposit Δ = 0.3·0.5·0.5 = 0.075 (reward_k2 = 0). τ02 = t + Δ after one like (n = 1);
    # τ12 = max(0, 0.8t - Δ) = 0 after the first dislike and stays 0 (n = 2).
    t = tv(0.5, 0.5, 0.0)
    structural = (t + 0.075 + 0.0) / 2  # known_pairs mean of §4
    s = _two_pairs_one_like_two_dislikes("structural")
    assert s.reputation[2] == pytest.approx(structural)
    # experienced, κ = 1: (1·S + 1·(t + Δ) + 2·0) / (1 + 3)
    e = _two_pairs_one_like_two_dislikes("experienced")
    assert e.reputation[2] == pytest.approx((structural + t + 0.075) / 4)
    # earned, κ = 1: the prior is 0, so only tested pairs count: (t + Δ) / 4
    r = _two_pairs_one_like_two_dislikes("earned")
    assert r.reputation[2] == pytest.approx((t + 0.075) / 4)
    # the sweep reads the reputation of the configured kind: τ ← 0.95τ + 0.05·τ_RA(ROU)
    tau_before = r.trust(np.array([0, 1]), np.array([2, 2]))
    rou = r.reputation[2]
    r.sweep()
    want = 0.95 * tau_before + 0.05 * tv(0.5, 0.5, rou)
    np.testing.assert_allclose(r.trust(np.array([0, 1]), np.array([2, 2])), want)
    # users nobody has given feedback on have earned nothing
    assert r.reputation[0] == 0.0 and r.reputation[1] == 0.0


def test_earned_reputation_separates_the_untested_from_the_liked() -> None:
    # Same structural evidence for trustees 2 and 3; only 2's recommendations were liked.
    cfg = TrustConfig(reputation="earned", reward_k2=0.0)
    state = TrustState(4, cfg)
    state.observe(np.array([0, 1, 0, 1]), np.array([2, 2, 3, 3]), [0.6] * 4, [0.4] * 4)
    assert state.reputation[2] == state.reputation[3] == 0.0
    state.feedback(np.array([0, 1]), np.array([2, 2]), np.array([True, True]))
    for _ in range(5):
        state.sweep()
    tau = state.trust(np.array([0, 1, 0, 1]), np.array([2, 2, 3, 3]))
    assert state.reputation[2] > 0.0 == state.reputation[3]
    assert tau[0] > tau[2] and tau[1] > tau[3]
    # and the untested pair stays negligible: its τ_RA reads ROU = 0 every sweep
    assert tau[2] == pytest.approx(tv(0.6, 0.4, 0.0))


def test_feedback_counts_survive_a_state_round_trip() -> None:
    cfg = TrustConfig(reputation="experienced", experience_prior=1.0)
    state = _two_pairs_one_like_two_dislikes("experienced")
    saved = state.state_dict()
    np.testing.assert_array_equal(saved["events"], [1.0, 2.0])
    copy = TrustState.from_state_dict(saved, cfg)
    assert copy.reputation[2] == pytest.approx(state.reputation[2])
    # a snapshot from before feedback counts were kept reads as no feedback: ROU = S_y
    old = {k: v for k, v in saved.items() if k != "events"}
    legacy = TrustState.from_state_dict(old, cfg)
    assert legacy.reputation[2] == pytest.approx(saved["tau"].mean())
