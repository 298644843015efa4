"""The data side of the offline experiment: which ratings are tested, and the training
matrices every recommender is fitted on (see ``environment/offline.py`` for the protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from environment.scenario import Scenario
from environment.world_data import RatingLog, WorldData
from models.cf import user_means
from models.components import cooccurrence


class EvaluationError(ValueError):
    """An offline evaluation the data cannot support; the message is one readable line."""


@dataclass
class SplitInfo:
    """How the target ratings were split (recorded with every result)."""

    kind: str  # "random" or "time"
    test_share: float
    seed: int
    n_train_target: int  # target ratings left for training
    n_test: int  # test ratings
    n_test_users: int
    n_cold_start_test: int  # of the test ratings, those the world hid from its late arrivals
    cutoff: float | None = None  # time split: timestamp of the earliest test rating
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainingData:
    """Training matrices and the test set, on the world's dense ids.

    Shapes: U users, I items (every domain), T test ratings sorted by user, V test users.
    """

    n_users: int
    n_items: int
    target: int
    sources: list[int]
    scale: tuple[float, float]
    by_domain: dict[int, sp.csr_matrix]  # (U, I) training ratings of each domain
    domain_counts: dict[int, np.ndarray]  # (U,) training ratings per domain
    train_all: sp.csr_matrix  # (U, I) every training rating
    co: sp.csr_matrix  # (I, I) item co-occurrence of the training ratings
    item_counts: np.ndarray  # (I,) raters per item
    n_raters: int  # users with a training rating
    target_mask: np.ndarray  # (I,) bool
    target_means: np.ndarray  # (U,) r̄_x over training target ratings, NaN without
    item_means: np.ndarray  # (I,) training mean of each item, else the global mean
    popularity_rank: np.ndarray  # (I,) 0 = the most rated target item
    test_users: np.ndarray  # (V,) ascending
    test_user_pos: np.ndarray  # (T,) index into test_users of each test rating's user
    test_user_bounds: np.ndarray  # (V + 1,) test ratings of test_users[v]: [b[v], b[v+1])
    test_items: np.ndarray  # (T,)
    test_ratings: np.ndarray  # (T,)

    @property
    def target_counts(self) -> np.ndarray:
        """(U,) training target ratings of each user (what the buckets are made of)."""
        return self.domain_counts[self.target]

    def seen_target(self, rows: np.ndarray) -> np.ndarray:
        """(B, I) bool: the users' training target ratings."""
        return _pattern(self.by_domain[self.target][rows])

    def histories(self, rows: np.ndarray) -> list[np.ndarray]:
        """Per user, the item ids of every training rating (every domain)."""
        m = self.train_all
        return [m.indices[m.indptr[u] : m.indptr[u + 1]] for u in rows]

    def relevant(self, users: np.ndarray, threshold: float | None) -> list[list[int]]:
        """REL_u per selected test user: test items rated >= threshold (all without one)."""
        keep = users[self.test_user_pos]
        if threshold is not None:
            keep &= self.test_ratings >= threshold
        pos, items = self.test_user_pos[keep], self.test_items[keep]
        selected = np.flatnonzero(users)
        firsts = np.searchsorted(pos, selected)
        lasts = np.searchsorted(pos, selected, side="right")
        return [items[a:b].tolist() for a, b in zip(firsts, lasts, strict=True)]

    def popular_lists(self, users: np.ndarray, n: int) -> np.ndarray:
        """(V', n) the primitive recommender: each user's n most rated unseen target items."""
        rows = self.test_users[users]
        lists = np.full((len(rows), n), -1, dtype=np.int64)
        for start in range(0, len(rows), 256):
            part = rows[start : start + 256]
            spare = self.target_mask[None, :] & ~self.seen_target(part)
            order = np.lexsort((np.broadcast_to(self.popularity_rank, spare.shape), ~spare))
            order = order[:, :n]
            lists[start : start + len(part), : order.shape[1]] = np.where(
                np.take_along_axis(spare, order, axis=1), order, -1
            )
        return lists


def _pattern(m: sp.csr_matrix) -> np.ndarray:
    """(B, I) bool stored pattern (a stored 0.0 rating still counts as rated)."""
    out = np.zeros(m.shape, dtype=bool)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    out[rows, m.indices] = True
    return out


def _ratings_of(scenario: Scenario, world: WorldData) -> tuple[RatingLog, np.ndarray, list[str]]:
    """Every rating the experiment may use, and which of them the world hid (cold start)."""
    if scenario.world.kind == "synthetic":
        note = "Data: the synthetic world's history (late arrivals' hidden ratings do not exist)."
        return world.history, np.zeros(len(world.history), dtype=bool), [note]
    from environment.datasets import load_dataset

    dense = load_dataset(scenario.world).to_dense_ids()
    if dense.n_users != world.n_users or dense.n_items != world.n_items:
        raise EvaluationError(f"world {world.name!r} does not match its data set (reloaded)")
    stamps = dense.timestamps
    log = RatingLog(
        dense.users, dense.items, dense.ratings, None if np.isnan(stamps).all() else stamps
    )
    keys = log.users * world.n_items + log.items
    known = world.history.users * world.n_items + world.history.items
    if not np.isin(known, keys).all():
        raise EvaluationError(f"world {world.name!r} has ratings its data set lacks")
    hidden = ~np.isin(keys, known)
    note = (
        f"Data: {len(log):,} ratings of {world.name!r}; the {int(hidden.sum()):,} target "
        "ratings hidden from the late arrivals are test ratings (world.cold_start_share)."
    )
    return log, hidden, [note]


