"""Synthetic worlds with a known ground truth (ARCHITECTURE.md section 3).

Domains share users. Each user has a taste with a part shared across domains and a part
specific to each domain; items have long-tail exposure (Zipf); the history a user brings was
drawn by exposure and taste together, so co-rated items are also close in taste space (which
is what makes co-occurrence unexpectedness meaningful). Newcomers (the cold-start stream)
arrive during the run with their source-domain history but at most a couple of target ratings.
Attackers (shilling profiles) rate a few poor target items at the top and copy the mean
ratings of popular items.
"""

from __future__ import annotations

import numpy as np

from environment.scenario import SyntheticWorldConfig
from environment.truth import LatentTruth
from environment.unexpected import distance_to_history
from environment.world_data import RatingLog, WorldData


def _gumbel_top_k(logits: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample k[u] items per row without replacement with probabilities softmax(logits[u]).

    Returns a boolean mask (U, C). The Gumbel-top-k trick keeps it one array operation.
    """
    keys = logits + rng.gumbel(size=logits.shape)
    order = np.argsort(-keys, axis=1)
    ranks = np.empty_like(order)
    rows = np.arange(logits.shape[0])[:, None]
    ranks[rows, order] = np.arange(logits.shape[1])[None, :]
    return ranks < k[:, None]


def round_rating(values: np.ndarray, scale: tuple[float, float], step: float) -> np.ndarray:
    lo, hi = scale
    return np.clip(np.round((values - lo) / step) * step + lo, lo, hi)


def make_truth(cfg: SyntheticWorldConfig, rng: np.random.Generator) -> LatentTruth:
    n_dom = len(cfg.domains)
    n_items = n_dom * cfg.items_per_domain
    item_domain = np.repeat(np.arange(n_dom), cfg.items_per_domain)
    ds, dd = cfg.shared_dim, cfg.specific_dim
    lo, hi = cfg.scale
    spread = (hi - lo) / 4.0  # one latent unit of utility, on the scenario's scale
    return LatentTruth(
        global_mean=lo + 0.55 * (hi - lo),
        user_bias=rng.normal(0.0, 0.25 * spread, cfg.users),
        item_bias=rng.normal(0.0, 0.3 * spread, n_items),
        user_shared=rng.normal(0.0, 1.0, (cfg.users, ds)),
        item_shared=rng.normal(0.0, np.sqrt(cfg.shared_weight / ds) * spread, (n_items, ds)),
        user_specific=rng.normal(0.0, 1.0, (cfg.users, n_dom, max(dd, 1)))
        * (1.0 if dd > 0 else 0.0),
        item_specific=rng.normal(
            0.0, np.sqrt(cfg.specific_weight / max(dd, 1)) * spread, (n_items, max(dd, 1))
        ),
        item_domain=item_domain,
        scale=cfg.scale,
    )


def _exposure(cfg: SyntheticWorldConfig, rng: np.random.Generator) -> np.ndarray:
    """Log exposure weight per item: Zipf over a random popularity order within each domain."""
    out = np.empty(len(cfg.domains) * cfg.items_per_domain)
    ranks = np.arange(1, cfg.items_per_domain + 1, dtype=float)
    for d in range(len(cfg.domains)):
        perm = rng.permutation(cfg.items_per_domain)
        out[d * cfg.items_per_domain + perm] = -cfg.popularity_exponent * np.log(ranks)
    return out


def _history(
    cfg: SyntheticWorldConfig,
    truth: LatentTruth,
    log_exposure: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Which items each user had rated before the run: (users, items) arrays."""
    users_out, items_out = [], []
    all_users = np.arange(cfg.users)
    for d in range(len(cfg.domains)):
        items = np.flatnonzero(truth.item_domain == d)
        util = truth.utility(all_users, items)  # (U, I_d)
        logits = log_exposure[items][None, :] + cfg.taste_exposure * (util - util.mean())
        k = np.minimum(rng.poisson(cfg.history_per_domain, cfg.users), len(items))
        mask = _gumbel_top_k(logits, k, rng)
        u, c = np.nonzero(mask)
        users_out.append(u)
        items_out.append(items[c])
    return np.concatenate(users_out), np.concatenate(items_out)


def _adversaries(
    cfg: SyntheticWorldConfig,
    truth: LatentTruth,
    hist_users: np.ndarray,
    hist_items: np.ndarray,
    hist_ratings: np.ndarray,
    target: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, RatingLog, np.ndarray]:
    """Pick attackers, replace their history with a push-and-filler profile."""
    n_att = round(cfg.adversaries.share * cfg.users)
    kinds = np.zeros(cfg.users, dtype=np.int64)
    if n_att == 0:
        return kinds, RatingLog(hist_users, hist_items, hist_ratings), np.zeros(0, np.int64)
    attackers = rng.choice(cfg.users, size=n_att, replace=False)
    kinds[attackers] = 1
    target_items = np.flatnonzero(truth.item_domain == target)
    # Pushed items are genuinely poor for most people: that is why pushing them is an attack.
    quality = truth.item_bias[target_items]
    worst = target_items[np.argsort(quality)[: max(cfg.adversaries.pushed_items * 4, 1)]]
    pushed = np.sort(
        rng.choice(worst, size=min(cfg.adversaries.pushed_items, len(worst)), replace=False)
    )
    keep = ~np.isin(hist_users, attackers)
    counts = np.bincount(hist_items[keep], minlength=truth.n_items)
    sums = np.bincount(hist_items[keep], weights=hist_ratings[keep], minlength=truth.n_items)
    popular = np.argsort(-counts[target_items])[: cfg.adversaries.filler_items]
    filler = target_items[popular]
    filler_mean = round_rating(sums[filler] / np.maximum(counts[filler], 1), cfg.scale, 1.0)
    top = cfg.scale[1]
    a_users = np.repeat(attackers, len(pushed) + len(filler))
    a_items = np.tile(np.concatenate([pushed, filler]), n_att)
    a_ratings = np.tile(np.concatenate([np.full(len(pushed), top), filler_mean]), n_att)
    log = RatingLog(
        np.concatenate([hist_users[keep], a_users]),
        np.concatenate([hist_items[keep], a_items]),
        np.concatenate([hist_ratings[keep], a_ratings]),
    )
    return kinds, log, pushed


def generate_world(
    cfg: SyntheticWorldConfig, rng: np.random.Generator, name: str = "synthetic"
) -> WorldData:
    """Draw a whole world from ``rng``: same config and generator state, same world."""
    target = cfg.domains.index(cfg.target)
    truth = make_truth(cfg, rng)
    log_exposure = _exposure(cfg, rng)
    hist_users, hist_items = _history(cfg, truth, log_exposure, rng)
    utility = truth.pair_utility(hist_users, hist_items)
    ratings = round_rating(
        utility + rng.normal(0.0, cfg.traits.noise_sd, len(utility)), cfg.scale, 1.0
    )

    # The cold-start stream: late arrivals keep only a few of their target ratings.
    n_cold = round(cfg.cold_start.share * cfg.users)
    cold_users = rng.choice(cfg.users, size=n_cold, replace=False)
    cold = np.zeros(cfg.users, dtype=bool)
    cold[cold_users] = True
    arrival = np.zeros(cfg.users, dtype=np.int64)
    a_lo, a_hi = cfg.cold_start.arrival_steps
    arrival[cold_users] = rng.integers(a_lo, a_hi + 1, size=n_cold)
    keep_n = np.zeros(cfg.users, dtype=np.int64)
    t_lo, t_hi = cfg.cold_start.target_ratings
    keep_n[cold_users] = rng.integers(t_lo, t_hi + 1, size=n_cold)
    in_target = truth.item_domain[hist_items] == target
    # Rank each cold user's target ratings randomly and keep the first keep_n of them.
    noise_rank = rng.random(len(hist_users))
    order = np.lexsort((noise_rank, hist_users))
    pos = np.empty(len(order), dtype=np.int64)
    tgt_sorted = in_target[order]
    cum = np.cumsum(tgt_sorted)
    first_of_user = np.searchsorted(hist_users[order], hist_users[order], side="left")
    before = np.where(first_of_user > 0, cum[first_of_user - 1], 0)
    pos[order] = cum - before - 1  # 0-based position among the user's target ratings
    drop = cold[hist_users] & in_target & (pos >= keep_n[hist_users])
    hist_users, hist_items, ratings = hist_users[~drop], hist_items[~drop], ratings[~drop]

    kinds, history, pushed = _adversaries(cfg, truth, hist_users, hist_items, ratings, target, rng)
    cold &= kinds == 0
    arrival[kinds == 1] = 0

    a, b = cfg.traits.curiosity
    curiosity = rng.beta(a, b, cfg.users)
    radius = comfort_radius(truth, history, target, cfg.traits.unexpected_share)
    labels = [f"{cfg.domains[d]}-{i}" for i, d in enumerate(truth.item_domain)]
    world = WorldData(
        name=name,
        domain_names=list(cfg.domains),
        target_domain=target,
        item_domain=truth.item_domain,
        item_labels=labels,
        history=history,
        arrival_step=arrival,
        cold_start=cold,
        user_kind=kinds,
        curiosity=curiosity,
        comfort_radius=radius,
        truth=truth,
        scale=cfg.scale,
        rating_step=1.0,
        like_threshold=cfg.like_threshold,
        pushed_items=pushed,
        notes=[
            f"synthetic world: {cfg.users} users ({n_cold} arrive cold, {int((kinds == 1).sum())} attackers), "
            f"{len(cfg.domains)} domains x {cfg.items_per_domain} items, {len(history)} initial ratings"
        ],
    )
    world.validate()
    return world


def comfort_radius(
    truth: LatentTruth, history: RatingLog, target: int, unexpected_share: float
) -> np.ndarray:
    """Per user, the distance beyond which a target item feels unexpected: the user's own
    (1 - unexpected_share) quantile of the target items' distances to their history."""
    users = np.arange(truth.n_users)
    target_items = np.flatnonzero(truth.item_domain == target)
    dist = distance_to_history(
        truth.item_vectors(), history.users, history.items, users, target_items
    )
    return np.quantile(dist, 1.0 - unexpected_share, axis=1)
