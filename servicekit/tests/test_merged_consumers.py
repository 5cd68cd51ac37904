"""Events cost per batch: a batch's inbox rows in one statement, and one durable consumer
dispatching to the handlers that several durables ran before, taking over from them on a real
NATS server without applying an event twice or missing one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import event, insert

from aftersales.events.v1 import events_pb2
from servicekit import bus
from servicekit.db import Database
from servicekit.dead_letters import EVENT_ID_HEADER, REPLAY_FOR_HEADER
from servicekit.inbox import TAKE_OVER_MARGIN, EventConsumer, Former, Handler
from servicekit.metrics import INBOX_HANDLED
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.testing import DatabaseTarget, database_with, eventually
from servicekit.tests.test_messaging import RECEIVED, inbox, metadata, new_event, outbox
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


def noting(seen: list[str]) -> Handler:
    """A handler that notes the order ids it applied."""

    async def handler(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        seen.append(event.order_id)

    return handler


def consumer(
    db: Database,
    js: bus.JetStreamContext,
    name: str,
    subject: str,
    handlers: dict[str, Any],
    formers: list[Former] | None = None,
    take_over_margin: timedelta = TAKE_OVER_MARGIN,
) -> EventConsumer:
    return EventConsumer(
        service="t",
        name=name,
        stream="ORDERS",
        subjects=[subject],
        handlers=handlers,
        new_uow=lambda: UnitOfWork(db, outbox, lambda: None),
        inbox=inbox,
        js=js,
        formers=formers or [],
        take_over_margin=take_over_margin,
        linger_seconds=0.01,
    )


async def publish(
    js: bus.JetStreamContext, subject: str, order: events_pb2.OrderReceived, **headers: str
) -> None:
    await js.publish(
        subject,
        order.SerializeToString(),
        headers={MSG_ID_HEADER: order.meta.event_id, EVENT_TYPE_HEADER: RECEIVED, **headers},
    )


async def record_in_inbox(db: Database, name: str, event_id: str) -> None:
    async with db.session() as session:
        await session.execute(
            insert(inbox).values(consumer=name, event_id=event_id, handled_at=utc_now())
        )
        await session.commit()


@contextlib.asynccontextmanager
async def running(target: EventConsumer, js: bus.JetStreamContext) -> AsyncIterator[None]:
    task = asyncio.create_task(target.run(js))
    try:
        yield
    finally:
        target.stop()
        await task


class InboxReads(contextlib.AbstractAsyncContextManager[None]):
    """Counts the SELECTs from the inbox while entered."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine.sync_engine
        self.count = 0

    def _note(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM inbox" in statement:
            self.count += 1

    async def __aenter__(self) -> None:
        event.listen(self.engine, "before_cursor_execute", self._note)

    async def __aexit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._note)


def reaches(seen: list[str], wanted: list[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return sorted(seen) == sorted(wanted)

    return check


async def test_a_batch_notes_its_events_in_one_statement_and_skips_those_seen(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    name = f"batch-{store}"
    applied: list[str] = []
    target = consumer(
        db, js, name, subject, {RECEIVED: (events_pb2.OrderReceived, noting(applied))}
    )
    orders = [new_event(store) for _ in range(3)]
    for order in orders:
        await publish(js, subject, order)
    # The second was handled already (its ack was lost).
    await record_in_inbox(db, name, orders[1].meta.event_id)
    reader = await js.pull_subscribe(subject, stream="ORDERS")
    messages = await reader.fetch(3, timeout=5)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "inbox" in statement and statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    duplicates_before = INBOX_HANDLED.labels("t", name, "duplicate")._value.get()
    try:
        await target.handle_batch(messages)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
        await reader.unsubscribe()
    assert len(statements) == 1
    assert applied == [orders[0].order_id, orders[2].order_id]
    assert INBOX_HANDLED.labels("t", name, "duplicate")._value.get() == duplicates_before + 1


async def test_a_merged_consumer_takes_over_without_applying_twice_or_missing(
    db: Database, js: bus.JetStreamContext
) -> None:
    """Two formers stand at different places: `received` handled orders 1-3, `history` only
    order 1 and (its ack lost) order 2. The merged consumer starts at the lower ack floor and
    runs each former's handler only for what that former had not recorded."""
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    by_received: list[str] = []
    by_history: list[str] = []
    received = Former(
        f"received-{store}", {RECEIVED: (events_pb2.OrderReceived, noting(by_received))}
    )
    history = Former(f"history-{store}", {RECEIVED: (events_pb2.OrderReceived, noting(by_history))})
    orders = [new_event(store) for _ in range(5)]
    ids = [order.order_id for order in orders]

    await publish(js, subject, orders[0])
    old_received = consumer(db, js, received.name, subject, received.handlers)
    old_history = consumer(db, js, history.name, subject, history.handlers)
    async with running(old_received, js):
        async with running(old_history, js):
            await eventually(reaches(by_history, ids[:1]))
        for order in orders[1:3]:
            await publish(js, subject, order)
        await eventually(reaches(by_received, ids[:3]))
    await record_in_inbox(db, history.name, orders[1].meta.event_id)
    await publish(js, subject, orders[3])

    merged_name = f"merged-{store}"
    merged = consumer(db, js, merged_name, subject, {}, [received, history])
    lookups = InboxReads(db)
    async with lookups, running(merged, js):
        await eventually(reaches(by_received, ids[:4]))
        await eventually(reaches(by_history, [ids[0], ids[2], ids[3]]))
        for former in (received, history):
            with pytest.raises(NotFoundError):
                await js.consumer_info("ORDERS", former.name)

    assert lookups.count > 0
    # Started again, it keeps its place (and its start) and goes on with new events; those
    # stored after it took over (and the margin) the formers cannot have handled.
    await publish(js, subject, orders[4])
    again = consumer(db, js, merged_name, subject, {}, [received, history], timedelta(0))
    lookups = InboxReads(db)
    async with lookups, running(again, js):
        await eventually(reaches(by_history, [ids[0], ids[2], ids[3], ids[4]]))
        await eventually(reaches(by_received, ids))
        info = await js.consumer_info("ORDERS", merged_name)
        assert info.num_pending == 0
    assert sorted(by_received) == sorted(ids)
    assert lookups.count == 0


async def test_a_dead_letter_of_a_former_replays_to_its_handlers_alone(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    by_received: list[str] = []
    by_history: list[str] = []
    received = Former(
        f"received-{store}", {RECEIVED: (events_pb2.OrderReceived, noting(by_received))}
    )
    history = Former(f"history-{store}", {RECEIVED: (events_pb2.OrderReceived, noting(by_history))})
    merged = consumer(db, js, f"merged-{store}", subject, {}, [received, history])
    order = new_event(store)
    # What `dead-letters replay` sends for a letter `history` left before the merge.
    replay = {
        MSG_ID_HEADER: f"{order.meta.event_id}:replay:1",
        EVENT_ID_HEADER: order.meta.event_id,
        REPLAY_FOR_HEADER: history.name,
    }
    async with running(merged, js):
        await publish(js, subject, order, **replay)
        await eventually(reaches(by_history, [order.order_id]))
        # Twice (a redelivery): the inbox, under the former's name, skips it.
        await publish(js, subject, order, **{**replay, MSG_ID_HEADER: f"{order.meta.event_id}:2"})

        async def settled() -> bool:
            info = await js.consumer_info("ORDERS", merged.name)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(settled)
    assert by_history == [order.order_id]
    assert by_received == []
