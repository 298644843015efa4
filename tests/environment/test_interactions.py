"""environment/interactions.py: the world's history as InteractionData, ground-truth labels."""

from __future__ import annotations

import numpy as np
import pytest

import environment.interactions as interactions
from environment.interactions import (
    distance_to_other_history,
    serendipity_labels,
    unrated_serendipitous,
    world_interactions,
)
from environment.scenario import SyntheticWorldConfig
from environment.synthetic import generate_world
from environment.truth import LatentTruth
from environment.unexpected import EMPTY_HISTORY_DISTANCE, item_distances
from environment.world_data import RatingLog, WorldData

# Items 0-1 are source (domain 0), 2-4 target (domain 1); unit taste vectors on two axes.
ITEM_VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
ITEM_DOMAIN = np.array([0, 0, 1, 1, 1])
# utility = 3 + <p_u, v_i>, clipped to [1, 5]; like threshold 4.
USER_TASTE = np.array([[1.0, 1.5], [-1.0, 0.0], [0.0, 0.0], [0.0, 2.0], [0.0, 2.0], [1.0, 1.5]])
RADIUS = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 1.5])
HISTORY = [  # (user, item, rating, timestamp)
    (0, 0, 4.0, 10.0),
    (0, 2, 4.0, 0.0),  # a timestamp of 0 must survive as a stored entry
    (0, 3, 5.0, 30.0),
    (1, 1, 3.0, 5.0),
    (1, 4, 4.0, 6.0),
    (2, 4, 3.0, 7.0),
    (3, 3, 5.0, 8.0),
    (4, 1, 5.0, 9.0),
    (4, 4, 3.0, 11.0),
    (5, 0, 4.0, 12.0),
    (5, 2, 4.0, 13.0),
    (5, 3, 5.0, 14.0),
]


def hand_world(history: list[tuple[int, int, float, float]] = HISTORY) -> WorldData:
    n_users, n_items = USER_TASTE.shape[0], ITEM_DOMAIN.shape[0]
    truth = LatentTruth(
        global_mean=3.0,
        user_bias=np.zeros(n_users),
        item_bias=np.zeros(n_items),
        user_shared=USER_TASTE,
        item_shared=ITEM_VECTORS,
        user_specific=np.zeros((n_users, 2, 1)),
        item_specific=np.zeros((n_items, 1)),
        item_domain=ITEM_DOMAIN,
        scale=(1.0, 5.0),
    )
    u, i, r, t = (np.array(col) for col in zip(*history, strict=True))
    return WorldData(
        name="hand",
        domain_names=["books", "movies"],
        target_domain=1,
        item_domain=ITEM_DOMAIN,
        item_labels=[f"i{k}" for k in range(n_items)],
        history=RatingLog(u.astype(np.int64), i.astype(np.int64), r, t),
        arrival_step=np.zeros(n_users, dtype=np.int64),
        cold_start=np.zeros(n_users, dtype=bool),
        user_kind=np.zeros(n_users, dtype=np.int64),
        curiosity=np.full(n_users, 0.5),
        comfort_radius=RADIUS,
        truth=truth,
        scale=(1.0, 5.0),
    )


def labelled_pairs(world: WorldData, domains: str) -> set[tuple[int, int]]:
    lab = serendipity_labels(world, domains)  # type: ignore[arg-type]
    h = world.history
    return set(zip(h.users[lab].tolist(), h.items[lab].tolist(), strict=True))


def test_target_labels_by_hand() -> None:
    # u0 item 3: 1 - cos to {0, 2} = 1 > 0.5, utility 4.5 -> serendipitous; item 2 sits on
    # item 0 (distance 0). u1 item 4: distance 1, utility 4. u2 item 4: utility 3, not liked.
    # u3 item 3: no other history (distance 2), utility 5. u4 item 4: utility 3.
    # u5 is u0 with a radius of 1.5: item 3 at distance 1 stays expected.
    assert labelled_pairs(hand_world(), "target") == {(0, 3), (1, 4), (3, 3)}


def test_all_domain_labels_add_the_source_side() -> None:
    # u4 item 1 (source): distance 1 to item 4, utility 5. u0 item 0 sits on item 2; u1
    # item 1 has utility 3.
    assert labelled_pairs(hand_world(), "all") == {(0, 3), (1, 4), (3, 3), (4, 1)}


def test_interactions_hold_the_whole_history() -> None:
    world = hand_world()
    data = world_interactions(world)
    assert data.ratings.shape == (6, 5) and data.ratings.nnz == len(HISTORY)
    for u, i, r, t in HISTORY:
        assert data.ratings[u, i] == r
        assert data.timestamps is not None and data.timestamps[u, i] == t
    assert data.timestamps.nnz == len(HISTORY)  # the 0.0 timestamp is stored
    assert data.target_domain == 1 and data.like_threshold == 4.0
    np.testing.assert_array_equal(data.item_domain, ITEM_DOMAIN)
    assert data.serendipitous is not None
    assert set(zip(*data.serendipitous.nonzero(), strict=True)) == {(0, 3), (1, 4), (3, 3)}
    assert data.item_features is None  # taste vectors are ground truth, never features


