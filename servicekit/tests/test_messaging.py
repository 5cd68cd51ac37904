"""The outbox and inbox against a real database and a real NATS JetStream server: nothing
committed is lost, nothing is published twice, nothing is handled twice, a database outage is
waited out, poison goes to the dead letters, old inbox entries are pruned."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from aftersales.events.v1 import events_pb2
from servicekit import bus, dead_letters, metrics
from servicekit.auth import maybe_auth, service_identity
from servicekit.db import Database, new_metadata
from servicekit.errors import ServiceUnavailable
from servicekit.inbox import (
    INBOX_KEPT,
    EventConsumer,
    Handler,
    RetryLimits,
    UnprocessableEvent,
    failures_table,
    inbox_table,
    transient,
)
from servicekit.inbox import prune as prune_inbox
from servicekit.metrics import INBOX_HANDLED
from servicekit.outbox import (
    EVENT_TYPE_HEADER,
    MSG_ID_HEADER,
    OutboxRelay,
    fill_meta,
    outbox_table,
)
from servicekit.telemetry import configure_tracing, tracer
from servicekit.testing import DatabaseTarget, database_with, eventually, free_port
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
RECEIVED = events_pb2.OrderReceived.DESCRIPTOR.full_name


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


def new_event(store: str) -> events_pb2.OrderReceived:
    event = events_pb2.OrderReceived(order_id=str(uuid.uuid4()), number="n")
    fill_meta(event.meta, "T", store)
    return event


def order_consumer(
    db: Database,
    js: bus.JetStreamContext,
    name: str,
    subject: str,
    handler: Handler,
    dead_letter_after: int = 5,
) -> EventConsumer:
    """`dead_letter_after`: the ordinary errors after which a message is given up on."""
    return EventConsumer(
        service="t",
        name=name,
        stream="ORDERS",
        subjects=[subject],
        handlers={RECEIVED: (events_pb2.OrderReceived, handler)},
        new_uow=lambda: UnitOfWork(db, outbox, lambda: None),
        inbox=inbox,
        js=js,
        limits=RetryLimits(errors=dead_letter_after),
    )


async def stream_count(js: bus.JetStreamContext, subject: str) -> int:
    sub = await js.pull_subscribe(subject, stream="ORDERS")
    total = 0
    try:
        while True:
            msgs = await sub.fetch(100, timeout=0.5)
            total += len(msgs)
            for m in msgs:
                await m.ack()
    except TimeoutError:
        return total
    finally:
        await sub.unsubscribe()


async def test_a_rolled_back_transaction_publishes_nothing(
    db: Database, js: bus.JetStreamContext
) -> None:
    relay = OutboxRelay("t", db, outbox, js)
    store = uuid.uuid4().hex[:8]
    async with UnitOfWork(db, outbox, relay.notify) as uow:
        await uow.emit(f"orders.v1.T.{store}.order_received", new_event(store))
        # Leaving without commit: the state change and its event both vanish.
    assert await relay.publish_pending() == 0
    assert await stream_count(js, f"orders.v1.T.{store}.>") == 0


async def test_republishing_after_a_crash_is_deduplicated_by_the_stream(
    db: Database, js: bus.JetStreamContext
) -> None:
    relay = OutboxRelay("t", db, outbox, js)
    store = uuid.uuid4().hex[:8]
    async with UnitOfWork(db, outbox, relay.notify) as uow:
        await uow.emit(f"orders.v1.T.{store}.order_received", new_event(store))
        await uow.commit()
    assert relay.wake.is_set()
    assert await relay.publish_pending() == 1
    # A relay that published but crashed before marking the row publishes it again.
    async with db.session() as session:
        await session.execute(outbox.update().values(published_at=None))
        await session.commit()
    assert await relay.publish_pending() == 1
    assert await relay.pending() == 0
    assert await stream_count(js, f"orders.v1.T.{store}.>") == 1


async def test_consumer_handles_each_event_once_and_terminates_poison(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    handled: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        handled.append(event.order_id)

    name = f"test-{store}"
    consumer = order_consumer(db, js, name, subject, on_received)
    event = new_event(store)
    headers = {
        "Nats-Msg-Id": event.meta.event_id,
        "Event-Type": events_pb2.OrderReceived.DESCRIPTOR.full_name,
    }
    await js.publish(subject, event.SerializeToString(), headers=headers)
    # Published again under the same id (a relay retry): the stream drops it.
    await js.publish(
        subject, event.SerializeToString(), headers={**headers, "Nats-Msg-Id": event.meta.event_id}
    )
    poison_before = INBOX_HANDLED.labels("t", name, "poison")._value.get()
    await js.publish(
        subject,
        b"\xff\xff not a protobuf",
        headers={"Nats-Msg-Id": str(uuid.uuid4()), "Event-Type": headers["Event-Type"]},
    )
    task = asyncio.create_task(consumer.run(js))
    try:
        await eventually(
            lambda: asyncio.sleep(
                0, INBOX_HANDLED.labels("t", name, "poison")._value.get() > poison_before
            )
        )
        await eventually(lambda: asyncio.sleep(0, len(handled) >= 1))
    finally:
        consumer.stop()
        await task
    assert handled == [event.order_id]
    async with db.session() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(inbox).where(inbox.c.consumer == name)
            )
            == 1
        )
    info = await js.consumer_info("ORDERS", name)
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_inbox_skips_a_redelivered_event(db: Database, js: bus.JetStreamContext) -> None:
    handled: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        handled.append(event.order_id)

    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    consumer = order_consumer(db, js, f"redelivery-{store}", subject, on_received)
    event = new_event(store)
    await js.publish(
        subject,
        event.SerializeToString(),
        headers={"Nats-Msg-Id": event.meta.event_id, "Event-Type": RECEIVED},
    )
    sub = await js.pull_subscribe(subject, stream="ORDERS")
    [message] = await sub.fetch(1, timeout=5)
    # The same message handed over twice, as after an ack that never reached the server.
    redelivered = dataclasses.replace(message)
    await consumer.handle(message)
    await consumer.handle(redelivered)
    await sub.unsubscribe()
    assert handled == [event.order_id]


async def test_one_failing_event_in_a_batch_does_not_hold_back_the_others(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    events = [new_event(store) for _ in range(3)]
    broken = events[1].order_id

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        if event.order_id == broken:
            raise RuntimeError("a dependency is down")

    name = f"batch-{store}"
    consumer = order_consumer(db, js, name, subject, on_received, dead_letter_after=2)
    for event in events:
        await js.publish(
            subject,
            event.SerializeToString(),
            headers={
                "Nats-Msg-Id": event.meta.event_id,
                "Event-Type": events_pb2.OrderReceived.DESCRIPTOR.full_name,
            },
        )

    def outcome(kind: str) -> float:
        return float(INBOX_HANDLED.labels("t", name, kind)._value.get())

    task = asyncio.create_task(consumer.run(js))
    try:
        await eventually(lambda: asyncio.sleep(0, outcome("poison") == 1), within=15)
    finally:
        consumer.stop()
        await task
    assert outcome("handled") == 2
    assert outcome("retried") == 1
    async with db.session() as session:
        recorded = await session.scalars(select(inbox.c.event_id).where(inbox.c.consumer == name))
        assert set(recorded) == {events[0].meta.event_id, events[2].meta.event_id}


async def test_trace_context_travels_with_the_event(db: Database, js: bus.JetStreamContext) -> None:
    configure_tracing("t", None)
    relay = OutboxRelay("t", db, outbox, js)
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    with tracer("test").start_as_current_span("intake") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        async with UnitOfWork(db, outbox, relay.notify) as uow:
            await uow.emit(subject, new_event(store))
            await uow.commit()
    await relay.publish_pending()
    sub = await js.pull_subscribe(subject, stream="ORDERS")
    [message] = await sub.fetch(1, timeout=5)
    assert message.headers is not None
    assert message.headers["traceparent"].split("-")[1] == trace_id
    await sub.unsubscribe()


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        OSError("network unreachable"),
        TimeoutError(),
        TimeoutError(),
        ServiceUnavailable("inventory is down"),
        DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True),
    ],
    ids=repr,
)
def test_outages_and_timeouts_are_transient(error: Exception) -> None:
    assert transient(error)


def test_an_outage_wrapped_in_another_error_is_transient() -> None:
    try:
        try:
            raise ConnectionResetError("peer went away")
        except ConnectionResetError as cause:
            raise RuntimeError("statement failed") from cause
    except RuntimeError as wrapped:
        assert transient(wrapped)


@pytest.mark.parametrize("error", [RuntimeError("a bug"), KeyError("x"), UnprocessableEvent("no")])
def test_other_failures_are_not_transient(error: Exception) -> None:
    assert not transient(error)


class Outage:
    """A database that can be switched off: while it is off every unit of work fails to
    connect, as against a stopped PostgreSQL. Records when each was tried."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.down = False
        self.tries_while_down: list[float] = []

    def new_uow(self) -> UnitOfWork:
        outage = self

        class Unreachable(UnitOfWork):
            async def __aenter__(self) -> UnitOfWork:
                if outage.down:
                    outage.tries_while_down.append(time.monotonic())
                    raise ConnectionRefusedError(111, "Connection refused")
                return await super().__aenter__()

        return Unreachable(self.db, outbox, lambda: None)


