"""The repository: one engine over a run database and the reads and writes the simulation needs.

SQLite by default, any SQLAlchemy URL otherwise (ARCHITECTURE.md section 5). A step's rows go in
with Core executemany (:meth:`Repository.insert_rows`) inside one :meth:`Repository.transaction`,
so a crash loses at most the step in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from sqlalchemy import Engine, create_engine, delete, event, insert, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel

from storage.tables import (
    ALL_TABLES,
    PER_STEP_TABLES,
    RUN_STATUSES,
    AgentStateRecord,
    MessageRecord,
    MetricRecord,
    RatingRecord,
    RunRecord,
    utcnow,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

_MEMORY_NAMES = ("", ":memory:")
_RATING_COLUMNS = ("id", "user_id", "item_id", "rating", "domain_id")
_RATING_DTYPE = np.dtype({"names": _RATING_COLUMNS, "formats": ["i8", "i8", "i8", "f8", "i8"]})


def _resolve(target: str) -> tuple[str, Path | None]:
    """Turn a path or URL into (URL, SQLite file or None), touching nothing on disk."""
    if "://" in target:
        try:
            url = make_url(target)
        except ArgumentError as error:
            raise ValueError(f"not a database URL: {target!r} ({error})") from error
        database = url.database or ""
        is_file = url.get_backend_name() == "sqlite" and database not in _MEMORY_NAMES
        is_uri = bool(url.query.get("uri")) or database.startswith("file:")
        return target, (Path(database) if is_file and not is_uri else None)
    if target in _MEMORY_NAMES:
        return "sqlite://", None
    path = Path(target).expanduser()
    return f"sqlite:///{path.as_posix()}", path


def database_url(target: str) -> str:
    """Turn a path or an SQLAlchemy URL into a URL, creating a SQLite file's parent folder.

    Args:
        target: A SQLAlchemy URL (``sqlite:///runs/x.db``, ``postgresql://...``) or a bare path
            (``runs/x.db`` means ``sqlite:///runs/x.db``; ``:memory:`` an in-memory database).

    Returns:
        The SQLAlchemy URL.

    Raises:
        ValueError: ``target`` looks like a URL but is not one.
    """
    url, path = _resolve(target)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return url


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `report`/`trace` read while a run writes; NORMAL is durable enough under WAL (a
    # power cut may lose the last commit, never corrupt); SQLite leaves foreign keys off unless
    # asked on each connection.
    cursor = dbapi_connection.cursor()
    try:
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


class Repository:
    """The database of one or more runs.

    Attributes:
        url: The SQLAlchemy URL of the database.
        engine: The SQLAlchemy engine (one per repository; dispose with :meth:`close`).
    """

    def __init__(self, target: str, *, create: bool = True) -> None:
        """Open (and by default create) a database.

        Args:
            target: A bare path (a SQLite file) or an SQLAlchemy URL.
            create: Create the file and any missing tables (``False``: open existing only).

        Raises:
            FileNotFoundError: ``create`` is false and the SQLite file does not exist.
            ValueError: ``target`` is not a usable URL (bad syntax, unknown dialect, driver
                missing), or (``create`` false) not a SerenSim database.
        """
        url, path = _resolve(target)
        if create:
            url = database_url(target)
        elif path is not None and not path.is_file():
            raise FileNotFoundError(f"no SerenSim database at {path} (the file does not exist)")
        self.url: str = url
        self.engine: Engine = self._make_engine(url)
        if create:
            SQLModel.metadata.create_all(self.engine, tables=[t.__table__ for t in ALL_TABLES])
        else:
            self._check_schema(target)
        logger.debug("opened %s", self.url)

    @staticmethod
    def _make_engine(url: str) -> Engine:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            try:
                return create_engine(url)
            except (ArgumentError, ImportError) as error:  # unknown dialect, driver missing
                raise ValueError(f"cannot open {url}: {error}") from error
        kwargs: dict[str, Any] = {}
        if (parsed.database or "") in _MEMORY_NAMES:
            # One shared connection, or every session would see its own empty database.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine

    def _check_schema(self, target: str) -> None:
        try:
            present = set(inspect(self.engine).get_table_names())
        except DatabaseError as error:
            self.engine.dispose()
            raise ValueError(f"{target} is not a readable database ({error.orig})") from error
        missing = sorted(str(t.__tablename__) for t in ALL_TABLES if t.__tablename__ not in present)
        if missing:
            self.engine.dispose()
            raise ValueError(f"{target} is not a SerenSim database (missing tables: {missing})")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One session in one transaction: committed on success, rolled back on an exception.

        Yields:
            The session; objects loaded through it stay usable after the commit.
        """
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def session(self) -> Session:
        """A session for reading, to use as a context manager (nothing is committed)."""
        return Session(self.engine, expire_on_commit=False)

    def insert_rows(
        self, session: Session, table: type[SQLModel], rows: list[dict[str, Any]]
    ) -> None:
        """Insert many rows with one Core executemany (the hot path of a step).

        Args:
            session: The session of the current transaction.
            table: A table class from :mod:`storage.tables`.
            rows: Column values, one dict per row, all with the same keys; omitted columns take
                their defaults (``id`` is assigned by the database).
        """
        if rows:
            # The Table, not the class: a class target would take the slower ORM bulk path.
            session.execute(insert(table.__table__), rows)  # type: ignore[attr-defined]

    def create_run(self, session: Session, **fields: Any) -> int:
        """Add a run row and return its id.

        Args:
            session: The session of the current transaction.
            **fields: :class:`RunRecord` columns (``name``, ``variant``, ``scenario_yaml``,
                ``scenario_hash``, ``seed``, ``code_version``, ``n_steps``; the others default).

        Returns:
            The new run's id.

        Raises:
            TypeError: A field is not a column of ``run``.
            ValueError: A field fails validation (a wrong type, an unknown status).
        """
        unknown = set(fields) - set(RunRecord.model_fields)
        if unknown:
            raise TypeError(f"unknown run fields: {sorted(unknown)}")
        if fields.get("status", RUN_STATUSES[0]) not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {fields['status']!r}")
        run = RunRecord.model_validate(fields)
        session.add(run)
        session.flush()
        assert run.id is not None  # assigned by the flush
        logger.info("created run %d (%s)", run.id, run.name)
        return run.id

    def set_run_status(
        self,
        session: Session,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        last_step: int | None = None,
        finished: bool = False,
    ) -> None:
        """Record a run's progress or end.

        Args:
            session: The session of the current transaction.
            run_id: The run.
            status: ``"running"``, ``"completed"`` or ``"failed"``.
            error: The error text (replaces the previous one; ``None`` clears it).
            last_step: The last committed step, when it changed.
            finished: Stamp ``finished_at`` now. A run set back to ``"running"`` (a resume)
                loses its ``finished_at``.

        Raises:
            ValueError: ``status`` is not one of the three.
            LookupError: No run has this id.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        run = session.get(RunRecord, run_id)
        if run is None:
            raise LookupError(f"no run with id {run_id}")
        run.status = status
        run.error = error
        if last_step is not None:
            run.last_step = last_step
        if finished:
            run.finished_at = utcnow()
        elif status == "running":
            run.finished_at = None
        session.flush()

    def runs(self) -> list[RunRecord]:
        """Every run in the database, oldest first."""
        statement = select(RunRecord).order_by(RunRecord.id)  # type: ignore[arg-type]
        with self.session() as session:
            return list(session.execute(statement).scalars())

    def get_run(self, run_id: int) -> RunRecord | None:
        """The run with this id, or ``None``."""
        with self.session() as session:
            return session.get(RunRecord, run_id)

    def ratings(
        self,
        session: Session,
        run_id: int,
        *,
        domain_id: int | None = None,
        after_id: int = 0,
        visible_after: int | None = None,
        visible_at: int | None = None,
    ) -> tuple[np.ndarray, ...]:
        """A run's ratings as arrays, ordered by id.

        Args:
            session: Any session (sees the current transaction's inserts).
            run_id: The run.
            domain_id: Only this domain.
            after_id: Only rows with ``id > after_id`` (an incremental read from the last id).
            visible_after: Only ratings that were not yet visible at this step
                (``available_step > visible_after``): with ``visible_at``, the ratings that
                became visible in between, a cold-start history included.
            visible_at: Only ratings recommender agents may see at this step
                (``available_step <= visible_at``).

        Returns:
            ``(ids, user_ids, item_ids, ratings, domain_ids)``, int64 but float64 ``ratings``.
        """
        columns = RatingRecord.__table__.c  # type: ignore[attr-defined]
        statement = (
            select(*(columns[name] for name in _RATING_COLUMNS))
            .where(columns.run_id == run_id)
            .order_by(columns.id)
        )
        if after_id > 0:
            # Only when needed: the term steers SQLite to the id index, away from the
            # available_step one that makes a per-step visibility window ~100x cheaper.
            statement = statement.where(columns.id > after_id)
        if domain_id is not None:
            statement = statement.where(columns.domain_id == domain_id)
        if visible_after is not None:
            statement = statement.where(columns.available_step > visible_after)
        if visible_at is not None:
            statement = statement.where(columns.available_step <= visible_at)
        result = session.execute(statement)
        try:
            # The DBAPI's plain tuples, not SQLAlchemy Rows: 2-3x faster on a million ratings,
            # and these int/float columns have no result processing to skip.
            raw = result.cursor.fetchall()  # type: ignore[attr-defined]
        finally:
            result.close()
        table = np.array(raw, dtype=_RATING_DTYPE)
        return tuple(np.ascontiguousarray(table[name]) for name in _RATING_COLUMNS)

    def save_agent_state(
        self, session: Session, run_id: int, agent: str, step: int, blob: bytes
    ) -> None:
        """Store an agent's snapshot, replacing its previous one (an upsert).

        Args:
            session: The session of the step's transaction (the snapshot commits with it).
            run_id: The run.
            agent: The agent's stable name.
            step: The step the snapshot was taken after.
            blob: The serialised state.
        """
        table = AgentStateRecord.__table__
        columns = table.c  # type: ignore[attr-defined]
        # Update-then-insert instead of a dialect's ON CONFLICT: portable, and one writer per
        # run (inside its transaction) means no race between the two statements.
        result = session.execute(
            update(table)
            .where(columns.run_id == run_id, columns.agent == agent)
            .values(step=step, blob=blob)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            session.execute(insert(table).values(run_id=run_id, agent=agent, step=step, blob=blob))

    def load_agent_states(self, run_id: int) -> dict[str, tuple[int, bytes]]:
        """Every agent's latest committed snapshot: ``{agent: (step, blob)}``."""
        columns = AgentStateRecord.__table__.c  # type: ignore[attr-defined]
        statement = select(columns.agent, columns.step, columns.blob).where(
            columns.run_id == run_id
        )
        with self.session() as session:
            return {agent: (step, bytes(blob)) for agent, step, blob in session.execute(statement)}

    def metrics_frame(self, run_id: int) -> pd.DataFrame:
        """A run's metrics as a frame with columns ``step, name, group, value``, in insertion order.

        A missing value (an undefined metric, e.g. no cold users yet) is NaN.
        """
        import pandas as pd  # deferred: pandas costs ~0.5 s to import and only reports need it

        columns = MetricRecord.__table__.c  # type: ignore[attr-defined]
        statement = (
            select(columns.step, columns.name, columns.group, columns.value)
            .where(columns.run_id == run_id)
            .order_by(columns.id)
        )
        with self.session() as session:
            rows = session.execute(statement).all()
        frame = pd.DataFrame.from_records(
            [tuple(row) for row in rows], columns=["step", "name", "group", "value"]
        )
        return frame.astype({"step": "int64", "value": "float64"})

    def truncate_after(self, session: Session, run_id: int, step: int) -> None:
        """Delete every per-step row of a run with ``step > step`` (before resuming).

        Rows of the world's setup (domains, items, users, the initial history with step -1)
        and whole-run metrics (step -1) stay; agent snapshots taken after ``step`` go; messages
        posted up to ``step`` but handled after it become unhandled again.

        Args:
            session: The session of the transaction that makes the deletion atomic.
            run_id: The run.
            step: The last step to keep.
        """
        deleted: dict[str, int] = {}
        for table_class in PER_STEP_TABLES:
            table = table_class.__table__  # type: ignore[attr-defined]
            result = session.execute(
                delete(table).where(table.c.run_id == run_id, table.c.step > step)
            )
            deleted[table.name] = result.rowcount  # type: ignore[attr-defined]
        messages = MessageRecord.__table__
        session.execute(
            update(messages)
            .where(messages.c.run_id == run_id, messages.c.handled_step > step)
            .values(handled_step=None, handled_at=None)
        )
        logger.info("run %d: removed rows after step %d: %s", run_id, step, deleted)
