"""The world: a ``mesa.Model`` that runs one TFCDSRS recommender over a world's users.

A step (ARCHITECTURE.md section 2):
1. arrivals: newcomers announce themselves (their history becomes visible);
2. active users ask for recommendations;
3. the role agents drain their inboxes in pipeline order (target, sources, trust,
   neighbourhood, serendipity), each as one batch;
4. users receive their lists, consume, rate, report serendipity and send feedback;
5. the target stores the new ratings, trust and reputation update (feedback, then one R-A
   sweep), metrics are computed, and the whole step commits in one transaction.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np
from sqlmodel import select

from agents.messages import MESSAGE_KINDS
from agents.model_scoring import ModelScoring
from agents.neighbourhood import NeighbourhoodAgent
from agents.serendipity import SerendipityAgent
from agents.source_domain import SourceDomainAgent
from agents.target_domain import TargetDomainAgent
from agents.trust import TrustAgent
from agents.user import UserAgent
from environment.metrics import step_metrics
from environment.scenario import RecommenderConfig, RunConfig
from environment.traits import TraitsConfig
from environment.world_data import WorldData
from storage.bus import MessageBus
from storage.repository import Repository
from storage.tables import FeedbackRecord, MetricRecord, RecommendationRecord

log = logging.getLogger(__name__)

WORLD_STATE = "world"


@dataclass
class StepLog:
    """What one step produced, kept in memory for the metrics and the live view."""

    step: int
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    arrivals: int = 0
    metrics: dict[tuple[str, str], float | None] = field(default_factory=dict)


class World(mesa.Model):
    """One recommender variant living in one world, writing to one run of the database."""

    def __init__(
        self,
        data: WorldData,
        recommender: RecommenderConfig,
        run: RunConfig,
        traits: TraitsConfig,
        repo: Repository,
        run_id: int,
    ) -> None:
        super().__init__(seed=run.seed)
        self.data = data
        self.recommender = recommender
        self.run_cfg = run
        self.traits = traits
        self.repo = repo
        self.run_id = run_id
        self.bus = MessageBus(repo, run_id, MESSAGE_KINDS)
        self.session: Any = None
        self.step_no = 0
        self.list_length = run.list_length
        self.item_vectors = data.truth.item_vectors()
        # Independent streams derived from the model's seeded generator: who is active does
        # not depend on what the recommender showed, so variants face the same requests.
        self.activity_rng = np.random.default_rng(self.rng.integers(2**63))
        self.behaviour_rng = np.random.default_rng(self.rng.integers(2**63))
        self.present = data.arrival_step <= 0
        self.step_log = StepLog(step=0)
        # Items recommended so far, per user group (catalogue coverage is cumulative).
        self.covered = {g: np.zeros(data.n_items, dtype=bool) for g in ("all", "cold", "warm")}

        sources = [d for d in range(data.n_domains) if d != data.target_domain]
        use_sources = recommender.cross_domain
        self.sources = [SourceDomainAgent(self, d) for d in sources] if use_sources else []
        self.source_names = [s.name for s in self.sources]
        self.target = TargetDomainAgent(self, self.source_names)
        self.trust = TrustAgent(self)
        self.neighbourhood = NeighbourhoodAgent(self)
        self.serendipity = SerendipityAgent(self, _model_scoring(data, recommender, run))
        order = np.argsort(data.history.users, kind="stable")
        bounds = np.searchsorted(data.history.users[order], np.arange(data.n_users + 1))
        self.users = [
            UserAgent(self, u, data.history.items[order[bounds[u] : bounds[u + 1]]])
            for u in range(data.n_users)
        ]

    # ----------------------------------------------------------------- the step
    def step(self) -> None:
        with self.repo.transaction() as session:
            self.session = session
            self.step_log = StepLog(step=self.step_no)
            self._arrivals()
            self._requests()
            self.target.step()
            for source in self.sources:
                source.step()
            self.trust.step()
            self.neighbourhood.step()
            self.serendipity.step()
            for user in self.users:
                if user.waiting:
                    user.respond()
            if self.step_log.feedback:
                self.repo.insert_rows(session, FeedbackRecord, self.step_log.feedback)
            self.target.step()  # the feedback's new ratings
            self.trust.step()  # R-B credit to the neighbours behind each rated item
            if self.serendipity.wants_feedback:
                self.serendipity.step()  # serendipitous finds: the deep scorer's labels
            self.trust.end_step()  # one R-A sweep; reputation rows
            self._metrics()
            self.bus.flush(session)
            self._save_state(session)
            self.repo.set_run_status(session, self.run_id, "running", last_step=self.step_no)
        self.session = None
        self.step_no += 1

    def _arrivals(self) -> None:
        arriving = np.flatnonzero(self.data.arrival_step == self.step_no)
        arriving = arriving[self.data.arrival_step[arriving] > 0]
        for u in arriving:
            self.present[u] = True
            self.users[u].arrive()
        self.step_log.arrivals = len(arriving)

    def _requests(self) -> None:
        eligible = np.flatnonzero(self.present & (self.data.user_kind == 0))
        draw = self.activity_rng.random(self.data.n_users)
        active = eligible[draw[eligible] < self.run_cfg.active_share]
        for u in active:
            self.users[u].request()
        self.step_log.requests = len(active)

    def _metrics(self) -> None:
        values = step_metrics(self)
        self.step_log.metrics = values
        self.repo.insert_rows(
            self.session,
            MetricRecord,
            [
                {
                    "run_id": self.run_id,
                    "step": self.step_no,
                    "name": name,
                    "group": group,
                    "value": value,
                }
                for (name, group), value in values.items()
            ],
        )

    # ----------------------------------------------------------------- resume
    def _save_state(self, session: Any) -> None:
        for agent in [self.trust, *self.sources, self.serendipity]:
            self.repo.save_agent_state(
                session, self.run_id, agent.name, self.step_no, _pack(agent.state())
            )
        world_state = {
            "activity": _rng_state(self.activity_rng),
            "behaviour": _rng_state(self.behaviour_rng),
        }
        self.repo.save_agent_state(
            session, self.run_id, WORLD_STATE, self.step_no, _pack(world_state)
        )

    def restore(self, last_step: int) -> None:
        """Continue after ``last_step``: agent snapshots, generators, users' histories."""
        states = self.repo.load_agent_states(self.run_id)
        for agent in [self.trust, *self.sources, self.serendipity]:
            if agent.name in states:
                agent.restore(_unpack(states[agent.name][1]))
        if WORLD_STATE in states:
            ws = _unpack(states[WORLD_STATE][1])
            self.activity_rng.bit_generator.state = _rng_from(ws["activity"])
            self.behaviour_rng.bit_generator.state = _rng_from(ws["behaviour"])
        self.step_no = last_step + 1
        self.present = self.data.arrival_step <= last_step
        with self.repo.session() as session:
            rows = session.exec(
                select(FeedbackRecord.user_id, FeedbackRecord.item_id)
                .where(FeedbackRecord.run_id == self.run_id, FeedbackRecord.consumed)
                .order_by(FeedbackRecord.id)
            ).all()
            recs = session.exec(
                select(RecommendationRecord.user_id, RecommendationRecord.item_id).where(
                    RecommendationRecord.run_id == self.run_id
                )
            ).all()
        for u, i in rows:
            self.users[u].consumed.append(i)
        for u, i in recs:
            self.covered["all"][i] = True
            self.covered["cold" if self.data.cold_start[u] else "warm"][i] = True


