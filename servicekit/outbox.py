"""Transactional outbox (发件箱): a handler records events in the same transaction as its state
change; the relay publishes committed rows to JetStream with `Nats-Msg-Id` = event id, so a
republish after a crash is dropped by the stream's duplicate window. Nothing is published
before its transaction commits, and nothing committed stays unpublished."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from google.protobuf.message import Message
from nats.js import JetStreamContext
from nats.js.api import PubAck
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import metrics
from servicekit.auth import maybe_auth
from servicekit.db import BigId, Database
from servicekit.telemetry import inject_headers
from servicekit.timeutil import to_timestamp, utc_now

log = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "Event-Type"
MSG_ID_HEADER = "Nats-Msg-Id"
PUBLISHED_RETENTION = timedelta(days=1)
# How long the relay waits for the stream to acknowledge a round before it tries again.
ACK_TIMEOUT_SECONDS = 5.0


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("seq", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("event_type", String(128), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_published_at", "published_at"),
    )


def new_event_id() -> str:
    return str(uuid.uuid4())


def fill_meta(meta: Message, branch_id: str, store_id: str | None) -> str:
    """Fill an event's EventMeta (id, time, org path, actor) and return the event id."""
    event_id = new_event_id()
    meta.event_id = event_id  # type: ignore[attr-defined]
    meta.occurred_at.CopyFrom(to_timestamp(utc_now()))  # type: ignore[attr-defined]
    meta.branch_id = branch_id  # type: ignore[attr-defined]
    meta.store_id = store_id or ""  # type: ignore[attr-defined]
    auth = maybe_auth()
    meta.actor_user_id = auth.user_id if auth else ""  # type: ignore[attr-defined]
    return event_id


async def record(session: AsyncConnection, table: Table, subject: str, event: Message) -> None:
    """Add an event to the outbox inside the caller's transaction."""
    event_id = event.meta.event_id  # type: ignore[attr-defined]
    # Values as parameters, not .values(): the compiled INSERT is then cached once.
    await session.execute(
        table.insert(),
        {
            "event_id": event_id,
            "subject": subject,
            "event_type": event.DESCRIPTOR.full_name,
            "payload": event.SerializeToString(),
            "headers": json.dumps(inject_headers()),
            "created_at": utc_now(),
        },
    )


class OutboxRelay:
    def __init__(
        self,
        service: str,
        db: Database,
        table: Table,
        js: JetStreamContext,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        publish_delay: float = 0.0,
        linger_seconds: float = 0.01,
    ) -> None:
        self.service = service
        self.db = db
        self.table = table
        self.js = js
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_delay = publish_delay
        self.linger_seconds = linger_seconds
        self.wake = asyncio.Event()
        self._stopping = False
        self._last_prune = utc_now()

    def notify(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                published = await self.publish_pending()
                backoff = 0.2
            except Exception:
                metrics.OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
                log.exception("outbox relay round failed; retrying")
                # While the broker is away the backlog is what operators need to see.
                with contextlib.suppress(Exception):
                    metrics.OUTBOX_PENDING.labels(self.service).set(await self.pending())
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self.batch_size:
                metrics.OUTBOX_PENDING.labels(self.service).set(0)
                await self._idle()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), self.poll_interval)
            # Woken by a commit: let the next few commits land too, so one round (a read and
            # a mark, each a transaction) carries several events, for a few ms more delay.
            await asyncio.sleep(self.linger_seconds)
        self.wake.clear()
        if utc_now() - self._last_prune > timedelta(minutes=10):
            try:
                await self.prune()
            except Exception:
                # Pruning is housekeeping: a failure waits for the next round.
                log.exception("pruning published outbox rows failed")

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    async def publish_pending(self) -> int:
        """Publish the oldest unpublished rows, then mark them published. No database lock is
        held while publishing: a row published twice (a crash in between, or two relays) is
        dropped by the stream, as its Nats-Msg-Id is the same."""
        table = self.table
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(
                        table.c.seq,
                        table.c.event_id,
                        table.c.subject,
                        table.c.event_type,
                        table.c.payload,
                        table.c.headers,
                    )
                    .where(table.c.published_at.is_(None))
                    .order_by(table.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        if self.publish_delay:
            await asyncio.sleep(self.publish_delay)
        await self._publish(rows)
        async with self.db.session() as session:
            await session.execute(
                update(table)
                .where(table.c.seq.in_([row.seq for row in rows]))
                .values(published_at=utc_now())
            )
            await session.commit()
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def _publish(self, rows: Sequence[Row[Any, Any, Any, Any, Any, Any]]) -> None:
        """Send the rows in order, then wait for the stream's acks all together: one flush and
        one wait per round instead of a round trip per event."""
        acks: list[asyncio.Future[PubAck]] = []
        try:
            for _seq, event_id, subject, event_type, payload, headers_json in rows:
                headers = json.loads(headers_json)
                headers[MSG_ID_HEADER] = event_id
                headers[EVENT_TYPE_HEADER] = event_type
                acks.append(await self.js.publish_async(subject, payload, headers=headers))
            await asyncio.wait_for(asyncio.gather(*acks), ACK_TIMEOUT_SECONDS)
        finally:
            # An ack that never came holds a slot of the client's in-flight limit until cancelled.
            for ack in acks:
                ack.cancel()

    async def pending(self) -> int:
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(self.table)
                .where(self.table.c.published_at.is_(None))
            )
            await session.rollback()
        return int(count or 0)

    async def prune(self) -> None:
        self._last_prune = utc_now()
        async with self.db.session() as session:
            await session.execute(
                delete(self.table).where(
                    self.table.c.published_at < utc_now() - PUBLISHED_RETENTION
                )
            )
            await session.commit()
