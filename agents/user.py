"""Simulated users (ARCHITECTURE.md section 3).

A user asks for a list, consumes items through a choice model driven by their true utility and
their curiosity, rates what they consumed (true utility on the rating scale plus noise), and
says whether an item was a serendipitous find: unexpected (beyond their comfort radius from
everything they have consumed) and valuable (true utility at or above the like threshold),
felt as such more often by curious users. Their ground truth lives in the environment; the
recommender agents only ever see their messages and ratings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import RoleAgent
from agents.messages import Arrive, Feedback, FeedbackEvent, Recommendations, RecommendRequest
from environment.synthetic import round_rating
from environment.unexpected import item_distances

if TYPE_CHECKING:
    from environment.world import World


class UserAgent(RoleAgent):
    def __init__(self, model: World, user: int, history: np.ndarray) -> None:
        super().__init__(model, f"user:{user}")
        self.user = user
        self.consumed = list(history.tolist())  # every item consumed, all domains
        self.waiting = False

    def arrive(self) -> None:
        for recipient in ["target", *self.model.source_names]:
            self.post(recipient, Arrive(user=self.user))

    def request(self) -> None:
        self.post("target", RecommendRequest(user=self.user, n=self.model.list_length))
        self.waiting = True

    def respond(self) -> None:
        """Read the list, consume, rate, report serendipity, send feedback."""
        envelopes = self.inbox()
        lists = [e.payload for e in envelopes if isinstance(e.payload, Recommendations)]
        events: list[FeedbackEvent] = []
        for recs in lists:
            events.extend(self._experience(recs))
        if events:
            fb = Feedback(user=self.user, events=events)
            self.post("target", fb)
            self.post("trust", fb)
            if self.model.serendipity.wants_feedback:  # a deep scorer learns from the finds
                self.post("serendipity", fb)
        self.waiting = False
        self.done(envelopes)

    def _experience(self, recs: Recommendations) -> list[FeedbackEvent]:
        world = self.model
        data, traits = world.data, world.traits
        rng = world.behaviour_rng
        n = len(recs.items)
        # Fixed draws per list, whatever is consumed, so variants stay comparable.
        u_choice, noise, u_seren = rng.random(n), rng.normal(0.0, traits.noise_sd, n), rng.random(n)
        if n == 0:
            return []
        items = np.asarray([r.item for r in recs.items], dtype=np.int64)
        utility = data.truth.utility(np.asarray([self.user]), items)[0]
        dist = item_distances(world.item_vectors, np.asarray(self.consumed, dtype=np.int64), items)
        unexpected = dist > data.comfort_radius[self.user]
        valuable = utility >= data.like_threshold
        curiosity = data.curiosity[self.user]
        logit = (
            traits.choice_utility * (utility - data.like_threshold + 0.5)
            + traits.choice_curiosity * (curiosity - 0.5) * unexpected
            - traits.position_decay * np.arange(n)
        )
        consumed = u_choice < 1.0 / (1.0 + np.exp(-logit))
        rating = round_rating(utility + noise, data.scale, data.rating_step)
        liked = rating >= data.like_threshold
        truly = unexpected & valuable
        p_felt = traits.serendipity_base + (1.0 - traits.serendipity_base) * curiosity
        felt = consumed & truly & (u_seren < p_felt)

        step, run = world.step_no, world.run_id
        rows, events = [], []
        for k, rec in enumerate(recs.items):
            rows.append(
                {
                    "run_id": run,
                    "step": step,
                    "user_id": self.user,
                    "item_id": rec.item,
                    "consumed": bool(consumed[k]),
                    "rating": float(rating[k]) if consumed[k] else None,
                    "liked": bool(consumed[k] and liked[k]),
                    "serendipitous": bool(felt[k]),
                    "true_utility": float(utility[k]),
                    "truly_serendipitous": bool(truly[k]),
                }
            )
            if consumed[k]:
                events.append(
                    FeedbackEvent(
                        item=rec.item,
                        rating=float(rating[k]),
                        liked=bool(liked[k]),
                        serendipitous=bool(felt[k]),
                        contributors=rec.contributors,
                    )
                )
        self.consumed.extend(items[consumed].tolist())
        world.step_log.feedback.extend(rows)  # written once per step by the world
        return events
