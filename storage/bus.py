"""The message bus: agents talk through rows of the ``message`` table (ARCHITECTURE.md section 2).

A message kind is a pydantic model; its class name is the row's ``kind`` and its JSON the row's
``payload``. Posts are buffered per session and written with one Core executemany when the
session next reads the bus (:meth:`MessageBus.inbox`, :meth:`MessageBus.mark_handled`,
:meth:`MessageBus.count`), on :meth:`MessageBus.flush`, or just before the session commits. One
buffer per session, appended in posting order and written in that order by one statement, is what
makes ids increase in posting order; a rollback (or a session closed without committing) drops
the buffer with the rest of the transaction.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import BaseModel
from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from storage.repository import Repository
from storage.tables import MessageRecord, utcnow

logger = logging.getLogger(__name__)

# Well under SQLite's 32,766 bound parameters per statement (and PostgreSQL's 65,535).
_IN_CHUNK = 5_000

_MESSAGES = MessageRecord.__table__
_COLUMNS = _MESSAGES.c  # type: ignore[attr-defined]

# Prebuilt with an expanding bind parameter: building `id.in_(ids)` afresh coerces every id and
# cost more than running the statement.
_IDS = bindparam("ids", expanding=True)
_OF_RUN = (_COLUMNS.run_id == bindparam("run_id"), _COLUMNS.id.in_(_IDS))
_COUNT_HANDLED = select(func.count(), func.count(_COLUMNS.handled_step)).where(*_OF_RUN)
_HANDLED_STEPS = select(_COLUMNS.id, _COLUMNS.handled_step).where(*_OF_RUN)
_MARK_HANDLED = (
    update(_MESSAGES)
    .where(_COLUMNS.id.in_(_IDS))
    .values(
        handled_step=bindparam("b_step", type_=_COLUMNS.handled_step.type),
        handled_at=bindparam("b_now", type_=_COLUMNS.handled_at.type),
    )
)


@dataclass(frozen=True)
class Envelope:
    """A message as a recipient reads it: the row's header and its parsed payload."""

    id: int
    step: int
    sender: str
    recipient: str
    kind: str
    payload: BaseModel


