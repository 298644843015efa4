from __future__ import annotations

import numpy as np

from environment.scenario import SyntheticWorldConfig
from environment.synthetic import generate_world, round_rating


def world(seed: int = 1, **kw):
    cfg = SyntheticWorldConfig(users=80, items_per_domain=50, history_per_domain=12, **kw)
    return generate_world(cfg, np.random.default_rng(seed))


def test_same_generator_state_same_world() -> None:
    a, b, c = world(1), world(1), world(2)
    for field in ("arrival_step", "cold_start", "curiosity", "comfort_radius"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert np.array_equal(a.history.items, b.history.items)
    assert not np.array_equal(a.history.items, c.history.items)


def test_cold_start_stream_brings_source_history_but_few_target_ratings() -> None:
    w = world(cold_start={"share": 0.25, "target_ratings": [0, 2], "arrival_steps": [2, 5]})
    cold = np.flatnonzero(w.cold_start)
    assert len(cold) == 20
    assert np.all((w.arrival_step[cold] >= 2) & (w.arrival_step[cold] <= 5))
    assert np.all(w.arrival_step[~w.cold_start] == 0)
    tgt = w.item_domain[w.history.items] == w.target_domain
    n_target = np.bincount(w.history.users[tgt], minlength=w.n_users)
    n_source = np.bincount(w.history.users[~tgt], minlength=w.n_users)
    assert n_target[cold].max() <= 2
    assert n_source[cold].min() > 0
    assert n_target[~w.cold_start].mean() > 8


def test_ratings_on_scale_and_tastes_drive_history() -> None:
    w = world()
    assert set(np.unique(w.history.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # What users had rated is better than a random item for them (taste-driven exposure).
    rated = w.truth.pair_utility(w.history.users, w.history.items).mean()
    overall = w.truth.utility(np.arange(w.n_users)).mean()
    assert rated > overall + 0.2


def test_about_the_configured_share_of_target_items_is_unexpected() -> None:
    from environment.unexpected import distance_to_history

    w = world(traits={"unexpected_share": 0.3})
    target = w.domain_items(w.target_domain)
    d = distance_to_history(
        w.truth.item_vectors(), w.history.users, w.history.items, np.arange(w.n_users), target
    )
    share = (d > w.comfort_radius[:, None]).mean()
    assert abs(share - 0.3) < 0.02


def test_attackers_push_poor_items_at_the_top() -> None:
    w = world(adversaries={"share": 0.1, "pushed_items": 3, "filler_items": 5})
    attackers = np.flatnonzero(w.user_kind == 1)
    assert len(attackers) == 8 and len(w.pushed_items) == 3
    assert not w.cold_start[attackers].any()
    pushed = np.isin(w.history.items, w.pushed_items) & np.isin(w.history.users, attackers)
    assert np.all(w.history.ratings[pushed] == 5.0)
    assert pushed.sum() == 8 * 3
    # the pushed items are genuinely below the median item quality of the target domain
    target = w.domain_items(w.target_domain)
    assert np.all(w.truth.item_bias[w.pushed_items] < np.median(w.truth.item_bias[target]))


def test_round_rating_steps() -> None:
    assert np.array_equal(
        round_rating(np.array([0.2, 2.26, 4.74, 9.0]), (0.5, 5.0), 0.5), [0.5, 2.5, 4.5, 5.0]
    )
