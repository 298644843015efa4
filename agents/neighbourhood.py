"""The neighbourhood agent: predicts the user's ratings of unseen target items from the
final neighbourhood (Resnick, FORMULAS.md section 6) and passes on the candidates
p_{x,i} >= theta_p with their relevance (section 8), neighbour support (section 7) and the
neighbours to credit for each (``TrustConfig.credit``: by default those who pushed its
prediction up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import RatingView, RoleAgent
from agents.messages import Candidates, TrustedNeighbours
from models.cf import neighbourhood_scores, user_means
from models.pipeline_items import candidate_set
from models.trust_credit import top_contributors

if TYPE_CHECKING:
    from environment.world import World

NAME = "neighbourhood"
CONTRIBUTORS_PER_ITEM = 10


class NeighbourhoodAgent(RoleAgent):
    def __init__(self, model: World) -> None:
        super().__init__(model, NAME)
        data = model.data
        self.view = RatingView(data.n_users, data.n_items, [data.target_domain])
        self.target_items = data.domain_items(data.target_domain)

    def step(self) -> None:
        self.view.refresh(self.model)
        envelopes = self.inbox()
        msgs = [e.payload for e in envelopes if isinstance(e.payload, TrustedNeighbours)]
        if msgs:
            self._predict(msgs)
        self.done(envelopes)

    def _predict(self, msgs: list[TrustedNeighbours]) -> None:
        cfg = self.model.recommender
        R = self.view.matrix
        k = max(1, max(len(m.neighbours) for m in msgs))
        neighbours = np.full((len(msgs), k), -1, dtype=np.int64)
        weights = np.zeros((len(msgs), k))
        for b, m in enumerate(msgs):
            neighbours[b, : len(m.neighbours)] = m.neighbours
            weights[b, : len(m.weights)] = m.weights
        users = np.asarray([m.user for m in msgs], dtype=np.int64)
        means = user_means(R)
        scores = neighbourhood_scores(R, neighbours, weights, means[users], self.model.data.scale)
        counts = self.view.item_counts()[self.target_items]
        item_sum = np.asarray(R[:, self.target_items].sum(axis=0)).ravel()
        rated_any = counts > 0
        global_mean = float(R.data.mean()) if R.nnz else float(np.mean(self.model.data.scale))
        item_mean = np.where(rated_any, item_sum / np.maximum(counts, 1), global_mean)
        popularity_order = np.lexsort((self.target_items, -counts))
        popularity_rank = np.empty(len(self.target_items), dtype=np.int64)
        popularity_rank[popularity_order] = np.arange(len(self.target_items))
        # Unseen target items, for the whole batch at once (the view's stored pattern).
        rated = R[users][:, self.target_items]
        eligible = np.ones(rated.shape, dtype=bool)
        eligible[np.repeat(np.arange(len(users)), np.diff(rated.indptr)), rated.indices] = False
        base = means[users]
        fallback = np.where(np.isfinite(base)[:, None], base[:, None], item_mean[None, :])
        cands = candidate_set(
            scores.prediction[:, self.target_items],
            scores.relevance[:, self.target_items],
            scores.support[:, self.target_items],
            eligible,
            popularity_rank,
            fallback,
            cfg.prediction_threshold,
            cfg.max_candidates,
            self.model.list_length,
        )

        for b, m in enumerate(msgs):
            idx = np.flatnonzero(cands.mask[b])
            items = self.target_items[idx]
            prediction = cands.prediction[b, idx]
            relevance = cands.relevance[b, idx]
            support = cands.support[b, idx]
            contributors = (
                top_contributors(
                    R,
                    neighbours,
                    weights,
                    b,
                    items,
                    limit=CONTRIBUTORS_PER_ITEM,
                    only=cfg.trust.credit,
                )
                if len(items)
                else []
            )
            self.post(
                "serendipity",
                Candidates(
                    user=m.user,
                    n_neighbours=len(m.neighbours),
                    items=items.tolist(),
                    prediction=np.asarray(prediction, float).tolist(),
                    relevance=np.nan_to_num(
                        np.asarray(relevance, float),
                        nan=float(np.nanmean(prediction)) if len(prediction) else 0.0,
                    ).tolist(),
                    support=np.asarray(support, int).tolist(),
                    contributors=contributors,
                ),
            )