def _model_scoring(data: WorldData, rec: RecommenderConfig, run: RunConfig) -> ModelScoring | None:
    """The deep scorer the serendipity agent plugs in, sized for this world (None: fuzzy only)."""
    name = rec.deep_model
    if name is None:
        return None
    # torch and the model families load only when a run plugs a model in
    from environment.ranking_scorers import SPECS, build_scorer, scale_defaults

    scale = scale_defaults(data.n_users, data.n_items)
    return ModelScoring(
        name,
        functools.partial(build_scorer, name, scale, rec.model_epochs),
        needs_labels=SPECS[name].uses_labels,
        retrain_every=rec.retrain_every,
        seed=run.seed,
        device=rec.device,
        item_domain=data.item_domain,
        target_domain=data.target_domain,
        like_threshold=data.like_threshold,
    )


def _pack(arrays: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _rng_state(rng: np.random.Generator) -> np.ndarray:
    s = rng.bit_generator.state
    return np.array(
        [s["state"]["state"], s["state"]["inc"], s["has_uint32"], s["uinteger"]], dtype=object
    ).astype(str)


def _rng_from(arr: np.ndarray) -> dict[str, Any]:
    return {
        "bit_generator": "PCG64",
        "state": {"state": int(arr[0]), "inc": int(arr[1])},
        "has_uint32": int(arr[2]),
        "uinteger": int(arr[3]),
    }
