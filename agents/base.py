"""What every TFCDSRS role agent shares: its inbox on the bus, and a view of the ratings.

Agents never pass data in memory: they read their inbox from the repository, post replies to
it, and read the rating table (through ``RatingView``) for the domains they own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

from storage.bus import Envelope

if TYPE_CHECKING:
    from environment.world import World

log = logging.getLogger(__name__)


class RoleAgent(mesa.Agent):
    """A TFCDSRS role: handles its whole inbox as one batch per call of ``step``."""

    model: World
    name: str

    def __init__(self, model: World, name: str) -> None:
        super().__init__(model)
        self.name = name

    def inbox(self, kinds: Sequence[str] | None = None) -> list[Envelope]:
        return self.model.bus.inbox(self.model.session, self.name, kinds=kinds)

    def done(self, envelopes: Sequence[Envelope]) -> None:
        if envelopes:
            self.model.bus.mark_handled(
                self.model.session, [e.id for e in envelopes], self.model.step_no
            )

    def post(self, recipient: str, payload: BaseModel) -> None:
        self.model.bus.post(
            self.model.session,
            step=self.model.step_no,
            sender=self.name,
            recipient=recipient,
            payload=payload,
        )

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to snapshot for resuming (none by default: rebuilt from the database)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of ``state``."""
        del state


class RatingView:
    """An agent's own copy of the ratings of some domains, as a CSR matrix (U, I).

    Rows are all users and columns all items (ids are global), so the matrix of one domain
    simply has the other domains' columns empty. ``refresh`` pulls the rows that became visible
    since the last call: initial history at step 0, a newcomer's history at their arrival step,
    feedback ratings from the step after they were given.
    """

    def __init__(self, n_users: int, n_items: int, domains: Sequence[int] | None) -> None:
        self.shape = (n_users, n_items)
        self.domains = None if domains is None else list(domains)
        self._users = np.zeros(0, dtype=np.int64)
        self._items = np.zeros(0, dtype=np.int64)
        self._ratings = np.zeros(0, dtype=np.float64)
        self._seen_step = -1
        self.matrix = sp.csr_matrix(self.shape, dtype=np.float64)

    def refresh(self, model: World) -> bool:
        """Load newly visible ratings; returns True when the matrix changed."""
        step = model.step_no
        if step <= self._seen_step:
            return False
        parts = []
        for dom in self.domains if self.domains is not None else [None]:
            _, users, items, ratings, _ = model.repo.ratings(
                model.session,
                model.run_id,
                domain_id=dom,
                visible_after=self._seen_step,
                visible_at=step,
            )
            parts.append((users, items, ratings))
        self._seen_step = step
        new_u = np.concatenate([p[0] for p in parts])
        if len(new_u) == 0:
            return False
        self._users = np.concatenate([self._users, new_u])
        self._items = np.concatenate([self._items, *[p[1] for p in parts]])
        self._ratings = np.concatenate([self._ratings, *[p[2] for p in parts]])
        self._rebuild()
        return True

    def _rebuild(self) -> None:
        # A later rating of the same (user, item) replaces the earlier one.
        key = self._users * self.shape[1] + self._items
        _, last = np.unique(key[::-1], return_index=True)
        keep = len(key) - 1 - last
        keep.sort()
        self._users, self._items, self._ratings = (
            self._users[keep],
            self._items[keep],
            self._ratings[keep],
        )
        coo = sp.coo_matrix((self._ratings, (self._users, self._items)), shape=self.shape)
        self.matrix = coo.tocsr()
        self.matrix.sort_indices()

    def row_counts(self) -> np.ndarray:
        return np.diff(self.matrix.indptr)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self._items, minlength=self.shape[1])

    def history(self, user: int) -> np.ndarray:
        m = self.matrix
        return m.indices[m.indptr[user] : m.indptr[user + 1]].copy()


def top_similar(similarity: np.ndarray, pool: int) -> list[np.ndarray]:
    """Per row of ``similarity`` (B, U), the ids of up to ``pool`` users with the highest
    defined, positive similarity (negative similarity gives no trust), best first."""
    sim = np.where(np.isnan(similarity), -np.inf, similarity)
    k = min(pool, sim.shape[1])
    if k == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(sim.shape[0])]
    part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sim, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    best_vals = np.take_along_axis(vals, order, axis=1)
    return [b[v > 0] for b, v in zip(best, best_vals, strict=True)]
