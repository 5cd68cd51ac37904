"""Transactional outbox (发件箱): a handler records events in the same transaction as its state
change; the relay publishes committed rows to JetStream with `Nats-Msg-Id` = event id, so a
republish after a crash is dropped by the stream's duplicate window. Nothing is published
before its transaction commits, and nothing committed stays unpublished.

On PostgreSQL several replicas' relays share the work: each claims a batch with
`FOR UPDATE SKIP LOCKED`, publishes it while holding the claim and marks it published in the
same transaction, so no two relays publish the same row. A SQLite file belongs to one process,
whose one relay reads, publishes and marks without holding the write lock meanwhile.

A row the broker refuses (no stream takes its subject, too large) is tried again with growing
pauses and parked after `park_after` tries: counted, logged with the reason, kept in the table
for `unpark`; the rows behind it go on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from nats.js import JetStreamContext
from nats.js.api import PubAck
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import metrics
from servicekit.auth import maybe_auth, reset_auth, service_identity, set_auth
from servicekit.db import BigId, Database
from servicekit.telemetry import inject_headers
from servicekit.timeutil import to_timestamp, utc_now

log = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "Event-Type"
MSG_ID_HEADER = "Nats-Msg-Id"
PUBLISHED_RETENTION = timedelta(days=1)
# How long the relay waits for the stream to acknowledge a round before it tries again.
ACK_TIMEOUT_SECONDS = 5.0
# Rows to a key-value bucket (a data key made while the broker was away) are stored before any
# row after them is sent: the events sealed with that key must never arrive before it.
KEY_VALUE_SUBJECTS = "$KV."


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
        # Failed publishes of this row; the last one's reason; not before when to try again.
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text, nullable=True),
        Column("retry_at", DateTime(timezone=True), nullable=True),
        # Set aside after too many failures: the relay skips it until it is unparked.
        Column("parked_at", DateTime(timezone=True), nullable=True),
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


async def record_entry(
    session: AsyncConnection, table: Table, subject: str, value: bytes, kind: str
) -> None:
    """Add a key-value entry (`$KV.<bucket>.<key>`) to the outbox inside the caller's
    transaction: the relay stores it before it sends the rows recorded after it."""
    await session.execute(
        table.insert(),
        {
            "event_id": new_event_id(),
            "subject": subject,
            "event_type": kind,
            "payload": value,
            "headers": "{}",
            "created_at": utc_now(),
        },
    )


@dataclass(frozen=True)
class ParkedEvent:
    seq: int
    event_id: str
    subject: str
    event_type: str
    attempts: int
    last_error: str
    created_at: datetime
    parked_at: datetime


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
        park_after: int = 8,
        retry_base_seconds: float = 1.0,
    ) -> None:
        self.service = service
        self.db = db
        self.table = table
        self.js = js
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_delay = publish_delay
        self.linger_seconds = linger_seconds
        # A refused row waits retry_base_seconds, then twice that, … (about four minutes
        # over the eight tries by default) before it is parked.
        self.park_after = park_after
        self.retry_base_seconds = retry_base_seconds
        self.wake = asyncio.Event()
        self._stopping = False
        self._last_prune = utc_now()
        # A round's statements, built once: building one costs more CPU than running it.
        self._due = _due_rows(table, batch_size)
        self._claim = self._due.with_for_update(skip_locked=True)
        self._mark_published = (
            update(table)
            .where(table.c.seq.in_(bindparam("seqs", expanding=True)))
            .values(published_at=bindparam("now"))
        )
        self._mark_refused = (
            update(table)
            .where(table.c.seq == bindparam("refused_seq"))
            .values(
                attempts=bindparam("refused_attempts"),
                last_error=bindparam("refused_error"),
                retry_at=bindparam("refused_retry_at"),
                parked_at=bindparam("refused_parked_at"),
            )
        )

    def notify(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        token = set_auth(service_identity(self.service))
        try:
            await self._run()
        finally:
            reset_auth(token)

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                taken, _published = await self._round()
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
            if taken < self.batch_size:
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
        """Publish a batch of the oldest rows due; returns how many were published."""
        _taken, published = await self._round()
        return published

    async def _round(self) -> tuple[int, int]:
        """One batch: (rows taken, rows published)."""
        if self.db.is_sqlite:
            # One relay per file: nothing to share, and the process's write turn is not held
            # while publishing. A row published twice (a crash before the mark) carries the
            # same Nats-Msg-Id and is dropped by the stream.
            async with self.db.session() as session:
                rows = (await session.execute(self._due, {"now": utc_now()})).all()
                await session.rollback()
            if not rows:
                return 0, 0
            rows, refused = await self._publish(rows)
            async with self.db.session() as session:
                await self._settle(session, rows, refused)
                await session.commit()
        else:
            # The claim (row locks) is held until the rows are marked: another relay skips
            # them and takes the next ones.
            async with self.db.session() as session:
                rows = (await session.execute(self._claim, {"now": utc_now()})).all()
                if not rows:
                    await session.rollback()
                    return 0, 0
                rows, refused = await self._publish(rows)
                await self._settle(session, rows, refused)
                await session.commit()
        published = len(rows) - len(refused)
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(published)
        return len(rows), published

    async def _publish(self, rows: Sequence[Row[Any]]) -> tuple[Sequence[Row[Any]], dict[int, str]]:
        """Send the rows in order, then wait for the stream's acks all together: one flush and
        one wait per round instead of a round trip per event. A key-value entry is waited for
        before the rows after it are sent, and when it is refused they wait for the next
        round. Returns the rows sent and those the broker refused, with why; raises when it
        does not answer at all (nothing is then blamed on a row)."""
        if self.publish_delay:
            await asyncio.sleep(self.publish_delay)
        acks: dict[int, asyncio.Future[PubAck]] = {}
        refused: dict[int, str] = {}
        sent: list[Row[Any]] = []
        try:
            for row in rows:
                sent.append(row)
                headers = json.loads(row.headers)
                headers[MSG_ID_HEADER] = row.event_id
                headers[EVENT_TYPE_HEADER] = row.event_type
                try:
                    acks[row.seq] = await self.js.publish_async(
                        row.subject, row.payload, headers=headers
                    )
                except Exception as error:  # a message too large, a subject not allowed
                    refused[row.seq] = _reason(error)
                if row.subject.startswith(KEY_VALUE_SUBJECTS) and not await self._stored(
                    row.seq, acks, refused
                ):
                    break
            _done, waiting = await asyncio.wait(acks.values(), timeout=ACK_TIMEOUT_SECONDS)
            if waiting:
                raise TimeoutError(f"{len(waiting)} of {len(acks)} publishes not acknowledged")
            for seq, ack in acks.items():
                if failure := ack.exception():
                    refused[seq] = _reason(failure)
        finally:
            # An ack that never came holds a slot of the client's in-flight limit until cancelled.
            for ack in acks.values():
                ack.cancel()
        if refused:
            # Blame the rows only when JetStream itself answers: while it is starting up or
            # away, every publish fails alike and no row is at fault.
            await self.js.account_info()
        return sent, refused

    @staticmethod
    async def _stored(
        seq: int, acks: dict[int, asyncio.Future[PubAck]], refused: dict[int, str]
    ) -> bool:
        """Whether the row just sent was stored; raises when the stream does not answer."""
        ack = acks.get(seq)
        if ack is None:
            return False
        await asyncio.wait([ack], timeout=ACK_TIMEOUT_SECONDS)
        if not ack.done():
            raise TimeoutError("a key-value entry was not acknowledged")
        if failure := ack.exception():
            refused[seq] = _reason(failure)
            return False
        return True

    async def _settle(
        self, session: AsyncConnection, rows: Sequence[Row[Any]], refused: dict[int, str]
    ) -> None:
        """Mark the round's rows: one statement for those published, one for those refused."""
        now = utc_now()
        published = [row.seq for row in rows if row.seq not in refused]
        if published:
            await session.execute(self._mark_published, {"seqs": published, "now": now})
        failed = []
        for row in rows:
            if row.seq not in refused:
                continue
            attempts = row.attempts + 1
            parked = attempts >= self.park_after
            retry_in = self.retry_base_seconds * 2 ** min(attempts - 1, 16)
            failed.append(
                {
                    "refused_seq": row.seq,
                    "refused_attempts": attempts,
                    "refused_error": refused[row.seq],
                    "refused_retry_at": now + timedelta(seconds=retry_in),
                    "refused_parked_at": now if parked else None,
                }
            )
            if parked:
                metrics.OUTBOX_PARKED.labels(self.service).inc()
                log.error(
                    "outbox event parked after %d tries: %s (seq %d, %s)",
                    attempts,
                    refused[row.seq],
                    row.seq,
                    row.subject,
                )
            else:
                log.warning(
                    "broker refused outbox event (try %d of %d): %s (seq %d, %s)",
                    attempts,
                    self.park_after,
                    refused[row.seq],
                    row.seq,
                    row.subject,
                )
        if failed:
            await session.execute(self._mark_refused, failed)

    async def pending(self) -> int:
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(self.table)
                .where(self.table.c.published_at.is_(None), self.table.c.parked_at.is_(None))
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


