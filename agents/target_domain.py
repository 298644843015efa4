"""The target domain agent: owns the target ratings, finds local neighbours, and decides
when a user is too sparse and the source domains must be asked (FORMULAS.md sections 1-2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import RatingView, RoleAgent, top_similar
from agents.messages import Feedback, LocalNeighbours, RecommendRequest, RemoteNeighbourRequest
from models.cf import pearson
from storage.tables import RatingRecord

if TYPE_CHECKING:
    from environment.world import World

NAME = "target"


class TargetDomainAgent(RoleAgent):
    def __init__(self, model: World, source_names: list[str]) -> None:
        super().__init__(model, NAME)
        self.source_names = source_names
        data = model.data
        self.view = RatingView(data.n_users, data.n_items, [data.target_domain])

    def step(self) -> None:
        self.view.refresh(self.model)
        envelopes = self.inbox()
        requests = [e for e in envelopes if isinstance(e.payload, RecommendRequest)]
        feedback = [e for e in envelopes if isinstance(e.payload, Feedback)]
        if requests:
            self._find_neighbours([e.payload.user for e in requests])
        if feedback:
            self._store_ratings([e.payload for e in feedback])
        # Arrive needs no work here: the newcomer's rows become visible through the view.
        self.done(envelopes)

    def _find_neighbours(self, users: list[int]) -> None:
        cfg = self.model.recommender
        rows = np.asarray(users, dtype=np.int64)
        stats = pearson(
            self.view.matrix,
            rows,
            min_common=cfg.min_common,
            mean=cfg.similarity_mean,
            significance=cfg.significance,
        )
        n_rated = self.view.row_counts()[rows]
        pool = cfg.neighbours * cfg.candidate_pool
        best = top_similar(stats.similarity, pool)
        for b, user in enumerate(users):
            sparse = (
                cfg.cross_domain and bool(self.source_names) and n_rated[b] < cfg.sparse_threshold
            )
            ids = best[b]
            self.post(
                "trust",
                LocalNeighbours(
                    user=user,
                    n_rated=int(n_rated[b]),
                    sparse=sparse,
                    remote_expected=len(self.source_names) if sparse else 0,
                    neighbours=ids.tolist(),
                    similarity=stats.similarity[b, ids].tolist(),
                    co_counts=stats.co_counts[b, ids].tolist(),
                ),
            )
            if sparse:
                for source in self.source_names:
                    self.post(source, RemoteNeighbourRequest(user=user, pool=pool))

    def _store_ratings(self, feedback: list[Feedback]) -> None:
        """New target ratings from users' feedback, visible to everyone from the next step."""
        step = self.model.step_no
        target = self.model.data.target_domain
        rows = [
            {
                "run_id": self.model.run_id,
                "user_id": fb.user,
                "item_id": ev.item,
                "domain_id": target,
                "rating": ev.rating,
                "step": step,
                "origin": "feedback",
                "available_step": step + 1,
            }
            for fb in feedback
            for ev in fb.events
        ]
        if rows:
            self.model.repo.insert_rows(self.model.session, RatingRecord, rows)
