"""Reading a run back: the latest messages of a step, and the chain behind a user's list.

These return plain data; main.py renders them. They answer the question every run database is
there for: why was item i shown to user u at step t?
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from storage.repository import Repository
from storage.tables import FeedbackRecord, MessageRecord, RecommendationRecord, RunRecord


@dataclass
class MessageLine:
    id: int
    step: int
    sender: str
    recipient: str
    kind: str
    summary: str


def summarise(kind: str, payload: dict[str, Any]) -> str:
    """A short human description of a message payload."""
    u = payload.get("user")
    if kind == "LocalNeighbours":
        extra = (
            f", sparse -> asks {payload['remote_expected']} source(s)" if payload["sparse"] else ""
        )
        return f"user {u}: {len(payload['neighbours'])} local candidates ({payload['n_rated']} target ratings){extra}"
    if kind == "RemoteNeighbours":
        return f"user {u}: {len(payload['neighbours'])} neighbours in {payload['domain']} (cor {payload['correlation']:.3f})"
    if kind == "TrustedNeighbours":
        n = len(payload["neighbours"])
        remote = sum(payload["remote"])
        mean_t = sum(payload["trust"]) / n if n else 0.0
        return f"user {u}: {n} neighbours ({remote} remote), mean trust {mean_t:.3f}"
    if kind == "Candidates":
        return f"user {u}: {len(payload['items'])} candidates from {payload['n_neighbours']} neighbours"
    if kind == "Recommendations":
        items = payload["items"]
        top = ", ".join(f"{it['item']}({it['score']:.2f})" for it in items[:3])
        return f"user {u}: {len(items)} items: {top}{'...' if len(items) > 3 else ''}"
    if kind == "Feedback":
        ev = payload["events"]
        liked = sum(e["liked"] for e in ev)
        seren = sum(e["serendipitous"] for e in ev)
        return f"user {u}: rated {len(ev)}, liked {liked}, serendipitous {seren}"
    if kind == "RemoteNeighbourRequest":
        return f"user {u}: find up to {payload['pool']} neighbours"
    if kind == "RecommendRequest":
        return f"user {u} asks for {payload['n']} items"
    return f"user {u}"


def recent_messages(repo: Repository, run_id: int, step: int, limit: int) -> list[MessageLine]:
    with repo.session() as s:
        rows = s.exec(
            select(MessageRecord)
            .where(MessageRecord.run_id == run_id, MessageRecord.step == step)
            .order_by(MessageRecord.id.desc())
            .limit(limit)
        ).all()
    return [
        MessageLine(
            r.id, r.step, r.sender, r.recipient, r.kind, summarise(r.kind, json.loads(r.payload))
        )
        for r in reversed(rows)
    ]


def message_counts(repo: Repository, run_id: int) -> dict[str, tuple[int, int]]:
    """kind -> (posted, handled)."""
    with repo.session() as s:
        rows = s.exec(
            select(MessageRecord.kind, func.count(), func.count(MessageRecord.handled_step))
            .where(MessageRecord.run_id == run_id)
            .group_by(MessageRecord.kind)
        ).all()
    return {k: (int(n), int(h)) for k, n, h in rows}


@dataclass
class UserTrace:
    run: RunRecord
    user: int
    step: int
    messages: list[tuple[MessageRecord, dict[str, Any]]] = field(default_factory=list)
    recommendations: list[RecommendationRecord] = field(default_factory=list)
    feedback: list[FeedbackRecord] = field(default_factory=list)


class TraceError(Exception):
    """Nothing to trace (unknown run or user, no list at that step); one readable line."""


def pick_run(repo: Repository, run_id: int | None, variant: str | None) -> RunRecord:
    runs = repo.runs()
    if not runs:
        raise TraceError("the database holds no runs")
    if run_id is not None:
        chosen = [r for r in runs if r.id == run_id]
    elif variant is not None:
        chosen = [r for r in runs if r.variant == variant]
    else:
        chosen = runs[:1]
    if not chosen:
        names = ", ".join(f"{r.id} ({r.variant})" for r in runs)
        raise TraceError(f"no such run; the database holds: {names}")
    return chosen[-1]


def trace_user(repo: Repository, run: RunRecord, user: int, step: int | None) -> UserTrace:
    with repo.session() as s:
        steps = s.exec(
            select(RecommendationRecord.step)
            .where(RecommendationRecord.run_id == run.id, RecommendationRecord.user_id == user)
            .distinct()
            .order_by(RecommendationRecord.step)
        ).all()
        if not steps:
            raise TraceError(f"user {user} received no list in run {run.id} ({run.variant})")
        if step is None:
            step = steps[-1]
        elif step not in steps:
            raise TraceError(
                f"user {user} received no list at step {step}; lists at steps {list(steps)}"
            )
        msgs = s.exec(
            select(MessageRecord)
            .where(MessageRecord.run_id == run.id, MessageRecord.step == step)
            .order_by(MessageRecord.id)
        ).all()
        chain = [(m, p) for m in msgs if (p := json.loads(m.payload)).get("user") == user]
        recs = s.exec(
            select(RecommendationRecord)
            .where(
                RecommendationRecord.run_id == run.id,
                RecommendationRecord.user_id == user,
                RecommendationRecord.step == step,
            )
            .order_by(RecommendationRecord.rank)
        ).all()
        fb = s.exec(
            select(FeedbackRecord).where(
                FeedbackRecord.run_id == run.id,
                FeedbackRecord.user_id == user,
                FeedbackRecord.step == step,
            )
        ).all()
    return UserTrace(
        run=run, user=user, step=step, messages=chain, recommendations=list(recs), feedback=list(fb)
    )
