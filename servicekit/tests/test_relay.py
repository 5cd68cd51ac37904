"""The outbox relay against a real database and a real NATS JetStream server: relays on one
PostgreSQL share the rows and publish each once; a row the broker refuses is parked after its
tries while the rows behind it go on; a broker that is away is no row's fault."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.js.api import DiscardPolicy, PubAck, StorageType, StreamConfig
from sqlalchemy import event, select, text

from aftersales.events.v1 import events_pb2
from servicekit import bus, outbox
from servicekit.db import Database, new_metadata
from servicekit.inbox import inbox_table
from servicekit.metrics import OUTBOX_BROKER_WAITING, OUTBOX_BROKER_WAITS, OUTBOX_PARKED
from servicekit.outbox import OutboxRelay, fill_meta, outbox_table, parked_events, unpark
from servicekit.testing import DatabaseTarget, NatsServer, database_with, eventually
from servicekit.uow import UnitOfWork

metadata = new_metadata()
table = outbox_table(metadata)
inbox_table(metadata)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


class CountingJetStream:
    """The JetStream context, counting what is published under each message id."""

    def __init__(self, js: bus.JetStreamContext, counts: collections.Counter[str]) -> None:
        self.js = js
        self.counts = counts

    async def publish_async(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        self.counts[headers[outbox.MSG_ID_HEADER]] += 1
        return await self.js.publish_async(subject, payload, headers=headers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.js, name)


class HeldJetStream:
    """The JetStream context, its publishes held until `go` is set: a slow network."""

    def __init__(self, js: bus.JetStreamContext, go: asyncio.Event) -> None:
        self.js = js
        self.go = go

    async def publish_async(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        await self.go.wait()
        return await self.js.publish_async(subject, payload, headers=headers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.js, name)


async def emit(db: Database, subject: str, count: int = 1) -> list[str]:
    """Commit `count` events for `subject`; their ids."""
    ids = []
    async with UnitOfWork(db, table, lambda: None) as uow:
        for _ in range(count):
            event = events_pb2.OrderReceived(order_id=str(uuid.uuid4()), number="n")
            ids.append(fill_meta(event.meta, "T", "S"))
            await uow.emit(subject, event)
        await uow.commit()
    return ids


def lane() -> str:
    return f"orders.v1.T.{uuid.uuid4().hex[:8]}.order_received"


async def test_two_relays_on_one_postgresql_publish_each_row_once(
    db_target: DatabaseTarget, db: Database, js: bus.JetStreamContext
) -> None:
    if not db_target.url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: a SQLite file belongs to one process, so one relay")
    ids = await emit(db, lane(), 600)
    counts: collections.Counter[str] = collections.Counter()
    replicas = [Database(db_target.url, db_target.schema) for _ in range(2)]
    # Each pauses a moment before every round, so that both take turns.
    relays = [
        OutboxRelay("t", replica, table, CountingJetStream(js, counts), batch_size=50)  # type: ignore[arg-type]
        for replica in replicas
    ]
    for relay in relays:
        relay.publish_delay = 0.02
    published_by = [0, 0]

    async def drain(index: int) -> None:
        while published := await relays[index].publish_pending():
            published_by[index] += published

    try:
        await asyncio.gather(drain(0), drain(1))
    finally:
        for replica in replicas:
            await replica.dispose()
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
    assert sum(published_by) == 600
    assert all(published_by), published_by
    assert await OutboxRelay("t", db, table, js).pending() == 0


async def test_a_refused_row_is_parked_after_its_tries_and_the_rows_behind_it_go_on(
    db: Database, js: bus.JetStreamContext
) -> None:
    subject = lane()
    first = await emit(db, subject)
    # No stream takes this subject: the broker answers "no responders" every time.
    refused = await emit(db, f"nowhere.v1.{uuid.uuid4().hex[:8]}")
    # Over the server's 1 MB message limit: the client refuses it before sending.
    async with db.session() as session:
        big_id = str(uuid.uuid4())
        await session.execute(
            table.insert(),
            {
                "event_id": big_id,
                "subject": subject,
                "event_type": "aftersales.events.v1.OrderReceived",
                "payload": b"x" * (2 * 1024 * 1024),
                "headers": "{}",
                "created_at": outbox.utc_now(),
            },
        )
        await session.commit()
    last = await emit(db, subject)
    relay = OutboxRelay("t", db, table, js, park_after=3, retry_base_seconds=0)
    parked_before = OUTBOX_PARKED.labels("t")._value.get()

    assert await relay.publish_pending() == 2
    assert await relay.pending() == 2
    assert await relay.publish_pending() == 0
    assert await relay.publish_pending() == 0
    assert await relay.pending() == 0
    assert await relay.publish_pending() == 0

    parked = await parked_events(db, table)
    assert [p.event_id for p in parked] == [refused[0], big_id]
    assert [p.attempts for p in parked] == [3, 3]
    assert "NoStreamResponseError" in parked[0].last_error
    assert "MaxPayloadError" in parked[1].last_error
    assert OUTBOX_PARKED.labels("t")._value.get() == parked_before + 2
    async with db.session() as session:
        published = await session.scalars(
            select(table.c.event_id).where(table.c.published_at.is_not(None))
        )
        assert set(published) == {first[0], last[0]}

    # Fixed (say a stream now takes the subject), then unparked: it goes out.
    async with db.session() as session:
        await session.execute(
            table.update().where(table.c.event_id == refused[0]).values(subject=subject)
        )
        await session.commit()
    assert await unpark(db, table, parked[0].seq) == 1
    assert await relay.publish_pending() == 1
    assert [p.event_id for p in await parked_events(db, table)] == [big_id]
    assert await unpark(db, table) == 1
    assert await unpark(db, table) == 0


async def test_a_broker_that_is_away_is_no_rows_fault(
    db: Database, nats_server: NatsServer
) -> None:
    await emit(db, lane())
    nc = await bus.connect(nats_server.url, "test", nats_server.auth())
    away = nc.jetstream()
    await nc.close()
    relay = OutboxRelay("t", db, table, away, park_after=1)
    with pytest.raises(outbox.BrokerUnavailable):
        await relay.publish_pending()
    async with db.session() as session:
        rows = (await session.execute(select(table.c.attempts, table.c.claimed_by))).all()
        assert [tuple(row) for row in rows] == [(0, None)], "given back at once, untouched"
    assert await parked_events(db, table) == []


async def test_a_key_value_entry_is_stored_before_the_rows_after_it_are_sent(
    db: Database, js: bus.JetStreamContext
) -> None:
    """A data key made while the broker was away goes out first: when the bucket refuses it,
    the event sealed with it waits for the next round instead of going out alone."""
    bucket = f"T{uuid.uuid4().hex[:8]}"
    subject = lane()
    async with db.session() as session:
        await outbox.record_entry(session, table, f"$KV.{bucket}.key.k1", b"secret", "t.Key")
        await session.commit()
    sealed = await emit(db, subject)
    relay = OutboxRelay("t", db, table, js, retry_base_seconds=0)

    assert await relay.publish_pending() == 0  # no such bucket yet: refused, nothing after it
    async with db.session() as session:
        published = await session.scalars(
            select(table.c.event_id).where(table.c.published_at.is_not(None))
        )
        assert list(published) == []

    kv = await js.create_key_value(bucket=bucket)
    assert await relay.publish_pending() == 2
    assert (await kv.get("key.k1")).value == b"secret"
    async with db.session() as session:
        published = await session.scalars(
            select(table.c.event_id).where(table.c.published_at.is_not(None))
        )
        assert sealed[0] in set(published)
    await js.delete_key_value(bucket)


async def test_a_round_marks_its_rows_in_one_statement_per_outcome(
    db: Database, js: bus.JetStreamContext
) -> None:
    """However many rows a round carries: one UPDATE claiming them, one for those published,
    one for those refused."""
    subject = lane()
    published = await emit(db, subject, count=3)
    refused = await emit(db, f"nowhere.v1.{uuid.uuid4().hex[:8]}", count=3)
    relay = OutboxRelay("t", db, table, js, retry_base_seconds=60)
    updates: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        assert await relay.publish_pending() == len(published)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert len(updates) == 3
    async with db.session() as session:
        tried = await session.execute(
            select(table.c.event_id, table.c.attempts, table.c.retry_at).where(
                table.c.event_id.in_(refused)
            )
        )
        assert {(row.event_id, row.attempts, row.retry_at is not None) for row in tried} == {
            (event_id, 1, True) for event_id in refused
        }
    assert await relay.pending() == len(refused)


async def test_a_relay_holds_no_row_lock_while_it_publishes(
    db_target: DatabaseTarget, db: Database, js: bus.JetStreamContext
) -> None:
    """The claim is a short transaction of its own: while the relay waits on the broker, its
    rows can be written at once (no lock to wait for), yet no other relay takes them."""
    if not db_target.url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: row locks")
    await emit(db, lane(), 5)
    broker_answers = asyncio.Event()
    slow = OutboxRelay("t", db, table, HeldJetStream(js, broker_answers))  # type: ignore[arg-type]
    other = OutboxRelay("t", db, table, js)
    publishing = asyncio.create_task(slow.publish_pending())

    async def claimed() -> list[Any]:
        async with db.session() as session:
            holders = list(await session.scalars(select(table.c.claimed_by)))
            await session.rollback()
        return holders if set(holders) == {slow.relay_id} else []

    await eventually(claimed)
    async with db.session() as session:
        await session.execute(text("SET LOCAL lock_timeout = '200ms'"))
        await session.execute(table.update().values(headers=table.c.headers))
        await session.commit()
    assert await other.publish_pending() == 0
    broker_answers.set()
    assert await publishing == 5
    async with db.session() as session:
        rows = list(await session.execute(select(table.c.claimed_by, table.c.published_at)))
        await session.rollback()
    assert all(row.published_at is not None and row.claimed_by is None for row in rows)


async def test_the_rows_of_a_relay_that_died_go_out_once_its_lease_runs_out(
    db: Database, js: bus.JetStreamContext
) -> None:
    ids = await emit(db, lane(), 3)
    counts: collections.Counter[str] = collections.Counter()
    dead = OutboxRelay("t", db, table, js, lease_seconds=0.5)
    heir = OutboxRelay("t", db, table, CountingJetStream(js, counts))  # type: ignore[arg-type]

    assert len(await dead.claim()) == 3  # and then it dies without publishing
    assert await heir.publish_pending() == 0  # the lease holds
    assert await eventually(heir.publish_pending, within=5) == 3
    assert counts == collections.Counter(ids)
    assert await heir.pending() == 0


async def test_a_full_stream_is_the_brokers_condition_not_the_rows(
    db: Database, js: bus.JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that discards new messages when full refuses every publish: the relay marks
    what went in, gives the rest back untouched (no try counted, nothing parked), raises the
    alarm and waits; once the stream has room they go out."""
    name = f"FULL{uuid.uuid4().hex[:8]}"
    subject = f"fulltest.v1.{name}"
    await js.add_stream(
        StreamConfig(
            name=name,
            subjects=[subject],
            max_bytes=1_000,
            discard=DiscardPolicy.NEW,
            storage=StorageType.MEMORY,
        )
    )
    ids = await emit(db, subject, 20)
    relay = OutboxRelay("full", db, table, js, park_after=1, retry_base_seconds=0)
    waits_before = OUTBOX_BROKER_WAITS.labels("full")._value.get()

    with pytest.raises(outbox.BrokerUnavailable, match="maximum bytes"):
        await relay.publish_pending()
    stored = (await js.stream_info(name)).state.messages
    assert 0 < stored < 20
    assert await relay.pending() == 20 - stored
    assert await parked_events(db, table) == []
    async with db.session() as session:
        untouched = (
            await session.execute(
                select(table.c.attempts, table.c.claimed_until).where(
                    table.c.published_at.is_(None)
                )
            )
        ).all()
        await session.rollback()
    assert {(row.attempts, row.claimed_until) for row in untouched} == {(0, None)}

    running = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _gauge(OUTBOX_BROKER_WAITING, "full"))
        assert OUTBOX_BROKER_WAITS.labels("full")._value.get() > waits_before
        await js.update_stream(
            StreamConfig(
                name=name,
                subjects=[subject],
                max_bytes=1_000_000,
                discard=DiscardPolicy.NEW,
                storage=StorageType.MEMORY,
            )
        )

        async def all_out() -> bool:
            return await relay.pending() == 0

        await eventually(all_out, within=15)
        await eventually(lambda: _gauge(OUTBOX_BROKER_WAITING, "full", 0.0))
    finally:
        relay.stop()
        await running
    assert (await js.stream_info(name)).state.messages == 20
    assert await parked_events(db, table) == []
    async with db.session() as session:
        published = set(
            await session.scalars(select(table.c.event_id).where(table.c.published_at.is_not(None)))
        )
        await session.rollback()
    assert published == set(ids)
    await js.delete_stream(name)


async def _gauge(gauge: Any, service: str, value: float = 1.0) -> bool:
    return bool(gauge.labels(service)._value.get() == value)
