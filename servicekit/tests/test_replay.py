"""Replaying the archive (servicekit.replay) against a real NATS JetStream server and a real
database: every archived event applied once, in batches, up to where the archive stood at the
start; a live consumer and a replay never apply an event twice; copies of dead letters and
events no handler can take are skipped; events out of the inbox's horizon leave no inbox row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from nats.js.api import DiscardPolicy, StreamConfig, StreamSource
from sqlalchemy import Column, Integer, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from aftersales.events.v1 import events_pb2
from servicekit import bus, replay
from servicekit.db import Database, new_metadata
from servicekit.dead_letters import EVENT_ID_HEADER, REPLAY_FOR_HEADER
from servicekit.inbox import EventConsumer, Handler, Handlers, UnprocessableEvent, inbox_table
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta, outbox_table
from servicekit.replay import Reader, consumer_filter, subject_matches, subjects_overlap
from servicekit.testing import DatabaseTarget, database_with, eventually
from servicekit.uow import UnitOfWork

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
RECEIVED = events_pb2.OrderReceived.DESCRIPTOR.full_name
# A read model: orders received per store.
received = Table(
    "received",
    metadata,
    Column("store_id", String(30), primary_key=True),
    Column("orders", Integer, nullable=False),
)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


async def count_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
    if event.number == "unprocessable":
        raise UnprocessableEvent("not an order")
    insert = (postgresql if uow.session.dialect.name == "postgresql" else sqlite).insert
    statement = insert(received).values(store_id=event.meta.store_id, orders=1)
    await uow.session.execute(
        statement.on_conflict_do_update(
            index_elements=["store_id"], set_={"orders": received.c.orders + 1}
        )
    )


HANDLERS: Handlers = {RECEIVED: (events_pb2.OrderReceived, count_received)}


def reader(b: str, handler: Handler = count_received) -> Reader:
    """A consumer `t-orders` of one test's branch."""
    return Reader(
        "t-orders", (f"orders.v1.{b}.>",), {RECEIVED: (events_pb2.OrderReceived, (handler,))}
    )


def new_uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db, outbox, lambda: None)


def live_consumer(db: Database, js: bus.JetStreamContext, name: str, subject: str) -> EventConsumer:
    return EventConsumer(
        service="t",
        name=name,
        stream="ORDERS",
        subjects=[subject],
        handlers=HANDLERS,
        new_uow=lambda: new_uow(db),
        inbox=inbox,
        js=js,
    )


async def publish(
    js: bus.JetStreamContext, branch: str, store: str, number: str = "n", **headers: str
) -> events_pb2.OrderReceived:
    event = events_pb2.OrderReceived(order_id=str(uuid.uuid4()), number=number)
    fill_meta(event.meta, branch, store)
    await js.publish(
        f"orders.v1.{branch}.{store}.order_received",
        event.SerializeToString(),
        headers={MSG_ID_HEADER: event.meta.event_id, EVENT_TYPE_HEADER: RECEIVED, **headers},
    )
    return event


async def archived(js: bus.JetStreamContext, subject: str, count: int) -> None:
    """Wait until the archive holds `count` messages on `subject` (it copies asynchronously)."""

    async def there() -> bool:
        info = await js.stream_info(bus.ARCHIVE_STREAM, subjects_filter=subject)
        return sum((info.state.subjects or {}).values()) >= count

    await eventually(there)


async def per_store(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(select(received.c.store_id, received.c.orders))
    return {store: orders for store, orders in rows}


async def inbox_rows(db: Database, consumer: str) -> int:
    async with db.session() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(inbox).where(inbox.c.consumer == consumer)
                )
            ).scalar_one()
        )


def branch() -> str:
    return f"B{uuid.uuid4().hex[:8].upper()}"


async def test_a_replay_applies_every_archived_event_once_in_batches(
    db: Database, js: bus.JetStreamContext
) -> None:
    b = branch()
    for store in ["S1", "S1", "S2", "S1", "S2", "S3", "S1"]:
        await publish(js, b, f"{b}-{store}")
    await archived(js, f"orders.v1.{b}.>", 7)

    done = await replay.replay(
        js, bus.ARCHIVE_STREAM, [reader(b)], lambda: new_uow(db), inbox, "t", batch_size=3
    )

    assert await per_store(db) == {f"{b}-S1": 4, f"{b}-S2": 2, f"{b}-S3": 1}
    assert (done.applied, done.batches, done.unprocessable, done.handled_live) == (7, 3, 0, 0)
    # Recent events leave their inbox rows, so a live consumer seeing them again skips them.
    assert await inbox_rows(db, "t-orders") == 7
    # The replay's consumer is gone.
    names = [c.name for c in await js.consumers_info(bus.ARCHIVE_STREAM)]
    assert not [name for name in names if name.startswith("replay-")]


