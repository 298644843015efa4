"""A source domain agent: owns one source domain's ratings and its correlation with the
target, and answers sparse users' requests with remote neighbours (FORMULAS.md section 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from agents.base import RatingView, RoleAgent, top_similar
from agents.messages import RemoteNeighbourRequest, RemoteNeighbours
from models.cf import domain_correlation, pearson

if TYPE_CHECKING:
    from environment.world import World

CORRELATION_EVERY = 10  # cor(t, s) changes slowly: recompute every this many steps


class SourceDomainAgent(RoleAgent):
    def __init__(self, model: World, domain: int) -> None:
        super().__init__(model, f"source:{model.data.domain_names[domain]}")
        self.domain = domain
        data = model.data
        self.view = RatingView(data.n_users, data.n_items, [domain])
        self.target_view = RatingView(data.n_users, data.n_items, [data.target_domain])
        self.correlation = float("nan")
        self.correlation_step = -1

    def step(self) -> None:
        self.view.refresh(self.model)
        envelopes = self.inbox()
        requests = [e.payload for e in envelopes if isinstance(e.payload, RemoteNeighbourRequest)]
        if requests:
            self._answer(requests)
        self.done(envelopes)

    def _current_correlation(self) -> float:
        step = self.model.step_no
        if self.correlation_step < 0 or step - self.correlation_step >= CORRELATION_EVERY:
            self.target_view.refresh(self.model)
            cfg = self.model.recommender
            self.correlation = domain_correlation(
                self.target_view.matrix,
                self.view.matrix,
                min_common=cfg.min_common,
                method=cfg.domain_correlation,
            )
            self.correlation_step = step
        return self.correlation

    def _answer(self, requests: list[RemoteNeighbourRequest]) -> None:
        cfg = self.model.recommender
        cor = self._current_correlation()
        rows = np.asarray([r.user for r in requests], dtype=np.int64)
        stats = pearson(
            self.view.matrix,
            rows,
            min_common=cfg.min_common,
            mean=cfg.similarity_mean,
            significance=cfg.significance,
        )
        n_rated = self.view.row_counts()[rows]
        best = top_similar(stats.similarity, max(r.pool for r in requests))
        for b, req in enumerate(requests):
            ids = best[b][: req.pool]
            self.post(
                "trust",
                RemoteNeighbours(
                    user=req.user,
                    domain=self.model.data.domain_names[self.domain],
                    correlation=cor if np.isfinite(cor) else 0.0,
                    n_rated=int(n_rated[b]),
                    neighbours=ids.tolist(),
                    similarity=stats.similarity[b, ids].tolist(),
                    co_counts=stats.co_counts[b, ids].tolist(),
                ),
            )

    def state(self) -> dict[str, Any]:
        return {"correlation": np.array([self.correlation, self.correlation_step])}

    def restore(self, state: dict[str, Any]) -> None:
        self.correlation = float(state["correlation"][0])
        self.correlation_step = int(state["correlation"][1])