def _due_rows(table: Table, batch_size: int) -> Select[Any]:
    """The oldest rows due (bound: `now`)."""
    return (
        select(
            table.c.seq,
            table.c.event_id,
            table.c.subject,
            table.c.event_type,
            table.c.payload,
            table.c.headers,
            table.c.attempts,
        )
        .where(
            table.c.published_at.is_(None),
            table.c.parked_at.is_(None),
            or_(table.c.retry_at.is_(None), table.c.retry_at <= bindparam("now")),
        )
        .order_by(table.c.seq)
        .limit(batch_size)
    )


async def parked_events(db: Database, table: Table) -> list[ParkedEvent]:
    """Rows set aside after too many refused publishes, oldest first."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(
                    table.c.seq,
                    table.c.event_id,
                    table.c.subject,
                    table.c.event_type,
                    table.c.attempts,
                    table.c.last_error,
                    table.c.created_at,
                    table.c.parked_at,
                )
                .where(table.c.parked_at.is_not(None), table.c.published_at.is_(None))
                .order_by(table.c.seq)
            )
        ).all()
        await session.rollback()
    return [
        ParkedEvent(
            r.seq,
            r.event_id,
            r.subject,
            r.event_type,
            r.attempts,
            r.last_error or "",
            r.created_at,
            r.parked_at,
        )
        for r in rows
    ]


async def unpark(db: Database, table: Table, seq: int | None = None) -> int:
    """Put a parked row (or all, when `seq` is None) back in line with a fresh count of
    tries; returns how many. The relay publishes them on its next round."""
    statement = update(table).where(table.c.parked_at.is_not(None), table.c.published_at.is_(None))
    if seq is not None:
        statement = statement.where(table.c.seq == seq)
    async with db.session() as session:
        result = await session.execute(statement.values(attempts=0, retry_at=None, parked_at=None))
        await session.commit()
    return int(result.rowcount or 0)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip().rstrip(":")
