"""The unit of work's collection of the events aggregates record: pure, then on a database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import pytest
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy import select

from aftersales.events.v1 import customer_events_pb2
from servicekit.db import Database, new_metadata
from servicekit.outbox import fill_meta, outbox_table
from servicekit.testing import DatabaseTarget, database_with
from servicekit.uow import UnitOfWork, collect


@dataclass
class Mutable:
    name: str
    pending_events: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Value:
    name: str
    pending_events: tuple[str, ...] = ()


def translate(aggregate: Mutable | Value, event: str) -> tuple[str, Message]:
    return f"{aggregate.name}.{event}", StringValue(value=event)


def subjects(rows: list[tuple[str, Message]]) -> list[str]:
    return [subject for subject, _ in rows]


def test_events_go_out_aggregate_by_aggregate_in_the_order_each_recorded_them() -> None:
    first = Mutable("a", ["opened", "noted"])
    second = Value("b", ("closed",))
    rows = collect([(first, translate), (second, translate)])
    assert subjects(rows) == ["a.opened", "a.noted", "b.closed"]
    assert [message for _, message in rows] == [
        StringValue(value="opened"),
        StringValue(value="noted"),
        StringValue(value="closed"),
    ]


def test_a_mutable_aggregate_is_drained_so_nothing_goes_out_twice() -> None:
    order = Mutable("a", ["opened"])
    assert subjects(collect([(order, translate)])) == ["a.opened"]
    assert order.pending_events == []
    assert collect([(order, translate)]) == []


def test_an_aggregate_tracked_twice_is_collected_once() -> None:
    order = Mutable("a", ["opened"])
    assert subjects(collect([(order, translate), (order, translate)])) == ["a.opened"]


def test_an_immutable_value_carries_the_events_of_every_change_so_far() -> None:
    found = Value("c")
    after = replace(found, pending_events=(*found.pending_events, "taken", "recorded"))
    assert subjects(collect([(after, translate)])) == ["c.taken", "c.recorded"]


def test_nothing_recorded_is_nothing_to_send() -> None:
    assert collect([(Mutable("a"), translate), (Value("b"), translate)]) == []


# On a real database: the outbox rows are written in the committing transaction -------------

metadata = new_metadata()
outbox = outbox_table(metadata)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


def closed(aggregate: Mutable | Value, event: str) -> tuple[str, Message]:
    message = customer_events_pb2.ComplaintClosed(complaint_id=aggregate.name, outcome=event)
    fill_meta(message.meta, "SH", "SH-001")
    return f"customers.SH.SH-001.{event}", message


async def outbox_subjects(db: Database) -> list[str]:
    async with db.session() as session:
        found = await session.execute(select(outbox.c.subject).order_by(outbox.c.seq))
        return [row.subject for row in found]


async def test_a_commit_writes_the_tracked_aggregates_events_and_wakes_the_relay(
    db: Database,
) -> None:
    woken: list[bool] = []
    async with UnitOfWork(db, outbox, lambda: woken.append(True)) as uow:
        uow.track(Mutable("c-1", ["resolved"]), closed)
        uow.track(Value("c-2", ("withdrawn",)), closed)
        await uow.commit()
    assert await outbox_subjects(db) == [
        "customers.SH.SH-001.resolved",
        "customers.SH.SH-001.withdrawn",
    ]
    assert woken == [True]


async def test_a_unit_that_does_not_commit_sends_nothing(db: Database) -> None:
    woken: list[bool] = []
    async with UnitOfWork(db, outbox, lambda: woken.append(True)) as uow:
        uow.track(Mutable("c-1", ["resolved"]), closed)
    assert await outbox_subjects(db) == []
    assert woken == []


async def test_work_at_commit_runs_once_per_key_in_the_committing_transaction(
    db: Database,
) -> None:
    ran: list[str] = []

    async def note(name: str) -> None:
        ran.append(name)

    async with UnitOfWork(db, outbox, lambda: None) as uow:
        for name in ("first", "second", "last"):
            uow.at_commit("mark", lambda name=name: note(name))  # type: ignore[misc]
        uow.at_commit("other", lambda: note("other"))
        await uow.commit()
        await uow.commit()
    assert ran == ["last", "other"]


async def test_work_at_commit_does_not_run_when_the_unit_does_not_commit(db: Database) -> None:
    ran: list[str] = []

    async def note() -> None:
        ran.append("mark")

    async with UnitOfWork(db, outbox, lambda: None) as uow:
        uow.at_commit("mark", note)
    assert ran == []