def _test_mask(
    scenario: Scenario, log: RatingLog, pool: np.ndarray
) -> tuple[np.ndarray, float | None]:
    ev = scenario.evaluation
    candidates = np.flatnonzero(pool)
    n_test = round(ev.test_share * len(candidates))
    rng = np.random.default_rng(scenario.run.seed)
    test = np.zeros(len(pool), dtype=bool)
    if ev.split == "random":
        test[rng.choice(candidates, size=n_test, replace=False)] = True
        return test, None
    stamps = log.timestamps
    if stamps is None or np.isnan(stamps[candidates]).any():
        raise EvaluationError(
            "evaluation.split 'time' needs a timestamp on every target rating; "
            "this world has none (use split: random)"
        )
    # Latest ratings first out; equal timestamps in random order.
    order = candidates[np.lexsort((rng.random(len(candidates)), stamps[candidates]))]
    chosen = order[len(order) - n_test :]
    test[chosen] = True
    return test, float(stamps[chosen].min()) if n_test else None


def _csr(log: RatingLog, keep: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((log.ratings[keep], (log.users[keep], log.items[keep])), shape=shape)
    m.sort_indices()
    return m


def split_world(scenario: Scenario, world: WorldData) -> tuple[TrainingData, SplitInfo]:
    """Split a world's target ratings per ``scenario.evaluation`` and build the training data.

    Raises:
        EvaluationError: a time split without timestamps, or no test rating.
    """
    ev = scenario.evaluation
    log, hidden, notes = _ratings_of(scenario, world)
    shape = (world.n_users, world.n_items)
    in_target = world.item_domain[log.items] == world.target_domain
    honest = world.user_kind[log.users] == 0
    test, cutoff = _test_mask(scenario, log, in_target & honest & ~hidden)
    test |= hidden & in_target & honest
    if not test.any():
        raise EvaluationError("no target rating is left to test (too few ratings?)")
    train = ~test
    by_domain, counts = {}, {}
    domain_of = world.item_domain[log.items]
    for dom in range(world.n_domains):
        keep = train & (domain_of == dom)
        by_domain[dom] = _csr(log, keep, shape)
        counts[dom] = np.bincount(log.users[keep], minlength=world.n_users)
    train_all = _csr(log, train, shape)
    binary = sp.csr_matrix((np.ones(train_all.nnz), train_all.indices, train_all.indptr), shape)
    item_counts = np.bincount(log.items[train], minlength=world.n_items)
    t_items = world.item_domain == world.target_domain
    t_train = train & in_target
    t_counts = np.bincount(log.items[t_train], minlength=world.n_items)
    sums = np.bincount(log.items[t_train], weights=log.ratings[t_train], minlength=world.n_items)
    global_mean = (
        float(log.ratings[t_train].mean()) if t_train.any() else float(np.mean(world.scale))
    )
    item_means = np.where(t_counts > 0, sums / np.maximum(t_counts, 1), global_mean)
    by_pop = np.lexsort((np.arange(world.n_items), -np.where(t_items, t_counts, -1)))
    popularity_rank = np.empty(world.n_items, dtype=np.int64)
    popularity_rank[by_pop] = np.arange(world.n_items)

    t_idx = np.flatnonzero(test)
    t_idx = t_idx[np.lexsort((log.items[t_idx], log.users[t_idx]))]
    test_users, pos = np.unique(log.users[t_idx], return_inverse=True)
    bounds = np.searchsorted(pos, np.arange(len(test_users) + 1))
    data = TrainingData(
        n_users=world.n_users,
        n_items=world.n_items,
        target=world.target_domain,
        sources=[d for d in range(world.n_domains) if d != world.target_domain],
        scale=world.scale,
        by_domain=by_domain,
        domain_counts=counts,
        train_all=train_all,
        co=cooccurrence(binary),
        item_counts=item_counts,
        n_raters=int((np.diff(train_all.indptr) > 0).sum()),
        target_mask=t_items,
        target_means=user_means(by_domain[world.target_domain]),
        item_means=item_means,
        popularity_rank=popularity_rank,
        test_users=test_users,
        test_user_pos=pos,
        test_user_bounds=bounds,
        test_items=log.items[t_idx],
        test_ratings=log.ratings[t_idx],
    )
    n_hidden = int((hidden & test).sum())
    info = SplitInfo(
        kind=ev.split,
        test_share=ev.test_share,
        seed=scenario.run.seed,
        n_train_target=int(t_train.sum()),
        n_test=len(t_idx),
        n_test_users=len(test_users),
        n_cold_start_test=n_hidden,
        cutoff=cutoff,
        notes=[
            *notes,
            f"Split: {ev.split}, test share {ev.test_share:g} of the other target ratings, "
            f"seed {scenario.run.seed}: {len(t_idx):,} test ratings ({n_hidden:,} cold-start) "
            f"of {len(test_users):,} users; {int(t_train.sum()):,} target ratings to train on.",
        ],
    )
    return data, info
