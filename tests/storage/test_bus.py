"""Tests of storage/bus.py: messages as rows, posting order, handled exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from storage.bus import Envelope, MessageBus
from storage.repository import Repository
from storage.tables import MessageRecord


class Ask(BaseModel):
    """Throwaway kind: a user asks for n items."""

    user_id: int
    n: int = 10


class Reply(BaseModel):
    """Throwaway kind: ranked items with scores."""

    user_id: int
    items: list[int]
    scores: list[float]


class Unregistered(BaseModel):
    """A kind the bus does not know."""

    x: int


RUN = {
    "name": "bus",
    "variant": "fuzzy",
    "scenario_yaml": "",
    "scenario_hash": "h",
    "seed": 1,
    "code_version": "0",
    "n_steps": 2,
}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    repository = Repository(str(tmp_path / "bus.db"))
    yield repository
    repository.close()


@pytest.fixture
def bus(repo: Repository) -> MessageBus:
    with repo.transaction() as session:
        run_id = repo.create_run(session, **RUN)
    return MessageBus(repo, run_id, {"Ask": Ask, "Reply": Reply})


def test_post_then_inbox_in_posting_order(repo: Repository, bus: MessageBus) -> None:
    reply = Reply(user_id=2, items=[5, 3], scores=[0.75, 0.5])
    with repo.transaction() as session:
        bus.post(session, step=0, sender="user:1", recipient="target", payload=Ask(user_id=1))
        bus.post(session, step=0, sender="ser", recipient="user:2", payload=reply)
        bus.post(session, step=0, sender="ser", recipient="target", payload=reply)
        bus.post(session, step=0, sender="user:3", recipient="target", payload=Ask(user_id=3, n=4))
        inbox = bus.inbox(session, "target")
    assert [(e.sender, e.kind, e.payload) for e in inbox] == [
        ("user:1", "Ask", Ask(user_id=1)),
        ("ser", "Reply", reply),
        ("user:3", "Ask", Ask(user_id=3, n=4)),
    ]
    assert all(isinstance(e, Envelope) and e.recipient == "target" and e.step == 0 for e in inbox)
    assert [e.id for e in inbox] == sorted(e.id for e in inbox)
    with repo.session() as session:
        assert [e.payload for e in bus.inbox(session, "user:2")] == [reply]
        assert bus.inbox(session, "nobody") == []


def test_ids_follow_posting_order_across_flushes(repo: Repository, bus: MessageBus) -> None:
    with repo.transaction() as session:
        for user in range(5):
            bus.post(session, step=1, sender="u", recipient="target", payload=Ask(user_id=user))
            if user == 2:
                bus.flush(session)
    with repo.session() as session:
        inbox = bus.inbox(session, "target")
    assert [e.payload.user_id for e in inbox] == [0, 1, 2, 3, 4]  # type: ignore[attr-defined]
    assert [e.id for e in inbox] == list(range(inbox[0].id, inbox[0].id + 5))


def test_kind_filter(repo: Repository, bus: MessageBus) -> None:
    with repo.transaction() as session:
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=1))
        bus.post(
            session,
            step=0,
            sender="a",
            recipient="t",
            payload=Reply(user_id=1, items=[], scores=[]),
        )
        assert [e.kind for e in bus.inbox(session, "t", kinds={"Reply"})] == ["Reply"]
        assert [e.kind for e in bus.inbox(session, "t", kinds=["Ask", "Reply"])] == ["Ask", "Reply"]
        assert bus.inbox(session, "t", kinds=[]) == []
        with pytest.raises(ValueError, match="Unregistered"):
            bus.inbox(session, "t", kinds=["Unregistered"])


def test_mark_handled_empties_the_inbox(repo: Repository, bus: MessageBus) -> None:
    with repo.transaction() as session:
        for user in range(3):
            bus.post(session, step=0, sender="u", recipient="t", payload=Ask(user_id=user))
        first, second, third = bus.inbox(session, "t")
        bus.mark_handled(session, [first.id, third.id], step=0)
        assert bus.inbox(session, "t") == [second]
        assert (bus.count(session), bus.count(session, handled=True)) == (3, 2)
        assert bus.count(session, handled=False) == 1
    with repo.transaction() as session:
        bus.mark_handled(session, [second.id], step=1)
        assert bus.inbox(session, "t") == []
    with repo.session() as session:
        rows = session.execute(select(MessageRecord).order_by(MessageRecord.id)).scalars().all()  # type: ignore[arg-type]
    assert [row.handled_step for row in rows] == [0, 1, 0]
    assert all(row.handled_at is not None and row.handled_at >= row.created_at for row in rows)


def test_handling_twice_raises_and_changes_nothing(repo: Repository, bus: MessageBus) -> None:
    with repo.transaction() as session:
        bus.post(session, step=0, sender="u", recipient="t", payload=Ask(user_id=1))
        bus.post(session, step=0, sender="u", recipient="t", payload=Ask(user_id=2))
        first, second = bus.inbox(session, "t")
        bus.mark_handled(session, [first.id], step=0)
    with repo.transaction() as session:
        with pytest.raises(ValueError, match="already handled"):
            bus.mark_handled(session, [second.id, first.id], step=1)
        with pytest.raises(ValueError, match="more than once"):
            bus.mark_handled(session, [second.id, second.id], step=1)
        with pytest.raises(LookupError):
            bus.mark_handled(session, [second.id, second.id + 100], step=1)
        # None of the failed calls marked `second`.
        assert bus.inbox(session, "t") == [second]
        bus.mark_handled(session, [], step=1)
        assert bus.count(session, handled=True) == 1


def test_unknown_kinds_are_rejected(repo: Repository, bus: MessageBus) -> None:
    class Ask(BaseModel):  # same name as a registered kind, another class
        user_id: int

    with repo.transaction() as session:
        with pytest.raises(ValueError, match="unknown message kind 'Unregistered'"):
            bus.post(session, step=0, sender="a", recipient="b", payload=Unregistered(x=1))
        with pytest.raises(TypeError, match="is not a"):
            bus.post(session, step=0, sender="a", recipient="b", payload=Ask(user_id=1))
        assert bus.count(session) == 0
    with pytest.raises(ValueError, match="names class"):
        MessageBus(repo, bus.run_id, {"Question": Ask})
    with pytest.raises(ValueError, match="pydantic"):
        MessageBus(repo, bus.run_id, {"dict": dict})  # type: ignore[dict-item]


def test_posts_reach_the_table_on_commit_only(repo: Repository, bus: MessageBus) -> None:
    with repo.transaction() as session:
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=1))
    with pytest.raises(RuntimeError), repo.transaction() as session:
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=2))
        raise RuntimeError("the step failed")
    with repo.session() as session:
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=3))
        # Read sessions see their own posts but never commit them.
        assert [e.payload.user_id for e in bus.inbox(session, "t")] == [1, 3]  # type: ignore[attr-defined]
    with repo.transaction() as session:
        assert [e.payload.user_id for e in bus.inbox(session, "t")] == [1]  # type: ignore[attr-defined]
        assert bus.count(session) == 1


@pytest.mark.parametrize("touch_first", [False, True])
def test_rolled_back_posts_do_not_leak_into_the_next_commit(
    repo: Repository, bus: MessageBus, touch_first: bool
) -> None:
    with repo.session() as session:
        if touch_first:
            bus.count(session)  # a statement has already begun the transaction
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=9))
        session.rollback()
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=1))
        session.commit()
    session = repo.session()
    bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=8))
    session.close()  # without committing; the session object stays usable
    bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=2))
    session.commit()
    session.close()
    with repo.session() as session:
        assert [e.payload.user_id for e in bus.inbox(session, "t")] == [1, 2]  # type: ignore[attr-defined]


def test_runs_do_not_see_each_other(repo: Repository, bus: MessageBus) -> None:
    with repo.transaction() as session:
        other_run = repo.create_run(session, **RUN)
    other = MessageBus(repo, other_run, {"Ask": Ask})
    with repo.transaction() as session:
        bus.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=1))
        other.post(session, step=0, sender="a", recipient="t", payload=Ask(user_id=2))
        mine = bus.inbox(session, "t")
        theirs = other.inbox(session, "t")
        assert [e.payload for e in mine] == [Ask(user_id=1)]
        assert [e.payload for e in theirs] == [Ask(user_id=2)]
        with pytest.raises(LookupError):
            bus.mark_handled(session, [theirs[0].id], step=0)
        assert (bus.count(session), other.count(session)) == (1, 1)
