"""Real worlds: a data set, its oracle, the cold-start stream and the users' traits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from environment.datasets.common import LoadReport, RatingsDataset
from environment.datasets.config import RealWorldOptions
from environment.oracle import OracleConfig
from environment.realworld import build_real_world
from environment.traits import TraitsConfig
from environment.unexpected import distance_to_history

OPTIONS = RealWorldOptions(
    cold_start_share=0.25,
    cold_start_keep=(1, 2),
    arrival_steps=(3, 7),
    traits=TraitsConfig(curiosity=(2.0, 5.0), unexpected_share=0.3),
    like_threshold=3.5,
    oracle=OracleConfig(shared_dim=3, specific_dim=2, epochs=30),
)


def dataset(
    n_users: int = 40, n_items: int = 36, domains: int = 2, seed: int = 0
) -> RatingsDataset:
    """Random ratings on ids u0.., items 100.. (every user rates in every domain)."""
    rng = np.random.default_rng(seed)
    names = ["books", "films"][:domains] if domains > 1 else ["all"]
    item_dom = np.arange(n_items) % len(names)
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.4)
    ratings = pd.DataFrame(
        {
            "user": [f"u{u:02d}" for u in users],
            "item": items + 100,
            "rating": rng.integers(1, 6, len(users)).astype(float),
            "timestamp": rng.permutation(len(users)).astype(float) * 10.0,
            "domain": [names[d] for d in item_dom[items]],
        }
    )
    trust = pd.DataFrame(
        {"truster": ["u00", "u01", "u02"], "trustee": ["u01", "u02", "u00"], "value": 1.0}
    )
    report = LoadReport(source="fake.csv", rows_read=len(ratings), rows_kept=len(ratings))
    return RatingsDataset(
        name="fake",
        ratings=ratings,
        domain_names=names,
        target_domain=names[-1],
        item_labels={i + 100: f"item {i}" for i in range(n_items)},
        scale=(1.0, 5.0),
        rating_step=1.0,
        trust=trust,
        report=report,
    )


def test_same_rng_same_world_and_fields_agree() -> None:
    ds = dataset()
    a = build_real_world(ds, OPTIONS, np.random.default_rng(3))
    b = build_real_world(ds, OPTIONS, np.random.default_rng(3))
    c = build_real_world(ds, OPTIONS, np.random.default_rng(4))
    for field in ("arrival_step", "cold_start", "curiosity", "comfort_radius", "item_domain"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert np.array_equal(a.history.items, b.history.items)
    assert np.array_equal(a.truth.user_shared, b.truth.user_shared)
    assert not np.array_equal(a.curiosity, c.curiosity)
    a.validate()
    assert (a.n_users, a.n_items, a.n_domains) == (40, 36, 2)
    assert a.domain_names == ["books", "films"] and a.target_domain == 1
    assert a.item_labels[0] == "item 0" and a.truth.n_items == 36
    assert a.like_threshold == 3.5 and a.rating_step == 1.0 and a.scale == (1.0, 5.0)
    assert np.all(a.user_kind == 0)
    assert np.all((a.curiosity > 0) & (a.curiosity < 1))
    assert a.trust_edges.tolist() == [[0, 1], [1, 2], [2, 0]]
    assert a.notes[0].startswith("fake.csv: read") and any(n.startswith("Oracle:") for n in a.notes)
    assert a.history.timestamps is not None


def test_cold_start_users_arrive_late_with_their_earliest_target_ratings() -> None:
    ds = dataset()
    world = build_real_world(ds, OPTIONS, np.random.default_rng(0))
    dense = ds.to_dense_ids()
    cold = world.cold_start
    assert cold.sum() == round(0.25 * 40)
    assert np.all(world.arrival_step[~cold] == 0)
    assert np.all((world.arrival_step[cold] >= 3) & (world.arrival_step[cold] <= 7))
    first_seen = pd.Series(dense.timestamps).groupby(dense.users).min().to_numpy()
    order = np.argsort(first_seen[cold], kind="stable")
    assert np.all(np.diff(world.arrival_step[cold][order]) >= 0)  # earlier joiners arrive earlier

    hist_target = world.item_domain[world.history.items] == world.target_domain
    all_target = dense.item_domain[dense.items] == dense.target_domain
    for u in np.flatnonzero(cold):
        kept = world.history.timestamps[(world.history.users == u) & hist_target]
        had = np.sort(dense.timestamps[(dense.users == u) & all_target])
        assert min(1, len(had)) <= len(kept) <= 2
        np.testing.assert_array_equal(np.sort(kept), had[: len(kept)])
        # Source history arrives whole.
        src = (dense.users == u) & ~all_target
        assert ((world.history.users == u) & ~hist_target).sum() == src.sum()
    warm = ~cold[dense.users]
    assert (~cold[world.history.users]).sum() == warm.sum()


def test_comfort_radius_leaves_the_chosen_share_unexpected() -> None:
    world = build_real_world(dataset(n_users=30, n_items=60), OPTIONS, np.random.default_rng(1))
    targets = world.domain_items(world.target_domain)
    dist = distance_to_history(
        world.truth.item_vectors(), world.history.users, world.history.items, np.arange(30), targets
    )
    beyond = (dist > world.comfort_radius[:, None]).mean(axis=1)
    assert np.all(np.abs(beyond - 0.3) <= 1.0 / len(targets) + 1e-9)
    assert np.all((world.comfort_radius >= 0) & (world.comfort_radius <= 2))


def test_single_domain_world_and_users_without_history() -> None:
    ds = dataset(domains=1)
    opts = OPTIONS.model_copy(update={"cold_start_keep": (0, 0), "cold_start_share": 0.5})
    world = build_real_world(ds, opts, np.random.default_rng(2))
    assert world.n_domains == 1 and world.target_domain == 0
    assert any("Single-domain" in n for n in world.notes)
    cold = np.flatnonzero(world.cold_start)
    assert len(cold) == 20
    assert not np.isin(world.history.users, cold).any()  # kept 0 target ratings, no source
    warm_radius = world.comfort_radius[~world.cold_start]
    np.testing.assert_allclose(world.comfort_radius[cold], np.median(warm_radius))


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_cold_start_share_extremes(share: float) -> None:
    opts = OPTIONS.model_copy(update={"cold_start_share": share})
    world = build_real_world(dataset(n_users=20, n_items=20), opts, np.random.default_rng(0))
    assert world.cold_start.sum() == round(share * 20)
    assert (world.arrival_step > 0).sum() == world.cold_start.sum()