async def test_a_replay_stops_where_the_archive_stood_when_it_began(
    db: Database, js: bus.JetStreamContext
) -> None:
    b = branch()
    await publish(js, b, f"{b}-S1")
    await publish(js, b, f"{b}-S1")
    await archived(js, f"orders.v1.{b}.>", 2)
    published_during: list[events_pb2.OrderReceived] = []

    async def count_and_publish(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        await count_received(uow, event)
        if not published_during:
            published_during.append(await publish(js, b, f"{b}-S1"))

    done = await replay.replay(
        js,
        bus.ARCHIVE_STREAM,
        [reader(b, count_and_publish)],
        lambda: new_uow(db),
        inbox,
        "t",
        batch_size=1,
    )

    assert published_during
    assert done.applied == 2
    assert await per_store(db) == {f"{b}-S1": 2}


async def test_a_live_consumer_and_a_replay_apply_each_event_once(
    db: Database, js: bus.JetStreamContext
) -> None:
    b = branch()
    subject = f"orders.v1.{b}.>"
    first = [await publish(js, b, f"{b}-S1") for _ in range(3)]
    await archived(js, subject, 3)
    consumer = live_consumer(db, js, f"t-live-{b}", subject)
    await consumer.set_up(js)
    subscription = await js.pull_subscribe_bind(durable=consumer.name, stream="ORDERS")
    # The live consumer handles the first event only, then the replay runs.
    [message] = await subscription.fetch(1, timeout=5)
    await consumer.handle_batch([message])
    assert await per_store(db) == {f"{b}-S1": 1}

    done = await replay.replay(
        js, bus.ARCHIVE_STREAM, [Reader.of(consumer)], lambda: new_uow(db), inbox, "t"
    )

    assert (done.applied, done.handled_live) == (2, 1)
    assert await per_store(db) == {f"{b}-S1": 3}
    # The live consumer catches up: the two the replay applied are duplicates to it.
    rest = await subscription.fetch(2, timeout=5)
    await consumer.handle_batch(rest)
    assert all(m.is_acked for m in rest)
    assert await per_store(db) == {f"{b}-S1": 3}
    assert {m.headers[MSG_ID_HEADER] for m in [message, *rest] if m.headers} == {
        e.meta.event_id for e in first
    }
    await subscription.unsubscribe()
    await js.delete_consumer("ORDERS", consumer.name)


async def test_dead_letter_copies_and_unprocessable_events_are_skipped(
    db: Database, js: bus.JetStreamContext
) -> None:
    b = branch()
    store = f"{b}-S1"
    event = await publish(js, b, store)
    # A dead letter's replay of it: the original is in the archive already.
    await js.publish(
        f"orders.v1.{b}.{store}.order_received",
        event.SerializeToString(),
        headers={
            MSG_ID_HEADER: f"{event.meta.event_id}:replay:1",
            EVENT_ID_HEADER: event.meta.event_id,
            EVENT_TYPE_HEADER: RECEIVED,
            REPLAY_FOR_HEADER: "t-orders",
        },
    )
    await publish(js, b, store, number="unprocessable")
    await js.publish(
        f"orders.v1.{b}.{store}.order_received",
        b"\xff not protobuf",
        headers={MSG_ID_HEADER: str(uuid.uuid4()), EVENT_TYPE_HEADER: RECEIVED},
    )
    await publish(js, b, store)
    await archived(js, f"orders.v1.{b}.>", 5)

    done = await replay.replay(js, bus.ARCHIVE_STREAM, [reader(b)], lambda: new_uow(db), inbox, "t")

    assert await per_store(db) == {store: 2}
    assert (done.applied, done.unprocessable) == (2, 2)


async def test_events_beyond_the_inbox_horizon_leave_no_inbox_row(
    db: Database, js: bus.JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = branch()
    await publish(js, b, f"{b}-S1")
    await publish(js, b, f"{b}-S1")
    await archived(js, f"orders.v1.{b}.>", 2)
    # As if they had been stored longer ago than anything can bring them back.
    monkeypatch.setattr(replay, "INBOX_KEPT", timedelta(0))

    done = await replay.replay(js, bus.ARCHIVE_STREAM, [reader(b)], lambda: new_uow(db), inbox, "t")

    assert done.applied == 2
    assert await per_store(db) == {f"{b}-S1": 2}
    assert await inbox_rows(db, "t-orders") == 0


async def test_the_archive_keeps_what_the_thirty_day_stream_lost(
    db: Database, js: bus.JetStreamContext
) -> None:
    b = branch()
    await publish(js, b, f"{b}-S1")
    await archived(js, f"orders.v1.{b}.>", 1)
    await js.purge_stream("ORDERS", subject=f"orders.v1.{b}.>")
    info = await js.stream_info("ORDERS", subjects_filter=f"orders.v1.{b}.>")
    assert not info.state.subjects

    await replay.replay(js, bus.ARCHIVE_STREAM, [reader(b)], lambda: new_uow(db), inbox, "t")

    assert await per_store(db) == {f"{b}-S1": 1}


async def test_the_archive_is_compressed_kept_for_years_and_never_purged(
    js: bus.JetStreamContext,
) -> None:
    config = (await js.stream_info(bus.ARCHIVE_STREAM)).config
    assert {source.name for source in config.sources or []} == set(bus.STREAMS)
    assert config.compression == "s2"
    assert (config.max_age or 0) >= timedelta(days=5 * 365).total_seconds()
    assert config.discard == "new"
    assert config.deny_purge and config.deny_delete
    with pytest.raises(Exception, match="purge"):
        await js.purge_stream(bus.ARCHIVE_STREAM)


def test_subjects_match_as_nats_matches_them() -> None:
    assert subject_matches("orders.v1.SH.SH-001.order_received", "orders.v1.>")
    assert subject_matches("orders.v1.SH.SH-001.order_received", "orders.v1.*.*.order_received")
    assert not subject_matches("orders.v1", "orders.v1.>")
    assert not subject_matches("orders.v1.SH.x", "orders.v1.*")
    assert not subject_matches("inventory.v1.SH.x", "orders.>")
    assert subject_matches("orders.v1", "orders.v1")


async def test_waiting_for_the_archive_to_hold_what_its_sources_hold(
    js: bus.JetStreamContext,
) -> None:
    b = branch()
    for _ in range(3):
        await publish(js, b, f"{b}-S1")
    # At once after the publishing, the copies may still be on their way.
    await replay.wait_for_sources(js, bus.ARCHIVE_STREAM)
    info = await js.stream_info(bus.ARCHIVE_STREAM, subjects_filter=f"orders.v1.{b}.>")
    assert sum((info.state.subjects or {}).values()) == 3


async def test_a_full_archive_is_found_behind_its_sources(js: bus.JetStreamContext) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    source, archive = f"SOURCE_{tag}", f"ARCHIVE_{tag}"
    await js.add_stream(StreamConfig(name=source, subjects=[f"{tag}.>"]))
    await js.add_stream(
        StreamConfig(
            name=archive,
            sources=[StreamSource(name=source)],
            max_msgs=1,
            discard=DiscardPolicy.NEW,
        )
    )
    try:
        await js.publish(f"{tag}.a", b"1")
        await replay.wait_for_sources(js, archive)
        await js.publish(f"{tag}.a", b"2")  # no room for its copy

        with pytest.raises(TimeoutError, match=f"{archive} is behind {source}"):
            await replay.wait_for_sources(js, archive, within=1.0)
    finally:
        await js.delete_stream(archive)
        await js.delete_stream(source)


def test_overlapping_filters_read_everything() -> None:
    assert subjects_overlap("orders.v1.>", "orders.v1.*.*.order_closed")
    assert subjects_overlap("orders.v1.SH.>", "orders.v1.*.SH-001.order_received")
    assert not subjects_overlap("orders.v1.>", "inventory.v1.>")
    assert not subjects_overlap("orders.v1.*", "orders.v1.a.b")
    assert consumer_filter(["orders.v1.>", "inventory.v1.>", "orders.v1.>"]) == [
        "orders.v1.>",
        "inventory.v1.>",
    ]
    assert consumer_filter(["orders.v1.>", "orders.v1.*.*.order_closed"]) == [">"]


async def test_readers_of_overlapping_subjects_each_get_their_events(
    db: Database, js: bus.JetStreamContext
) -> None:
    b = branch()
    await publish(js, b, f"{b}-S1")
    await publish(js, b, f"{b}-S2")
    await archived(js, f"orders.v1.{b}.>", 2)
    seen: list[str] = []

    async def note_store(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        seen.append(event.meta.store_id)

    s2_only = Reader(
        "t-s2",
        (f"orders.v1.{b}.{b}-S2.>",),
        {RECEIVED: (events_pb2.OrderReceived, (note_store,))},
    )

    done = await replay.replay(
        js, bus.ARCHIVE_STREAM, [reader(b), s2_only], lambda: new_uow(db), inbox, "t"
    )

    assert await per_store(db) == {f"{b}-S1": 1, f"{b}-S2": 1}
    assert seen == [f"{b}-S2"]
    assert done.applied == 3