def test_repeated_rating_keeps_the_last() -> None:
    data = world_interactions(hand_world([*HISTORY, (2, 4, 5.0, 20.0)]))
    assert data.ratings.nnz == len(HISTORY)
    assert data.ratings[2, 4] == 5.0
    assert data.timestamps is not None and data.timestamps[2, 4] == 20.0


def test_no_timestamps_gives_none() -> None:
    world = hand_world()
    world.history.timestamps = None
    assert world_interactions(world).timestamps is None


def test_distances_match_brute_force_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = SyntheticWorldConfig(users=40, items_per_domain=30, history_per_domain=8)
    world = generate_world(cfg, np.random.default_rng(5))
    h, vectors = world.history, world.truth.item_vectors()
    rows = np.flatnonzero(world.item_domain[h.items] == world.target_domain)
    monkeypatch.setattr(interactions, "_SIMS_BUDGET", 30**2)  # ~30 ratings per block
    got = distance_to_other_history(vectors, h.users, h.items, rows)
    want = np.empty(len(rows))
    for k, r in enumerate(rows):  # brute force, a test oracle
        mine = np.flatnonzero(h.users == h.users[r])
        others = h.items[mine[mine != r]]
        want[k] = item_distances(vectors, others, h.items[r : r + 1])[0]
    np.testing.assert_allclose(got, want)
    lone = distance_to_other_history(vectors, np.array([0]), np.array([3]), np.array([0]))
    assert lone[0] == EMPTY_HISTORY_DISTANCE


def test_labels_on_a_generated_world_are_liked_target_ratings() -> None:
    cfg = SyntheticWorldConfig(users=60, items_per_domain=40, history_per_domain=10)
    world = generate_world(cfg, np.random.default_rng(1))
    data = world_interactions(world)
    seren = data.serendipitous
    assert seren is not None and seren.nnz > 0
    u, i = seren.nonzero()
    assert np.all(data.item_domain[i] == data.target_domain)
    assert np.all(np.asarray(data.ratings[u, i]).ravel() > 0)  # labels sit on history ratings
    utility = world.truth.pair_utility(u, i)
    assert np.all(utility >= world.like_threshold)


@pytest.mark.parametrize("budget", [4_000_000, 3])  # one block; one user per block
def test_unrated_serendipitous_by_hand(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    # User 0 (taste (1, 1.5), radius 0.5) rated items 1 and 3, both on axis y: unrated target
    # item 2 has utility 4 (liked) and distance 1 - cos(x, y) = 1 > 0.5, so serendipitous;
    # item 4 has utility 2. User 1 (taste (-1, 0)) has no history: item 4 (utility 4) lies
    # at the empty-history distance 2. User 3 (taste (0, 2)) rated source item 0 (axis x):
    # item 3 has utility 5 and distance 1. User 5 (radius 1.5) rated item 1: item 2 is liked
    # at distance 1 <= 1.5, item 3 at distance 0. User 4 would find item 3 serendipitous
    # but is not asked for, so its row stays empty.
    monkeypatch.setattr(interactions, "_SIMS_BUDGET", budget)
    world = hand_world(
        [(0, 1, 4.0, 0.0), (0, 3, 5.0, 1.0), (3, 0, 4.0, 2.0), (5, 1, 4.0, 3.0), (4, 0, 3.0, 4.0)]
    )
    mask = unrated_serendipitous(world, np.array([5, 0, 3, 1]))
    assert mask.shape == (6, 5)
    assert set(zip(*mask.nonzero(), strict=True)) == {(0, 2), (1, 4), (3, 3)}


def test_unrated_serendipitous_matches_brute_force_across_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = SyntheticWorldConfig(users=40, items_per_domain=30, history_per_domain=8)
    world = generate_world(cfg, np.random.default_rng(6))
    users = np.array([1, 4, 5, 17, 30, 39])  # not contiguous: other users' history between
    monkeypatch.setattr(interactions, "_SIMS_BUDGET", 30 * 12)  # about 12 ratings per block
    got = unrated_serendipitous(world, users).toarray()
    h, vectors = world.history, world.truth.item_vectors()
    pool = np.flatnonzero(world.item_domain == world.target_domain)
    want = np.zeros_like(got)
    for u in users:  # brute force, a test oracle
        mine = h.items[h.users == u]
        dist = item_distances(vectors, mine, pool)
        liked = world.truth.utility(np.array([u]), pool)[0] >= world.like_threshold
        hit = liked & (dist > world.comfort_radius[u]) & ~np.isin(pool, mine)
        want[u, pool[hit]] = True
    np.testing.assert_array_equal(got, want)
    assert got.sum() > 0
