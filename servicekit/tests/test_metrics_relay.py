"""What the outbox relay tells /metrics, against a real database and NATS: the age of the
oldest event waiting, the events published by type, and the broker's store as the service's
NATS user may see it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from aftersales.events.v1 import events_pb2
from servicekit import bus
from servicekit.db import Database, new_metadata
from servicekit.outbox import OutboxRelay, fill_meta, outbox_table, sample_store
from servicekit.testing import DatabaseTarget, database_with
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

metadata = new_metadata()
table = outbox_table(metadata)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


async def emit(db: Database, count: int) -> None:
    async with UnitOfWork(db, table, lambda: None) as uow:
        for _ in range(count):
            event = events_pb2.OrderReceived(order_id=str(uuid.uuid4()), number="n")
            fill_meta(event.meta, "T", "S")
            await uow.emit(f"orders.v1.T.S.received-{uuid.uuid4().hex[:8]}", event)
        await uow.commit()


def value(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_oldest_waiting_age_and_events_published_by_type(
    db: Database, js: bus.JetStreamContext
) -> None:
    service = f"metrics-{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(service, db, table, js)
    await emit(db, 3)
    # Committed ten minutes ago, as if the broker had been away since.
    async with db.session() as session:
        await session.execute(update(table).values(created_at=utc_now() - timedelta(minutes=10)))
        await session.commit()
    await relay._sample()
    age = value("aftersales_outbox_oldest_pending_age_seconds", {"service": service})
    assert age is not None and 590 <= age <= 700

    assert await relay.publish_pending() == 3
    published = {"service": service, "event_type": "aftersales.events.v1.OrderReceived"}
    assert value("aftersales_events_published_total", published) == 3
    relay._last_sample = None
    await relay._sample()
    assert value("aftersales_outbox_oldest_pending_age_seconds", {"service": service}) == 0


async def test_store_use_of_the_streams_a_service_reads(js: bus.JetStreamContext) -> None:
    await js.publish("orders.v1.T.S.sampled", b"x" * 100)
    await sample_store(js, ["ORDERS", "DEAD_LETTERS"])
    stored = value("aftersales_jetstream_stream_bytes", {"stream": "ORDERS"})
    assert stored is not None and stored >= 100
    assert (value("aftersales_jetstream_stream_messages", {"stream": "ORDERS"}) or 0) >= 1
    used = value("aftersales_jetstream_account_storage_used_bytes", {})
    assert used is not None and used >= stored
