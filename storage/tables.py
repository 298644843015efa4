"""SQLModel tables of a SerenSim run (ARCHITECTURE.md section 5).

One database may hold many runs: every table but ``run`` carries ``run_id`` (a foreign key with
an index, cascading on delete) so that any question about a run starts from one indexed column.
Rows of the hot per-step tables are written with SQLAlchemy Core executemany
(:meth:`storage.repository.Repository.insert_rows`), so the classes here are mostly schemas; the
ORM side is used for the few single-row reads and writes (run bookkeeping).

Enumerated string columns carry CHECK constraints so that a typo in an agent fails at insert
time instead of silently splitting a series in the report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Dialect, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed")
USER_KINDS: tuple[str, ...] = ("honest", "adversarial")
RATING_ORIGINS: tuple[str, ...] = ("history", "feedback")
TRUST_CAUSES: tuple[str, ...] = ("init", "sweep", "liked", "disliked")
METRIC_GROUPS: tuple[str, ...] = (
    "all",
    "cold",
    "warm",
    "adversarial",
)  # attackers: reputation only


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only kind the tables accept)."""
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    # Quoted because some column names ("group") are SQL keywords.
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f'"{column}" IN ({allowed})', name=name)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite has no time-zone type and returns naive values; normalising here keeps the tables'
    datetimes comparable across backends. Naive datetimes are rejected because their zone is a
    guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC before it is written."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one (storage.utcnow())")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to values read from backends that drop the zone."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _run_fk() -> Any:
    return Field(foreign_key="run.id", index=True, ondelete="CASCADE")


class RunRecord(SQLModel, table=True):
    """One simulation run: what was run (scenario, seed, code version) and how far it got."""

    __tablename__ = "run"
    __table_args__ = (_one_of("status", RUN_STATUSES, "ck_run_status"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    variant: str
    scenario_yaml: str = Field(sa_type=Text)
    scenario_hash: str
    seed: int
    code_version: str
    status: str = "running"
    error: str | None = Field(default=None, sa_type=Text)
    last_step: int = -1
    n_steps: int
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DomainRecord(SQLModel, table=True):
    """A domain of the world (the target domain and the source domains)."""

    __tablename__ = "domain"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    domain_id: int
    name: str
    is_target: bool


class ItemRecord(SQLModel, table=True):
    """An item of a domain, with its popularity (number of ratings) in the world's data."""

    __tablename__ = "item"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    item_id: int
    domain_id: int
    label: str
    popularity: int


class UserRecord(SQLModel, table=True):
    """A simulated user as the world created them (the visible part of their ground truth)."""

    __tablename__ = "user"
    __table_args__ = (_one_of("kind", USER_KINDS, "ck_user_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    user_id: int
    kind: str
    cold_start: bool
    arrival_step: int
    curiosity: float


class RatingRecord(SQLModel, table=True):
    """A rating, from the initial history (step -1) or from feedback.

    ``available_step`` is the first step at which recommender agents may see the rating; a
    cold-start user's history is stored up front but appears on arrival. Ids never get reused
    (SQLite AUTOINCREMENT) because agents read new ratings incrementally with ``after_id``;
    the (run, available_step, domain) index serves the other incremental read, the ratings
    that became visible since the last step.
    """

    __tablename__ = "rating"
    __table_args__ = (
        Index("ix_rating_run_domain_id", "run_id", "domain_id", "id"),
        Index("ix_rating_run_available_domain", "run_id", "available_step", "domain_id"),
        _one_of("origin", RATING_ORIGINS, "ck_rating_origin"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    user_id: int
    item_id: int
    domain_id: int
    rating: float
    step: int
    origin: str
    available_step: int


class MessageRecord(SQLModel, table=True):
    """A message between agents: the bus is this table (see :mod:`storage.bus`).

    Ids never get reused (SQLite AUTOINCREMENT): recommendations cite their request by id.
    """

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_run_recipient_handled", "run_id", "recipient", "handled_step"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    step: int
    sender: str
    recipient: str
    kind: str
    payload: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    handled_step: int | None = None
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RecommendationRecord(SQLModel, table=True):
    """One ranked recommendation with every component score behind it.

    ``rules`` is JSON ``[[rule_no, strength], ...]`` (the fuzzy rules that fired),
    ``neighbours`` a JSON list of the contributing user ids, ``request_id`` the id of the
    request message it answers.
    """

    __tablename__ = "recommendation"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    step: int
    user_id: int
    item_id: int
    rank: int
    prediction: float | None = None
    relevance: float | None = None
    novelty: float | None = None
    unexpectedness: float | None = None
    serendipity: float | None = None
    score: float
    rules: str = Field(sa_type=Text)
    neighbours: str = Field(sa_type=Text)
    request_id: int


class FeedbackRecord(SQLModel, table=True):
    """What a user did with a recommendation, next to the ground truth only the world knows."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    step: int
    user_id: int
    item_id: int
    consumed: bool
    rating: float | None = None
    liked: bool
    serendipitous: bool
    true_utility: float
    truly_serendipitous: bool


class TrustRecord(SQLModel, table=True):
    """A change of one trust value (never a dense matrix per step)."""

    __tablename__ = "trust"
    __table_args__ = (_one_of("cause", TRUST_CAUSES, "ck_trust_cause"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    step: int
    truster: int
    trustee: int
    value: float
    cause: str


class ReputationRecord(SQLModel, table=True):
    """A user's reputation at a step."""

    __tablename__ = "reputation"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    step: int
    user_id: int
    value: float


class MetricRecord(SQLModel, table=True):
    """A metric value for a step (or the whole run, step -1) and a user group."""

    __tablename__ = "metric"
    __table_args__ = (
        Index("ix_metric_run_name", "run_id", "name"),
        _one_of("group", METRIC_GROUPS, "ck_metric_group"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    step: int
    name: str
    group: str
    value: float | None = None


class AgentStateRecord(SQLModel, table=True):
    """The latest committed snapshot of an agent's state, one row per (run, agent)."""

    __tablename__ = "agent_state"
    __table_args__ = (UniqueConstraint("run_id", "agent", name="uq_agent_state_run_agent"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    agent: str
    step: int
    blob: bytes = Field(sa_type=LargeBinary)


ALL_TABLES: tuple[type[SQLModel], ...] = (
    RunRecord,
    DomainRecord,
    ItemRecord,
    UserRecord,
    RatingRecord,
    MessageRecord,
    RecommendationRecord,
    FeedbackRecord,
    TrustRecord,
    ReputationRecord,
    MetricRecord,
    AgentStateRecord,
)
"""Every table of a SerenSim database, parents first."""

PER_STEP_TABLES: tuple[type[SQLModel], ...] = (
    RatingRecord,
    MessageRecord,
    RecommendationRecord,
    FeedbackRecord,
    TrustRecord,
    ReputationRecord,
    MetricRecord,
    AgentStateRecord,
)
"""Tables whose rows belong to a step of a run (their ``step`` column says which)."""