class MessageBus:
    """Messages between agents are rows of the message table; nothing passes in memory.

    Attributes:
        run_id: The run whose messages this bus reads and writes.
    """

    def __init__(
        self, repo: Repository, run_id: int, registry: Mapping[str, type[BaseModel]]
    ) -> None:
        """Create a bus for a run.

        Args:
            repo: The run's repository.
            run_id: The run.
            registry: Every message kind the bus carries, ``{class name: class}``.

        Raises:
            ValueError: A registry entry is not a pydantic model class, or its key is not the
                class's name (such a kind could never be posted: a message's kind is its
                payload's class name).
        """
        for kind, cls in registry.items():
            if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
                raise ValueError(f"message kind {kind!r} is not a pydantic model class: {cls!r}")
            if cls.__name__ != kind:
                raise ValueError(f"message kind {kind!r} names class {cls.__name__!r}")
        self.run_id = run_id
        self._repo = repo
        self._registry: dict[str, type[BaseModel]] = dict(registry)
        # Weak keys: a session that goes away takes its (by then uncommitted) posts with it.
        self._pending: weakref.WeakKeyDictionary[Session, list[dict[str, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def post(
        self, session: Session, *, step: int, sender: str, recipient: str, payload: BaseModel
    ) -> None:
        """Queue a message; it reaches the table with the session's next bus read or commit.

        Args:
            session: The session of the step's transaction.
            step: The step the message belongs to.
            sender: The sending agent's name.
            recipient: The receiving agent's name.
            payload: The message, an instance of a registered kind.

        Raises:
            ValueError: The payload's class name is not a registered kind.
            TypeError: The payload is not an instance of the class registered under its name.
        """
        kind = type(payload).__name__
        cls = self._registry.get(kind)
        if cls is None:
            raise ValueError(f"unknown message kind {kind!r}; registered: {sorted(self._registry)}")
        if not isinstance(payload, cls):
            raise TypeError(f"payload {payload!r} is not a {cls.__module__}.{cls.__qualname__}")
        row = {
            "run_id": self.run_id,
            "step": step,
            "sender": sender,
            "recipient": recipient,
            "kind": kind,
            "payload": payload.model_dump_json(),
            "created_at": utcnow(),
        }
        if not session.in_transaction():
            # Start (lazily, no connection yet) the transaction the post belongs to, so that a
            # rollback or close that comes before any statement still discards it.
            session.begin()
        self._buffer(session).append(row)

    def flush(self, session: Session) -> None:
        """Write the session's queued posts (one executemany, in posting order)."""
        rows = self._pending.get(session)
        if rows:
            self._pending[session] = []
            self._repo.insert_rows(session, MessageRecord, rows)

    def inbox(
        self, session: Session, recipient: str, *, kinds: Collection[str] | None = None
    ) -> list[Envelope]:
        """The recipient's unhandled messages, oldest first, with parsed payloads.

        Args:
            session: The session of the step's transaction.
            recipient: The receiving agent's name.
            kinds: Only these kinds (all when ``None``).

        Returns:
            The messages ordered by id (posting order).

        Raises:
            ValueError: ``kinds`` names an unregistered kind, or a stored message has one.
        """
        statement = (
            select(
                _COLUMNS.id,
                _COLUMNS.step,
                _COLUMNS.sender,
                _COLUMNS.recipient,
                _COLUMNS.kind,
                _COLUMNS.payload,
            )
            .where(
                _COLUMNS.run_id == self.run_id,
                _COLUMNS.recipient == recipient,
                _COLUMNS.handled_step.is_(None),
            )
            .order_by(_COLUMNS.id)
        )
        if kinds is not None:
            unknown = set(kinds) - set(self._registry)
            if unknown:
                raise ValueError(f"unknown message kinds {sorted(unknown)}")
            statement = statement.where(_COLUMNS.kind.in_(list(kinds)))
        self.flush(session)
        envelopes = []
        for id_, step, sender, recipient_, kind, payload in session.execute(statement):
            cls = self._registry.get(kind)
            if cls is None:
                raise ValueError(f"message {id_} has unregistered kind {kind!r}")
            envelopes.append(
                Envelope(id_, step, sender, recipient_, kind, cls.model_validate_json(payload))
            )
        return envelopes

    def mark_handled(self, session: Session, ids: Sequence[int], step: int) -> None:
        """Mark messages handled at a step; a message is handled exactly once.

        All ids are checked before any is marked, so a failed call changes nothing.

        Args:
            session: The session of the step's transaction.
            ids: The messages' ids.
            step: The step that handled them.

        Raises:
            ValueError: An id was already handled, or appears twice in ``ids``.
            LookupError: An id is not a message of this run.
        """
        wanted = [int(id_) for id_ in ids]
        if not wanted:
            return
        if len(set(wanted)) != len(wanted):
            raise ValueError("the same message id appears more than once")
        self.flush(session)
        found = already = 0
        for chunk in _chunks(wanted):
            # Two counts, not the rows: the usual all-clear costs one tiny result per chunk.
            params = {"run_id": self.run_id, "ids": chunk}
            n_found, n_handled = session.execute(_COUNT_HANDLED, params).one()
            found, already = found + n_found, already + n_handled
        if found != len(wanted) or already:
            self._refuse(session, wanted)
        now = utcnow()
        for chunk in _chunks(wanted):
            session.execute(_MARK_HANDLED, {"ids": chunk, "b_step": step, "b_now": now})

    def _refuse(self, session: Session, wanted: list[int]) -> NoReturn:
        handled: dict[int, int | None] = {}
        for chunk in _chunks(wanted):
            rows = session.execute(_HANDLED_STEPS, {"run_id": self.run_id, "ids": chunk})
            handled.update((id_, done) for id_, done in rows)
        missing = [id_ for id_ in wanted if id_ not in handled]
        if missing:
            raise LookupError(f"no messages with ids {missing[:10]} in run {self.run_id}")
        again = [(id_, handled[id_]) for id_ in wanted if handled[id_] is not None]
        raise ValueError(f"messages already handled (id, step): {again[:10]}")

    def count(self, session: Session, *, handled: bool | None = None) -> int:
        """How many messages the run has (only handled or unhandled ones when asked)."""
        self.flush(session)
        statement = select(func.count()).select_from(_MESSAGES)
        statement = statement.where(_COLUMNS.run_id == self.run_id)
        if handled is not None:
            column = _COLUMNS.handled_step
            statement = statement.where(column.is_not(None) if handled else column.is_(None))
        return int(session.execute(statement).scalar_one())

    def _buffer(self, session: Session) -> list[dict[str, Any]]:
        rows = self._pending.get(session)
        if rows is None:
            rows = self._pending[session] = []
            event.listen(session, "before_commit", self.flush)
            event.listen(session, "after_transaction_end", self._drop_unwritten)
        return rows

    def _drop_unwritten(self, session: Session, transaction: SessionTransaction) -> None:
        # Reached with posts still queued only when the outer transaction ended without a
        # commit (rolled back or closed): they belong to it and vanish with it.
        if transaction.nested or transaction.parent is not None:
            return
        rows = self._pending.get(session)
        if rows:
            logger.debug(
                "dropping %d messages posted in a transaction that did not commit", len(rows)
            )
            self._pending[session] = []


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + _IN_CHUNK] for start in range(0, len(ids), _IN_CHUNK)]
