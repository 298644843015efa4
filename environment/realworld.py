"""Real worlds: a loaded data set, an oracle fitted as ground truth, and simulated traits.

``build_real_world`` turns a ``RatingsDataset`` into the ``WorldData`` every world builder
returns (ARCHITECTURE.md section 3): the oracle's ``LatentTruth`` stands in for the users'
unknown tastes, a share of the users become late arrivals whose target-domain history is cut
to a few ratings (the cold-start stream), and each user gets a curiosity and a comfort radius.
"""

from __future__ import annotations

import logging

import numpy as np

from environment.datasets.common import DenseRatings, RatingsDataset
from environment.datasets.config import RealWorldOptions
from environment.oracle import fit_oracle
from environment.truth import LatentTruth
from environment.unexpected import EMPTY_HISTORY_DISTANCE
from environment.world_data import RatingLog, WorldData

log = logging.getLogger(__name__)

_SIMS_BUDGET = 4_000_000  # entries of one (target items x history ratings) block


def pick_cold_start(
    data: DenseRatings, options: RealWorldOptions, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Choose the late arrivals and the target ratings they lose.

    Eligible users have a source-domain rating (in a single-domain world: everyone), so a
    newcomer brings history the recommender can borrow from. Each keeps between
    ``cold_start_keep`` low and high of their target ratings, the earliest ones when the data
    have timestamps (random ones otherwise). Arrival steps are drawn uniformly in
    ``arrival_steps`` and handed out in the order the users first rated anything, so users who
    joined the real site later also arrive later.

    Returns:
        cold (U,) bool, arrival_step (U,) int, hidden (R,) bool over the ratings, and a note.
    """
    n_users = data.n_users
    in_target = data.item_domain[data.items] == data.target_domain  # (R,)
    if data.n_domains > 1:
        eligible = np.flatnonzero(np.bincount(data.users[~in_target], minlength=n_users) > 0)
    else:
        eligible = np.arange(n_users)
    wanted = round(options.cold_start_share * n_users)
    n_cold = min(wanted, len(eligible))
    chosen = np.sort(rng.choice(eligible, size=n_cold, replace=False))
    cold = np.zeros(n_users, dtype=bool)
    cold[chosen] = True

    lo, hi = options.cold_start_keep
    keep_n = np.zeros(n_users, dtype=np.int64)
    keep_n[chosen] = rng.integers(lo, hi + 1, size=n_cold)
    # Rank each user's ratings: by time, ties (and unknown times) in random order.
    stamps = np.nan_to_num(data.timestamps, nan=np.inf)
    order = np.lexsort((rng.random(len(stamps)), stamps, ~in_target, data.users))
    sorted_users = data.users[order]
    group_start = np.searchsorted(sorted_users, sorted_users, side="left")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order)) - group_start  # target ratings come first per user
    hidden = cold[data.users] & in_target & (position >= keep_n[data.users])

    arrival = np.zeros(n_users, dtype=np.int64)
    a_lo, a_hi = options.arrival_steps
    steps = np.sort(rng.integers(a_lo, a_hi + 1, size=n_cold))
    first_seen = np.full(n_users, np.inf)
    np.minimum.at(first_seen, data.users, stamps)
    by_first = chosen[np.lexsort((rng.random(n_cold), first_seen[chosen]))]
    arrival[by_first] = steps

    note = (
        f"Cold start: {n_cold:,} of {n_users:,} users arrive during steps {a_lo}-{a_hi}, "
        f"keeping {lo}-{hi} target ratings ({int(hidden.sum()):,} target ratings hidden)."
    )
    if n_cold < wanted:
        note += (
            f" Only {len(eligible):,} users have source-domain ratings; {wanted:,} were asked for."
        )
    return cold, arrival, hidden, note


def comfort_radius(
    truth: LatentTruth, history: RatingLog, target: int, unexpected_share: float
) -> np.ndarray:
    """Per user, the distance beyond which a target item feels unexpected.

    The distance is ``environment/unexpected.py``'s: 1 - the best cosine to a history item in
    ``truth.item_vectors()`` space. The radius is the user's own (1 - unexpected_share)
    quantile of the target catalogue's distances to their history, so that about
    ``unexpected_share`` of it lies beyond. A user with no history yet gets the median radius.

    Users are taken in blocks whose histories together hold about ``_SIMS_BUDGET / C``
    ratings: one (C, R_block) similarity product and one segment max per block.
    """
    vectors = truth.item_vectors()
    targets = vectors[truth.item_domain == target]  # (C, D)
    radius = np.full(truth.n_users, EMPTY_HISTORY_DISTANCE)
    if len(targets) == 0 or len(history) == 0:
        return radius
    order = np.argsort(history.users, kind="stable")
    hist_users, hist_vectors = history.users[order], vectors[history.items[order]]  # (R,), (R, D)
    present, starts = np.unique(hist_users, return_index=True)
    ends = np.append(starts[1:], len(hist_users))
    cap = max(1, _SIMS_BUDGET // len(targets))
    first = 0
    while first < len(present):
        # At least one user per block, however long their history.
        last = max(first + 1, int(np.searchsorted(ends, starts[first] + cap, side="right")))
        lo, hi = starts[first], ends[last - 1]
        sims = targets @ hist_vectors[lo:hi].T  # (C, R_block)
        best = np.maximum.reduceat(sims, starts[first:last] - lo, axis=1)  # (C, B)
        radius[present[first:last]] = np.quantile(1.0 - best, 1.0 - unexpected_share, axis=0)
        first = last
    if len(present) < truth.n_users:
        has_history = np.zeros(truth.n_users, dtype=bool)
        has_history[present] = True
        radius[~has_history] = np.median(radius[has_history])
    return radius


def build_real_world(
    dataset: RatingsDataset, options: RealWorldOptions, rng: np.random.Generator
) -> WorldData:
    """Build a world from real ratings (ARCHITECTURE.md section 3, semi-synthetic).

    Fits the oracle, picks the cold-start users, draws curiosity ~ Beta(a, b) and the comfort
    radius, copies the trust edges, and records the load report and the oracle's fit in the
    notes. All users are honest (scenarios add attackers). Same ``rng`` state, same world.
    """
    data = dataset.to_dense_ids()
    oracle_rng, cold_rng, trait_rng = rng.spawn(3)
    truth, fit = fit_oracle(data, options.oracle, oracle_rng)
    cold, arrival, hidden, cold_note = pick_cold_start(data, options, cold_rng)

    keep = ~hidden
    stamps = data.timestamps[keep]
    history = RatingLog(
        users=data.users[keep],
        items=data.items[keep],
        ratings=data.ratings[keep],
        timestamps=None if np.isnan(stamps).all() else stamps,
    )
    a, b = options.traits.curiosity
    curiosity = trait_rng.beta(a, b, size=data.n_users)
    radius = comfort_radius(truth, history, data.target_domain, options.traits.unexpected_share)

    notes = [*dataset.report.lines(), fit.line(), cold_note]
    notes.append(
        f"Comfort radius: median {np.median(radius):.3f} (about {options.traits.unexpected_share:.0%} "
        "of the target catalogue lies beyond it for each user)."
    )
    if dataset.single_domain:
        notes.append("Single-domain world: the cross-domain parts have no source domain.")
    world = WorldData(
        name=dataset.name,
        domain_names=list(data.domain_names),
        target_domain=data.target_domain,
        item_domain=data.item_domain,
        item_labels=data.item_labels,
        history=history,
        arrival_step=arrival,
        cold_start=cold,
        user_kind=np.zeros(data.n_users, dtype=np.int64),
        curiosity=curiosity,
        comfort_radius=radius,
        truth=truth,
        scale=data.scale,
        rating_step=data.rating_step,
        like_threshold=options.like_threshold,
        trust_edges=data.trust_edges,
        notes=notes,
    )
    world.validate()
    for line in notes:
        log.info(line)
    return world
