"""The serendipity assessment agent: novelty, relevance and co-occurrence unexpectedness of
each candidate (FORMULAS.md sections 7-9), the Mamdani serendipity score (section 10), and
the final ranked list with every component score."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.base import RatingView, RoleAgent
from agents.messages import Candidates, Feedback, Recommendations, RecommendedItem
from agents.model_scoring import ModelScoring
from models.components import cooccurrence, percentile_within
from models.fuzzy import default_rule_base, firing_strengths
from models.pipeline_items import (
    Assessment,
    SerendipityOptions,
    assess_candidates,
    rank_candidates,
)
from storage.tables import RecommendationRecord

if TYPE_CHECKING:
    from environment.world import World

NAME = "serendipity"
RULES_KEPT = 6  # fired rules stored per recommended item (strongest first)


class SerendipityAgent(RoleAgent):
    """Ranks candidates with the fuzzy system, a trained deep scorer, or a blend of both.

    With a deep scorer plugged in (``scoring``), users also send it their feedback: the
    serendipitous finds are the labels it retrains on. Until the scorer is trained (a scorer
    that needs labels waits for enough of them), lists are ranked by the fuzzy system.
    """

    def __init__(self, model: World, scoring: ModelScoring | None = None) -> None:
        super().__init__(model, NAME)
        data = model.data
        self.view = RatingView(data.n_users, data.n_items, None)  # histories span every domain
        self.rule_base = default_rule_base()
        cfg = model.recommender
        configured = SerendipityOptions.of(cfg)
        self.fuzzy_options = dataclasses.replace(configured, scorer="fuzzy")
        if cfg.scorer == "blend":
            self.options = self.fuzzy_options  # the model feeds the fuzzy relevance input
        elif cfg.deep_model is not None:
            self.options = dataclasses.replace(configured, scorer="prediction")  # no theta_s
        else:
            self.options = configured
        self.scoring = scoring
        self._co = None

    @property
    def wants_feedback(self) -> bool:
        return self.scoring is not None

    def step(self) -> None:
        if self.view.refresh(self.model) or self._co is None:
            binary = self.view.matrix.copy()
            binary.data = np.ones_like(binary.data)
            self._co = cooccurrence(binary)
        envelopes = self.inbox()
        if self.scoring is not None:
            for e in envelopes:
                if isinstance(e.payload, Feedback):
                    found = [ev.item for ev in e.payload.events if ev.serendipitous]
                    self.scoring.add_labels([e.payload.user] * len(found), found)
        msgs = [e.payload for e in envelopes if isinstance(e.payload, Candidates)]
        requests = {e.payload.user: e.id for e in envelopes if isinstance(e.payload, Candidates)}
        if msgs:
            if self.scoring is not None:
                self.scoring.maybe_fit(self.model.step_no, self.view.matrix)
            self._assess(msgs, requests)
        self.done(envelopes)

    def _model_scores(self, msgs: list[Candidates], mask: np.ndarray) -> np.ndarray | None:
        """The trained scorer's scores of every candidate, (B, I), NaN elsewhere."""
        if self.scoring is None or not self.scoring.ready:
            return None
        width = max(len(m.items) for m in msgs)
        items = np.zeros((len(msgs), width), dtype=np.int64)
        for b, m in enumerate(msgs):
            items[b, : len(m.items)] = m.items
            items[b, len(m.items) :] = m.items[0] if m.items else 0
        users = np.asarray([m.user for m in msgs], dtype=np.int64)
        raw = self.scoring.score(users, items)
        out = np.full(mask.shape, np.nan)
        rows = np.repeat(np.arange(len(msgs)), width)
        out[rows, items.ravel()] = raw.ravel()
        return np.where(mask, out, np.nan)

    def _assess(self, msgs: list[Candidates], request_ids: dict[int, int]) -> None:
        n_items = self.model.data.n_items
        B = len(msgs)
        mask = np.zeros((B, n_items), dtype=bool)
        support = np.zeros((B, n_items))
        rel = np.full((B, n_items), np.nan)
        pred = np.full((B, n_items), np.nan)
        for b, m in enumerate(msgs):
            items = np.asarray(m.items, dtype=np.int64)
            mask[b, items] = True
            support[b, items] = m.support
            rel[b, items] = m.relevance
            pred[b, items] = m.prediction
        model_score = self._model_scores(msgs, mask)
        # Only a plugged-in model that is not trained yet falls back to the fuzzy ranking; a
        # recommender without a model (TFCDSRS fuzzy, CF by prediction) keeps its own options.
        waiting = self.scoring is not None and model_score is None
        options = self.fuzzy_options if waiting else self.options
        if model_score is not None and self.model.recommender.scorer == "blend":
            # The model's verdict, as its percentile among the user's candidates, becomes the
            # relevance input (mapped onto the rating scale, which relevance01 maps back).
            lo, hi = self.model.data.scale
            rel = lo + np.nan_to_num(percentile_within(model_score, mask), nan=0.0) * (hi - lo)
        scores = assess_candidates(
            mask,
            support,
            rel,
            pred,
            np.asarray([m.n_neighbours for m in msgs], dtype=float),
            self.view.item_counts(),
            int((self.view.row_counts() > 0).sum()),
            self._co,
            [self.view.history(m.user) for m in msgs],
            self.model.data.scale,
            options,
            self.rule_base,
        )
        if model_score is not None and self.model.recommender.scorer != "blend":
            scores.score = model_score
        ranked = rank_candidates(
            scores.score, scores.serendipity, mask, self.model.list_length, options
        )
        self._publish(msgs, request_ids, ranked, pred, scores)

    def _publish(
        self,
        msgs: list[Candidates],
        request_ids: dict[int, int],
        ranked: np.ndarray,
        pred: np.ndarray,
        scores: Assessment,
    ) -> None:
        step, run = self.model.step_no, self.model.run_id
        score, z, rel01 = scores.score, scores.serendipity, scores.relevance
        nov, une, une_in = scores.novelty, scores.unexpectedness, scores.unexpectedness_input
        records = []
        for b, m in enumerate(msgs):
            chosen = ranked[b][ranked[b] >= 0]
            fired = firing_strengths(
                nov[b, chosen], rel01[b, chosen], une_in[b, chosen], self.rule_base
            )
            contributors = dict(zip(m.items, m.contributors, strict=True))
            listed = []
            for pos, item in enumerate(chosen.tolist()):
                strongest = np.argsort(-fired[pos], kind="stable")[:RULES_KEPT]
                rules = [(int(r) + 1, float(fired[pos, r])) for r in strongest if fired[pos, r] > 0]
                rec = RecommendedItem(
                    item=item,
                    score=float(score[b, item]),
                    prediction=float(pred[b, item]),
                    relevance=float(rel01[b, item]),
                    novelty=float(nov[b, item]),
                    unexpectedness=float(une[b, item]),
                    serendipity=float(z[b, item]),
                    rules=rules,
                    contributors=contributors[item],
                )
                listed.append(rec)
                records.append(
                    {
                        "run_id": run,
                        "step": step,
                        "user_id": m.user,
                        "item_id": item,
                        "rank": pos + 1,
                        "prediction": rec.prediction,
                        "relevance": rec.relevance,
                        "novelty": rec.novelty,
                        "unexpectedness": rec.unexpectedness,
                        "serendipity": rec.serendipity,
                        "score": rec.score,
                        "rules": _json_rules(rules),
                        "neighbours": _json_ids(rec.contributors),
                        "request_id": request_ids[m.user],
                    }
                )
            self.post(f"user:{m.user}", Recommendations(user=m.user, items=listed))
        if records:
            self.model.repo.insert_rows(self.model.session, RecommendationRecord, records)
            self.model.step_log.recommendations.extend(records)

    def state(self) -> dict[str, Any]:
        return {} if self.scoring is None else self.scoring.state()

    def restore(self, state: dict[str, Any]) -> None:
        if self.scoring is not None and state:
            self.scoring.restore(state)


def _json_rules(rules: list[tuple[int, float]]) -> str:
    return "[" + ",".join(f"[{r},{s:.6g}]" for r, s in rules) + "]"


def _json_ids(ids: list[int]) -> str:
    return "[" + ",".join(str(i) for i in ids) + "]"
