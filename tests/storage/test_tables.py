"""Tests of storage/tables.py: schema, round trips, constraints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel

from storage.repository import Repository
from storage.tables import (
    ALL_TABLES,
    PER_STEP_TABLES,
    AgentStateRecord,
    DomainRecord,
    FeedbackRecord,
    ItemRecord,
    MessageRecord,
    MetricRecord,
    RatingRecord,
    RecommendationRecord,
    ReputationRecord,
    RunRecord,
    TrustRecord,
    UserRecord,
)

T0 = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    repository = Repository(str(tmp_path / "tables.db"))
    yield repository
    repository.close()


def run_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "r",
        "variant": "fuzzy",
        "scenario_yaml": "steps: 3\n",
        "scenario_hash": "abc",
        "seed": 7,
        "code_version": "0.1.0+g1",
        "n_steps": 3,
    }
    return fields | overrides


def new_run(repo: Repository) -> int:
    with repo.transaction() as session:
        return repo.create_run(session, **run_fields())


def one_of_each(run_id: int) -> list[SQLModel]:
    return [
        DomainRecord(run_id=run_id, domain_id=0, name="books", is_target=True),
        ItemRecord(run_id=run_id, item_id=4, domain_id=0, label="Dune", popularity=12),
        UserRecord(
            run_id=run_id,
            user_id=3,
            kind="adversarial",
            cold_start=True,
            arrival_step=2,
            curiosity=0.25,
        ),
        RatingRecord(
            run_id=run_id,
            user_id=3,
            item_id=4,
            domain_id=0,
            rating=4.5,
            step=-1,
            origin="history",
            available_step=2,
        ),
        MessageRecord(
            run_id=run_id,
            step=1,
            sender="user:3",
            recipient="target",
            kind="Ask",
            payload='{"user_id": 3}',
            created_at=T0,
            handled_step=1,
            handled_at=T0 + timedelta(seconds=1),
        ),
        RecommendationRecord(
            run_id=run_id,
            step=1,
            user_id=3,
            item_id=4,
            rank=0,
            prediction=4.1,
            relevance=None,
            novelty=0.5,
            unexpectedness=0.75,
            serendipity=0.6,
            score=0.6,
            rules="[[3, 0.5]]",
            neighbours="[1, 2]",
            request_id=1,
        ),
        FeedbackRecord(
            run_id=run_id,
            step=1,
            user_id=3,
            item_id=4,
            consumed=True,
            rating=None,
            liked=False,
            serendipitous=True,
            true_utility=0.8,
            truly_serendipitous=False,
        ),
        TrustRecord(run_id=run_id, step=1, truster=3, trustee=1, value=0.625, cause="liked"),
        ReputationRecord(run_id=run_id, step=1, user_id=1, value=0.5),
        MetricRecord(run_id=run_id, step=-1, name="hr@10", group="cold", value=None),
        AgentStateRecord(run_id=run_id, agent="trust", step=1, blob=b"\x00\x01\xff"),
    ]


def test_table_names_are_the_documented_ones() -> None:
    names = [table.__tablename__ for table in ALL_TABLES]
    assert names == [
        "run",
        "domain",
        "item",
        "user",
        "rating",
        "message",
        "recommendation",
        "feedback",
        "trust",
        "reputation",
        "metric",
        "agent_state",
    ]
    assert set(PER_STEP_TABLES) <= set(ALL_TABLES)
    assert all("step" in table.model_fields for table in PER_STEP_TABLES)


def test_every_table_but_run_has_an_indexed_run_foreign_key(repo: Repository) -> None:
    inspector = inspect(repo.engine)
    for table in ALL_TABLES[1:]:
        name = str(table.__tablename__)
        foreign_keys = inspector.get_foreign_keys(name)
        assert [(fk["referred_table"], fk["constrained_columns"]) for fk in foreign_keys] == [
            ("run", ["run_id"])
        ], name
        indexed = {tuple(index["column_names"]) for index in inspector.get_indexes(name)}
        assert ("run_id",) in indexed, name


def test_composite_indexes(repo: Repository) -> None:
    inspector = inspect(repo.engine)

    def indexes(table: str) -> set[tuple[str, ...]]:
        return {tuple(index["column_names"]) for index in inspector.get_indexes(table)}

    assert ("run_id", "domain_id", "id") in indexes("rating")
    assert ("run_id", "available_step", "domain_id") in indexes("rating")
    assert ("run_id", "recipient", "handled_step") in indexes("message")
    assert ("run_id", "name") in indexes("metric")


def test_every_table_round_trips(repo: Repository) -> None:
    run_id = new_run(repo)
    originals = one_of_each(run_id)
    expected = [record.model_dump(exclude={"id"}) for record in originals]
    with repo.transaction() as session:
        session.add_all(originals)
    with repo.session() as session:
        for record, want in zip(originals, expected, strict=True):
            loaded = session.execute(select(type(record))).scalars().one()
            assert loaded.model_dump(exclude={"id"}) == want, type(record).__name__
            assert loaded.id is not None


def test_datetimes_come_back_aware_utc(repo: Repository) -> None:
    run_id = new_run(repo)
    plus_two = timezone(timedelta(hours=2))
    with repo.transaction() as session:
        session.add(
            MessageRecord(
                run_id=run_id,
                step=0,
                sender="a",
                recipient="b",
                kind="K",
                payload="{}",
                created_at=datetime(2024, 1, 1, 14, 0, tzinfo=plus_two),
            )
        )
    with repo.session() as session:
        message = session.execute(select(MessageRecord)).scalars().one()
        run = session.get(RunRecord, run_id)
    assert message.created_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert message.created_at.tzinfo is UTC
    assert run is not None and run.started_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - run.started_at) < timedelta(minutes=1)


def test_naive_datetime_is_rejected(repo: Repository) -> None:
    run_id = new_run(repo)
    with pytest.raises(StatementError, match="naive datetime"), repo.transaction() as session:
        session.add(
            MessageRecord(
                run_id=run_id,
                step=0,
                sender="a",
                recipient="b",
                kind="K",
                payload="{}",
                created_at=datetime(2024, 1, 1),
            )
        )


@pytest.mark.parametrize(
    ("table", "column", "bad"),
    [
        (UserRecord, "kind", "robot"),
        (RatingRecord, "origin", "guess"),
        (TrustRecord, "cause", "whim"),
        (MetricRecord, "group", "some"),
    ],
)
def test_enumerated_columns_are_checked(
    repo: Repository, table: type[SQLModel], column: str, bad: str
) -> None:
    run_id = new_run(repo)
    record = next(r for r in one_of_each(run_id) if isinstance(r, table))
    setattr(record, column, bad)
    with pytest.raises(IntegrityError), repo.transaction() as session:
        session.add(record)


def test_run_status_is_checked(repo: Repository) -> None:
    with pytest.raises(IntegrityError), repo.transaction() as session:
        session.add(RunRecord(**run_fields(status="paused")))


def test_foreign_keys_are_enforced(repo: Repository) -> None:
    with pytest.raises(IntegrityError), repo.transaction() as session:
        session.add(ReputationRecord(run_id=99, step=0, user_id=1, value=0.5))


def test_deleting_a_run_cascades(repo: Repository) -> None:
    keep, drop = new_run(repo), new_run(repo)
    with repo.transaction() as session:
        session.add_all(one_of_each(keep) + one_of_each(drop))
    with repo.transaction() as session:
        session.execute(delete(RunRecord).where(RunRecord.id == drop))  # type: ignore[arg-type]
    with repo.session() as session:
        for table in ALL_TABLES[1:]:
            run_ids = session.execute(select(table.run_id)).scalars().all()  # type: ignore[attr-defined]
            assert run_ids == [keep], table.__tablename__


def test_rating_and_message_ids_are_never_reused(repo: Repository) -> None:
    run_id = new_run(repo)
    for table in (RatingRecord, MessageRecord):
        with Session(repo.engine) as session:
            record = next(r for r in one_of_each(run_id) if isinstance(r, table))
            session.add(record)
            session.commit()
            first = record.id
            session.execute(delete(table))
            session.commit()
            again = next(r for r in one_of_each(run_id) if isinstance(r, table))
            session.add(again)
            session.commit()
            assert first is not None and again.id == first + 1