async def publish_events(
    js: bus.JetStreamContext, subject: str, events: list[events_pb2.OrderReceived]
) -> None:
    for event in events:
        await js.publish(
            subject,
            event.SerializeToString(),
            headers={MSG_ID_HEADER: event.meta.event_id, EVENT_TYPE_HEADER: RECEIVED},
        )


async def letters_of(js: bus.JetStreamContext, consumer: str) -> list[dead_letters.DeadLetter]:
    return [letter async for letter in dead_letters.letters(js, "t") if letter.consumer == consumer]


async def test_a_database_outage_is_waited_out_without_a_storm_and_nothing_is_lost(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    handled: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        handled.append(event.order_id)

    outage = Outage(db)
    name = f"outage-{store}"
    consumer = dataclasses.replace(
        order_consumer(db, js, name, subject, on_received, dead_letter_after=2),
        new_uow=outage.new_uow,
        max_probe_delay=1.0,
    )
    events = [new_event(store) for _ in range(5)]
    outage.down = True
    await publish_events(js, subject, events)
    waiting = metrics.CONSUMER_WAITING.labels("t", name)
    task = asyncio.create_task(consumer.run(js))
    try:
        # Down: the consumer stops fetching and probes with growing pauses, well past the
        # number of deliveries after which a failing message would go to the dead letters.
        await eventually(lambda: asyncio.sleep(0, len(outage.tries_while_down) >= 5), within=20)
        assert waiting._value.get() == 1
        outage.down = False
        await eventually(lambda: asyncio.sleep(0, len(handled) == len(events)), within=20)
    finally:
        consumer.stop()
        await task
    gaps = [b - a for a, b in itertools.pairwise(outage.tries_while_down)]
    # The batch and its probe come together; then each probe waits 0.5 s, 1 s, 1 s (the cap).
    assert all(gap >= 0.45 for gap in gaps[1:])
    assert sorted(handled) == sorted(e.order_id for e in events)
    assert waiting._value.get() == 0
    assert INBOX_HANDLED.labels("t", name, "poison")._value.get() == 0
    assert await letters_of(js, name) == []
    info = await js.consumer_info("ORDERS", name)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    assert info.config.max_deliver == -1


async def test_a_handler_losing_its_database_connection_is_retried_past_the_error_limit(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    failures_left = 4
    handled: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            # What SQLAlchemy raises when PostgreSQL restarts under a statement.
            raise DBAPIError("INSERT", None, Exception("terminating"), connection_invalidated=True)
        handled.append(event.order_id)

    name = f"lost-{store}"
    consumer = dataclasses.replace(
        order_consumer(db, js, name, subject, on_received, dead_letter_after=2),
        max_retry_delay=0.2,
    )
    event = new_event(store)
    await publish_events(js, subject, [event])
    task = asyncio.create_task(consumer.run(js))
    try:
        await eventually(lambda: asyncio.sleep(0, handled == [event.order_id]), within=20)
    finally:
        consumer.stop()
        await task
    assert INBOX_HANDLED.labels("t", name, "retried")._value.get() == 4
    assert INBOX_HANDLED.labels("t", name, "poison")._value.get() == 0
    assert await letters_of(js, name) == []


async def test_pruning_the_inbox_forgets_only_old_events(db: Database) -> None:
    consumer = f"prune-{uuid.uuid4().hex[:8]}"
    old, recent = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    async with db.session() as session:
        await session.execute(
            inbox.insert(),
            [
                {"consumer": consumer, "event_id": "old-1", "handled_at": old},
                {"consumer": consumer, "event_id": "old-2", "handled_at": old},
                {"consumer": consumer, "event_id": "recent", "handled_at": recent},
            ],
        )
        await session.commit()
    failures = failures_table(metadata)
    async with db.session() as session:
        await session.execute(
            failures.insert(),
            [
                {
                    "consumer": consumer,
                    "event_id": event_id,
                    "errors": 1,
                    "attempts": 1,
                    "first_failed_at": at,
                    "last_failed_at": at,
                    "last_error": "ValueError: x",
                }
                for event_id, at in (("failed-old", old), ("failed-recent", recent))
            ],
        )
        await session.commit()
    assert await prune_inbox(db, inbox, datetime(2026, 2, 1, tzinfo=UTC)) == 3
    async with db.session() as session:
        left = await session.scalars(select(inbox.c.event_id).where(inbox.c.consumer == consumer))
        assert list(left) == ["recent"]
        failed = await session.scalars(
            select(failures.c.event_id).where(failures.c.consumer == consumer)
        )
        assert list(failed) == ["failed-recent"]


async def test_the_inbox_remembers_an_event_for_as_long_as_its_dead_letter_can_be_replayed(
    db: Database,
) -> None:
    # An event handled now may also lie in the dead letters (a copy a replica gave up on), and
    # an operator may replay that letter until the DEAD_LETTERS stream drops it.
    consumer = f"kept-{uuid.uuid4().hex[:8]}"
    now = utc_now()
    async with db.session() as session:
        await session.execute(
            inbox.insert(),
            {
                "consumer": consumer,
                "event_id": "late-replay",
                "handled_at": now - bus.DEAD_LETTER_RETENTION,
            },
        )
        await session.commit()
    # What the service's hourly pruning does.
    await prune_inbox(db, inbox, now - INBOX_KEPT)
    async with db.session() as session:
        left = await session.scalars(select(inbox.c.event_id).where(inbox.c.consumer == consumer))
        assert list(left) == ["late-replay"]


async def test_the_streams_include_the_dead_letters(js: bus.JetStreamContext) -> None:
    info = await js.stream_info(bus.DEAD_LETTERS_STREAM)
    assert info.config.subjects == ["deadletters.v1.>"]
    assert info.config.num_replicas == 1
    # Run again with the same settings: nothing to change, nothing fails.
    await bus.ensure_streams(js, replicas=1)


async def test_handlers_act_as_the_service_and_their_events_say_so(
    db: Database, js: bus.JetStreamContext
) -> None:
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"
    emitted: list[events_pb2.OrderReceived] = []
    actors: list[object] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        actors.append(maybe_auth())
        emitted.append(new_event(store))

    consumer = order_consumer(db, js, f"actor-{store}", subject, on_received)
    await publish_events(js, subject, [new_event(store)])
    task = asyncio.create_task(consumer.run(js))
    try:
        await eventually(lambda: asyncio.sleep(0, len(emitted) == 1))
    finally:
        consumer.stop()
        await task
    assert actors == [service_identity("t")]
    assert emitted[0].meta.actor_user_id == "service:t"
    assert maybe_auth() is None


class CuttableLink:
    """A TCP proxy in front of PostgreSQL that can be cut (connections dropped, new ones
    refused) and restored on the same port: a real outage, as the driver sees one."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_postgresql_outage_loses_nothing_and_sends_nothing_to_the_dead_letters(
    db_target: DatabaseTarget, db: Database, js: bus.JetStreamContext
) -> None:
    if not db_target.url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: a SQLite file does not go down (run with TEST_DATABASE_URL)")
    url = make_url(db_target.url)
    link = CuttableLink(url.host or "127.0.0.1", url.port or 5432)
    await link.restore()
    remote = Database(url.set(port=link.port).render_as_string(False), db_target.schema)
    store = uuid.uuid4().hex[:8]
    subject = f"orders.v1.T.{store}.order_received"

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        pass

    name = f"pg-outage-{store}"
    consumer = dataclasses.replace(
        order_consumer(db, js, name, subject, on_received, dead_letter_after=2),
        new_uow=lambda: UnitOfWork(remote, outbox, lambda: None),
        max_probe_delay=1.0,
    )
    events = [new_event(store) for _ in range(5)]
    task = asyncio.create_task(consumer.run(js))
    try:
        await remote.ping()
        await link.cut()
        await publish_events(js, subject, events)
        waiting = metrics.CONSUMER_WAITING.labels("t", name)
        await eventually(lambda: asyncio.sleep(0, waiting._value.get() == 1), within=30)
        # Down for a while: long enough for many deliveries if the consumer kept fetching.
        await asyncio.sleep(3)
        await link.restore()
        await eventually(
            lambda: asyncio.sleep(0, INBOX_HANDLED.labels("t", name, "handled")._value.get() == 5),
            within=30,
        )
    finally:
        consumer.stop()
        await task
        await remote.dispose()
        if link.server is not None:
            link.server.close()
    async with db.session() as session:
        recorded = await session.scalars(select(inbox.c.event_id).where(inbox.c.consumer == name))
        assert sorted(recorded) == sorted(e.meta.event_id for e in events)
    assert INBOX_HANDLED.labels("t", name, "poison")._value.get() == 0
    assert await letters_of(js, name) == []
    info = await js.consumer_info("ORDERS", name)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    # Paused while down: the five came back once or twice each, not once per probe.
    assert info.num_redelivered <= 5
