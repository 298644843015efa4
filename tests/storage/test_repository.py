"""Tests of storage/repository.py: URLs, SQLite settings, transactions, runs, reads, resume."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text

from storage.repository import Repository, database_url
from storage.tables import (
    AgentStateRecord,
    DomainRecord,
    MessageRecord,
    MetricRecord,
    RatingRecord,
    RecommendationRecord,
    ReputationRecord,
    TrustRecord,
    UserRecord,
    utcnow,
)

RUN = {
    "name": "quick",
    "variant": "fuzzy",
    "scenario_yaml": "steps: 3\n",
    "scenario_hash": "h1",
    "seed": 11,
    "code_version": "0.1.0",
    "n_steps": 3,
}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    repository = Repository(str(tmp_path / "runs" / "test.db"))
    yield repository
    repository.close()


@pytest.fixture
def run_id(repo: Repository) -> int:
    with repo.transaction() as session:
        return repo.create_run(session, **RUN)


def count(repo: Repository, table: Any, run_id: int | None = None) -> int:
    statement = select(func.count()).select_from(table)
    if run_id is not None:
        statement = statement.where(table.run_id == run_id)
    with repo.session() as session:
        return int(session.execute(statement).scalar_one())


def rating(run_id: int, user: int, item: int, domain: int, value: float, **kw: Any) -> dict:
    row = {
        "run_id": run_id,
        "user_id": user,
        "item_id": item,
        "domain_id": domain,
        "rating": value,
        "step": -1,
        "origin": "history",
        "available_step": -1,
    }
    return row | kw


def test_database_url_of_a_bare_path_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.db"
    assert database_url(str(target)) == f"sqlite:///{target.as_posix()}"
    assert target.parent.is_dir() and not target.exists()
    assert database_url("runs/x.db") == "sqlite:///runs/x.db"


def test_database_url_passes_urls_through(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'u' / 'y.db').as_posix()}"
    assert database_url(url) == url
    assert (tmp_path / "u").is_dir()
    assert database_url("postgresql://me@host/db") == "postgresql://me@host/db"
    assert database_url(":memory:") == "sqlite://"
    with pytest.raises(ValueError, match="not a database URL"):
        database_url("sqlite:://x")
    with pytest.raises(ValueError, match="cannot open"):
        Repository("nonsense://host/db")


def test_sqlite_pragmas_on_every_connection(repo: Repository) -> None:
    for _ in range(2):
        with repo.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        repo.engine.dispose()  # the next round opens a fresh DBAPI connection


def test_open_existing_only(tmp_path: Path, repo: Repository, run_id: int) -> None:
    missing = tmp_path / "nowhere" / "none.db"
    with pytest.raises(FileNotFoundError, match=r"none\.db"):
        Repository(str(missing), create=False)
    assert not missing.parent.exists()

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ValueError, match="not a SerenSim database"):
        Repository(str(other), create=False)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all, not even close" * 20)
    with pytest.raises(ValueError, match="not a readable database"):
        Repository(str(garbage), create=False)

    existing = Repository(repo.url, create=False)
    assert [run.id for run in existing.runs()] == [run_id]
    existing.close()


def test_in_memory_database_is_shared_by_sessions() -> None:
    with Repository(":memory:") as memory:
        with memory.transaction() as session:
            run_id = memory.create_run(session, **RUN)
        assert memory.get_run(run_id) is not None
        assert memory.url == "sqlite://"


def test_transaction_commits_or_rolls_back(repo: Repository, run_id: int) -> None:
    row = {"run_id": run_id, "step": 0, "user_id": 1, "value": 0.5}
    with pytest.raises(RuntimeError, match="boom"), repo.transaction() as session:
        repo.insert_rows(session, ReputationRecord, [row, row])
        repo.create_run(session, **RUN)
        raise RuntimeError("boom")
    assert count(repo, ReputationRecord) == 0
    assert len(repo.runs()) == 1
    with repo.transaction() as session:
        repo.insert_rows(session, ReputationRecord, [row, row])
    assert count(repo, ReputationRecord) == 2


def test_insert_rows_fills_defaults_and_ignores_empty(repo: Repository, run_id: int) -> None:
    message = {"run_id": run_id, "step": 0, "sender": "a", "recipient": "b", "kind": "K"}
    with repo.transaction() as session:
        repo.insert_rows(session, MessageRecord, [message | {"payload": "{}"}])
        repo.insert_rows(session, TrustRecord, [])
    with repo.session() as session:
        stored = session.execute(select(MessageRecord)).scalars().one()
    assert stored.handled_step is None
    assert abs((utcnow() - stored.created_at).total_seconds()) < 60


def test_create_run_defaults_and_validation(repo: Repository, run_id: int) -> None:
    run = repo.get_run(run_id)
    assert run is not None
    assert (run.status, run.last_step, run.error, run.finished_at) == ("running", -1, None, None)
    assert (run.name, run.seed, run.n_steps) == ("quick", 11, 3)
    assert repo.get_run(run_id + 1) is None
    with pytest.raises(TypeError, match="colour"), repo.transaction() as session:
        repo.create_run(session, colour="red", **RUN)
    with pytest.raises(ValueError, match="status"), repo.transaction() as session:
        repo.create_run(session, **RUN | {"status": "paused"})
    with pytest.raises(ValueError, match="seed"), repo.transaction() as session:
        repo.create_run(session, **RUN | {"seed": "abc"})
    assert len(repo.runs()) == 1


def test_set_run_status(repo: Repository, run_id: int) -> None:
    with repo.transaction() as session:
        repo.set_run_status(session, run_id, "running", last_step=1)
    assert repo.get_run(run_id).last_step == 1  # type: ignore[union-attr]
    with repo.transaction() as session:
        repo.set_run_status(session, run_id, "failed", error="Traceback...", finished=True)
    failed = repo.get_run(run_id)
    assert failed is not None
    assert (failed.status, failed.error, failed.last_step) == ("failed", "Traceback...", 1)
    assert failed.finished_at is not None and failed.finished_at >= failed.started_at
    with repo.transaction() as session:  # a resume
        repo.set_run_status(session, run_id, "running")
    resumed = repo.get_run(run_id)
    assert resumed is not None
    assert (resumed.status, resumed.error, resumed.finished_at) == ("running", None, None)
    with pytest.raises(ValueError, match="status"), repo.transaction() as session:
        repo.set_run_status(session, run_id, "done")
    with pytest.raises(LookupError), repo.transaction() as session:
        repo.set_run_status(session, run_id + 5, "failed")


def test_runs_in_creation_order(repo: Repository, run_id: int) -> None:
    with repo.transaction() as session:
        second = repo.create_run(session, **RUN | {"name": "second"})
    assert [(run.id, run.name) for run in repo.runs()] == [(run_id, "quick"), (second, "second")]


def test_ratings_filters(repo: Repository, run_id: int) -> None:
    with repo.transaction() as session:
        other = repo.create_run(session, **RUN)
        rows = [
            rating(run_id, 0, 10, 0, 4.0),
            rating(run_id, 1, 20, 1, 2.5),
            rating(run_id, 2, 11, 0, 3.0, available_step=2),  # a cold-start user's history
            rating(other, 9, 99, 0, 1.0),
            rating(run_id, 0, 12, 0, 5.0, step=1, origin="feedback", available_step=1),
        ]
        repo.insert_rows(session, RatingRecord, rows)
        ids, users, items, values, domains = repo.ratings(session, run_id)
    assert ids.dtype == np.int64 and values.dtype == np.float64 and domains.dtype == np.int64
    assert np.all(np.diff(ids) > 0)
    np.testing.assert_array_equal(users, [0, 1, 2, 0])
    np.testing.assert_array_equal(items, [10, 20, 11, 12])
    np.testing.assert_array_equal(values, [4.0, 2.5, 3.0, 5.0])
    np.testing.assert_array_equal(domains, [0, 1, 0, 0])
    with repo.session() as session:
        _, _, items0, _, _ = repo.ratings(session, run_id, domain_id=0)
        _, _, seen, _, _ = repo.ratings(session, run_id, visible_at=1)
        _, _, before, _, _ = repo.ratings(session, run_id, visible_at=-1)
        _, _, newer, _, _ = repo.ratings(session, run_id, after_id=int(ids[1]))
        _, _, mix, _, _ = repo.ratings(
            session, run_id, domain_id=0, after_id=int(ids[0]), visible_at=1
        )
        # What became visible at step 2 after step 1: the cold-start history, nothing older.
        _, _, window, _, _ = repo.ratings(session, run_id, visible_after=1, visible_at=2)
        _, _, first, _, _ = repo.ratings(
            session, run_id, domain_id=0, visible_after=-2, visible_at=0
        )
        empty = repo.ratings(session, run_id, domain_id=7)
    np.testing.assert_array_equal(items0, [10, 11, 12])
    np.testing.assert_array_equal(seen, [10, 20, 12])
    np.testing.assert_array_equal(before, [10, 20])
    np.testing.assert_array_equal(newer, [11, 12])
    np.testing.assert_array_equal(mix, [12])
    np.testing.assert_array_equal(window, [11])
    np.testing.assert_array_equal(first, [10])
    assert len(empty) == 5 and all(array.shape == (0,) for array in empty)
    assert [array.dtype for array in empty] == [np.int64] * 3 + [np.float64, np.int64]


def test_agent_state_upsert(repo: Repository, run_id: int) -> None:
    with repo.transaction() as session:
        repo.save_agent_state(session, run_id, "trust", 0, b"a")
        repo.save_agent_state(session, run_id, "target", 0, b"t0")
    with repo.transaction() as session:
        repo.save_agent_state(session, run_id, "trust", 1, b"\x00b")
    assert repo.load_agent_states(run_id) == {"trust": (1, b"\x00b"), "target": (0, b"t0")}
    assert count(repo, AgentStateRecord) == 2
    assert repo.load_agent_states(run_id + 1) == {}


def test_metrics_frame(repo: Repository, run_id: int) -> None:
    empty = repo.metrics_frame(run_id)
    assert list(empty.columns) == ["step", "name", "group", "value"] and len(empty) == 0
    rows = [
        {"run_id": run_id, "step": 0, "name": "hr@10", "group": "all", "value": 0.25},
        {"run_id": run_id, "step": 0, "name": "hr@10", "group": "cold", "value": None},
        {"run_id": run_id, "step": -1, "name": "mae", "group": "all", "value": 0.75},
    ]
    with repo.transaction() as session:
        repo.insert_rows(session, MetricRecord, rows)
    frame = repo.metrics_frame(run_id)
    assert list(frame.columns) == ["step", "name", "group", "value"]
    assert frame["step"].tolist() == [0, 0, -1]
    assert frame["name"].tolist() == ["hr@10", "hr@10", "mae"]
    assert frame["group"].tolist() == ["all", "cold", "all"]
    values = frame["value"].tolist()
    assert values[0] == 0.25 and math.isnan(values[1]) and values[2] == 0.75
    assert str(frame["step"].dtype) == "int64" and str(frame["value"].dtype) == "float64"


def setup_rows(run: int) -> dict[Any, list[dict[str, Any]]]:
    user = dict(run_id=run, user_id=5, kind="honest", cold_start=True, arrival_step=3)
    return {
        DomainRecord: [dict(run_id=run, domain_id=0, name="d", is_target=True)],
        UserRecord: [user | {"curiosity": 0.5}],
        RatingRecord: [rating(run, 5, 1, 0, 3.0, available_step=3)],
        MetricRecord: [dict(run_id=run, step=-1, name="m", group="all", value=1.0)],
    }


def step_rows(run: int, step: int) -> dict[Any, list[dict[str, Any]]]:
    header = dict(run_id=run, step=step)
    handled = step + 1 if step < 3 else None
    return {
        RatingRecord: [rating(run, 5, step, 0, 4.0, step=step, origin="feedback")],
        MessageRecord: [
            header | dict(sender="u", recipient="t", kind="K", payload="{}", handled_step=handled)
        ],
        RecommendationRecord: [
            header
            | dict(user_id=5, item_id=1, rank=0, score=0.5, rules="[]", neighbours="[]")
            | {"request_id": 1}
        ],
        TrustRecord: [header | dict(truster=5, trustee=6, value=0.5, cause="liked")],
        MetricRecord: [header | dict(name="m", group="all", value=1.0)],
    }


def test_truncate_after_removes_later_rows_only(repo: Repository, run_id: int) -> None:
    with repo.transaction() as session:
        other = repo.create_run(session, **RUN)
    for run in (run_id, other):
        with repo.transaction() as session:
            for table, rows in setup_rows(run).items():
                repo.insert_rows(session, table, rows)
            for step in range(4):
                for table, rows in step_rows(run, step).items():
                    repo.insert_rows(session, table, rows)
                repo.save_agent_state(session, run, f"agent{step}", step, b"x")

    with repo.transaction() as session:
        repo.truncate_after(session, run_id, 1)

    with repo.session() as session:

        def steps(table: Any, run: int) -> list[int]:
            statement = select(table.step).where(table.run_id == run).order_by(table.id)
            return list(session.execute(statement).scalars())

        assert steps(RatingRecord, run_id) == [-1, 0, 1]
        assert steps(MessageRecord, run_id) == [0, 1]
        assert steps(RecommendationRecord, run_id) == [0, 1]
        assert steps(TrustRecord, run_id) == [0, 1]
        assert steps(MetricRecord, run_id) == [-1, 0, 1]
        handled = select(MessageRecord.handled_step).where(MessageRecord.run_id == run_id)
        # Handled at step 2, after the cut: it must wait for its handler again.
        assert list(session.execute(handled.order_by(MessageRecord.id)).scalars()) == [1, None]
        for table in (RatingRecord, MessageRecord, RecommendationRecord, TrustRecord):
            assert steps(table, other) == ([-1] if table is RatingRecord else []) + [0, 1, 2, 3]
    assert set(repo.load_agent_states(run_id)) == {"agent0", "agent1"}
    assert len(repo.load_agent_states(other)) == 4
    assert count(repo, DomainRecord, run_id) == 1 and count(repo, UserRecord, run_id) == 1
