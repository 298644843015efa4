"""The trust agent: owns the user-trust relation, confidence and reputation.

It merges local and remote neighbour candidates into the cross-domain similarity Sim_CD,
updates dynamic trust (one R-A sweep per step, the R-B update on each feedback event;
FORMULAS.md sections 2-5) and picks the final neighbourhood N_x.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.base import RoleAgent
from agents.messages import Feedback, LocalNeighbours, RemoteNeighbours, TrustedNeighbours
from models.pipeline import NeighbourOptions, neighbour_evidence, select_neighbours
from models.trust_state import TrustState
from storage.tables import ReputationRecord, TrustRecord

if TYPE_CHECKING:
    from environment.world import World

NAME = "trust"
SWEEP_LOG_MIN_CHANGE = 0.01  # sweep changes smaller than this are not written to the trust table


class ProtocolError(RuntimeError):
    """Messages arrived in an order the pipeline does not allow."""


class TrustAgent(RoleAgent):
    def __init__(self, model: World) -> None:
        super().__init__(model, NAME)
        self.state_ = TrustState(model.data.n_users, model.recommender.trust)
        self.options = NeighbourOptions.of(model.recommender)

    def step(self) -> None:
        envelopes = self.inbox()
        local = [e.payload for e in envelopes if isinstance(e.payload, LocalNeighbours)]
        remote: dict[int, list[RemoteNeighbours]] = defaultdict(list)
        for e in envelopes:
            if isinstance(e.payload, RemoteNeighbours):
                remote[e.payload.user].append(e.payload)
        feedback = [e.payload for e in envelopes if isinstance(e.payload, Feedback)]
        for msg in local:
            if len(remote.get(msg.user, [])) != msg.remote_expected:
                raise ProtocolError(
                    f"user {msg.user}: expected {msg.remote_expected} remote replies, "
                    f"got {len(remote.get(msg.user, []))}"
                )
            self._select(msg, remote.get(msg.user, []))
        if feedback:
            self._credit(feedback)
        self.done(envelopes)

    def _select(self, local: LocalNeighbours, remote: list[RemoteNeighbours]) -> None:
        ids = np.unique(
            np.concatenate(
                [np.asarray(local.neighbours, dtype=np.int64)]
                + [np.asarray(r.neighbours, dtype=np.int64) for r in remote]
            )
        )
        ids = ids[ids != local.user]
        if len(ids) == 0:
            self._post(local, ids, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, bool))
            return

        def aligned(src_ids: list[int], values: list[Any]) -> np.ndarray:
            out = np.full((1, len(ids)), np.nan)
            if src_ids:
                pos = np.searchsorted(ids, np.asarray(src_ids, dtype=np.int64))
                out[0, pos] = np.asarray(values, dtype=float)
            return out

        sim_t = aligned(local.neighbours, [np.nan if s is None else s for s in local.similarity])
        sim, conf = neighbour_evidence(
            sim_t,
            [aligned(r.neighbours, r.similarity) for r in remote],
            [r.correlation for r in remote],
            aligned(local.neighbours, local.co_counts),
            [aligned(r.neighbours, r.co_counts) for r in remote],
            np.array([local.n_rated + sum(r.n_rated for r in remote)]),
        )
        x = np.full(len(ids), local.user, dtype=np.int64)
        before = self.state_.trust(x, ids)
        tau = self.state_.observe(x, ids, sim[0], conf[0])
        self._log_trust(x, ids, before, tau, "init", only_new=True)

        chosen = select_neighbours(sim, tau[None, :], self.options)
        order = chosen.index[0]
        kept = order >= 0
        order = order[kept]
        self._post(
            local,
            ids[order],
            chosen.weights[0, kept],
            chosen.similarity[0, kept],
            chosen.trust[0, kept],
            np.isnan(sim_t[0, order]),
        )

    def _post(
        self,
        local: LocalNeighbours,
        ids: np.ndarray,
        weights: np.ndarray,
        sim: np.ndarray,
        tau: np.ndarray,
        remote: np.ndarray,
    ) -> None:
        self.post(
            "neighbourhood",
            TrustedNeighbours(
                user=local.user,
                neighbours=ids.tolist(),
                weights=np.asarray(weights, float).tolist(),
                similarity=np.asarray(sim, float).tolist(),
                trust=np.asarray(tau, float).tolist(),
                remote=np.asarray(remote, bool).tolist(),
                sparse=local.sparse,
            ),
        )

    def _credit(self, feedback: list[Feedback]) -> None:
        """R-B on each rated item for the neighbours named with it (by default the vouchers,
        who rated it above their own mean; ``TrustConfig.credit``)."""
        xs, ys, liked = [], [], []
        for fb in feedback:
            for ev in fb.events:
                if ev.contributors:
                    xs.append(np.full(len(ev.contributors), fb.user, dtype=np.int64))
                    ys.append(np.asarray(ev.contributors, dtype=np.int64))
                    liked.append(np.full(len(ev.contributors), ev.liked))
        if not xs:
            return
        x, y, ok = np.concatenate(xs), np.concatenate(ys), np.concatenate(liked)
        before, after = self.state_.feedback(x, y, ok)
        cause = np.where(ok, "liked", "disliked")
        self._log_rows(x, y, after, cause)
        del before

    def end_step(self) -> None:
        """One R-A sweep on all known pairs, then the step's reputation rows."""
        x, y, before = self.state_.pairs()
        self.state_.sweep()
        _, _, after = self.state_.pairs()
        changed = np.abs(after - before) >= SWEEP_LOG_MIN_CHANGE
        self._log_rows(x[changed], y[changed], after[changed], np.full(int(changed.sum()), "sweep"))
        rep = self.state_.reputation
        present = np.flatnonzero(self.model.present)
        step, run = self.model.step_no, self.model.run_id
        self.model.repo.insert_rows(
            self.model.session,
            ReputationRecord,
            [
                {"run_id": run, "step": step, "user_id": int(u), "value": float(rep[u])}
                for u in present
            ],
        )

    def _log_trust(
        self,
        x: np.ndarray,
        y: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
        cause: str,
        only_new: bool,
    ) -> None:
        new = before == 0 if only_new else np.ones(len(x), bool)
        self._log_rows(x[new], y[new], after[new], np.full(int(new.sum()), cause))

    def _log_rows(self, x: np.ndarray, y: np.ndarray, value: np.ndarray, cause: np.ndarray) -> None:
        if len(x) == 0:
            return
        step, run = self.model.step_no, self.model.run_id
        self.model.repo.insert_rows(
            self.model.session,
            TrustRecord,
            [
                {
                    "run_id": run,
                    "step": step,
                    "truster": int(a),
                    "trustee": int(b),
                    "value": float(v),
                    "cause": str(c),
                }
                for a, b, v, c in zip(
                    x.tolist(), y.tolist(), value.tolist(), cause.tolist(), strict=True
                )
            ],
        )

    def state(self) -> dict[str, np.ndarray]:
        return self.state_.state_dict()

    def restore(self, state: dict[str, Any]) -> None:
        self.state_ = TrustState.from_state_dict(state, self.model.recommender.trust)
