"""Transactional outbox (发件箱): a handler records events in the same transaction as its state
change; the relay publishes committed rows to JetStream with `Nats-Msg-Id` = event id, so a
republish after a crash is dropped by the stream's duplicate window. Nothing is published
before its transaction commits, and nothing committed stays unpublished.

Several replicas' relays share the work without holding row locks across the network: a round
claims a batch with a lease (`claimed_until`, `claimed_by`) in one short transaction (one
UPDATE ... RETURNING over `FOR UPDATE SKIP LOCKED`), publishes it with no transaction open,
then marks it in another. While the lease holds no other relay takes those rows; the rows of a
relay that dies holding them go to the others once it runs out. SQLite runs the same statements
(its file belongs to one process, whose one relay they then serve).

A row the broker refuses (no stream takes its subject, too large) is tried again with growing
pauses and parked after `park_after` tries: counted, logged with the reason, kept in the table
for `unpark`; the rows behind it go on. A broker that cannot take events at all (away, not
answering, its store full) is no row's fault: the round stops, the rows it did not publish are
released untouched, and the relay waits with growing pauses, counting and logging it
(`aftersales_outbox_broker_waits_total`, `aftersales_outbox_broker_waiting`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import nats.errors
from google.protobuf.message import Message
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, ServiceUnavailableError, TooManyStalledMsgsError
from opentelemetry.trace import SpanKind
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    Update,
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
from servicekit.bus_permissions import SERVICES
from servicekit.db import BigId, Database
from servicekit.telemetry import extract_context, inject_headers, tracer, tracing_on
from servicekit.timeutil import as_utc, to_timestamp, utc_now

log = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "Event-Type"
MSG_ID_HEADER = "Nats-Msg-Id"
PUBLISHED_RETENTION = timedelta(days=1)
# How long the relay waits for the stream to acknowledge a round before it tries again.
ACK_TIMEOUT_SECONDS = 5.0
# Rows to a key-value bucket (a data key made while the broker was away) are stored before any
# row after them is sent: the events sealed with that key must never arrive before it.
KEY_VALUE_SUBJECTS = "$KV."
# How long a relay's claim on a batch keeps the other relays off it: longer than a round takes
# (acks are waited for ACK_TIMEOUT_SECONDS, an unanswered row as long again), short enough that
# the rows of a relay that died go out soon after. A round that outlasts it costs no duplicate:
# the stream drops a second copy by its Nats-Msg-Id.
LEASE_SECONDS = 15.0
# How often the relay looks at the backlog's oldest row and the broker's store, for /metrics.
SAMPLE_SECONDS = 15.0
# JetStream's answers meaning it cannot store anything now, whatever the message: a stream or
# account store full (10077 "maximum bytes/messages exceeded"), no resources left (10023, 10047,
# 10028). A 503 (ServiceUnavailableError) means the same.
BROKER_FULL_CODES = frozenset({10023, 10028, 10047, 10077})
# Errors of the connection or the broker, never of the row being published.
BROKER_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    ServiceUnavailableError,
    TooManyStalledMsgsError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    TimeoutError,
    ConnectionError,
)


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
        # Claimed by this relay for a round: the others leave the row alone until then.
        Column("claimed_until", DateTime(timezone=True), nullable=True),
        Column("claimed_by", String(64), nullable=True),
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


class BrokerUnavailable(Exception):
    """The broker cannot take events now (away, not answering, its store full): the round
    stopped without blaming a row."""


@dataclass
class _Outcome:
    """What a round's publishing came to, by row seq."""

    published: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    # Why the broker took nothing more this round; the rows neither published nor refused
    # are then released for the next round.
    broker_error: BaseException | None = None


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
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.service = service
        self.db = db
        self.table = table
        self.js = js
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # Fault injection (the crash tests): a pause before each round claims its rows.
        self.publish_delay = publish_delay
        self.linger_seconds = linger_seconds
        # A refused row waits retry_base_seconds, then twice that, … (about four minutes
        # over the eight tries by default) before it is parked.
        self.park_after = park_after
        self.retry_base_seconds = retry_base_seconds
        self.lease = timedelta(seconds=lease_seconds)
        # Who holds a claim, for the release and for an operator reading the table.
        self.relay_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.wake = asyncio.Event()
        self._stopping = False
        self._last_prune = utc_now()
        self._last_sample: datetime | None = None
        metrics.watch_pool(service, db.engine.sync_engine.pool)
        # A round's statements, built once: building one costs more CPU than running it.
        self._claim = _claim_rows(table, batch_size)
        self._release = (
            update(table)
            .where(
                table.c.seq.in_(bindparam("seqs", expanding=True)),
                table.c.claimed_by == bindparam("me"),
            )
            .values(claimed_until=None, claimed_by=None)
        )
        self._mark_published = (
            update(table)
            .where(table.c.seq.in_(bindparam("seqs", expanding=True)))
            .values(published_at=bindparam("now"), claimed_until=None, claimed_by=None)
        )
        self._mark_refused = (
            update(table)
            .where(table.c.seq == bindparam("refused_seq"))
            .values(
                attempts=bindparam("refused_attempts"),
                last_error=bindparam("refused_error"),
                retry_at=bindparam("refused_retry_at"),
                parked_at=bindparam("refused_parked_at"),
                claimed_until=None,
                claimed_by=None,
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
        waiting_since: datetime | None = None
        while not self._stopping:
            try:
                taken, _published = await self._round()
                backoff = 0.2
                if waiting_since is not None:
                    log.info(
                        "the broker takes events again after %.0f s",
                        (utc_now() - waiting_since).total_seconds(),
                    )
                    waiting_since = None
                    metrics.OUTBOX_BROKER_WAITING.labels(self.service).set(0)
            except BrokerUnavailable as error:
                metrics.OUTBOX_BROKER_WAITS.labels(self.service).inc()
                if waiting_since is None:
                    waiting_since = utc_now()
                    metrics.OUTBOX_BROKER_WAITING.labels(self.service).set(1)
                    log.error("%s; the relay waits for it, no row is set aside", error)
                else:
                    log.debug("%s; still waiting", error)
                with contextlib.suppress(Exception):
                    metrics.OUTBOX_PENDING.labels(self.service).set(await self.pending())
                await self._sample()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
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
        await self._sample()
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
        """One batch: (rows taken, rows published). Raises BrokerUnavailable, after marking
        what it did publish, when the broker could not take the rest."""
        if self.publish_delay:
            await asyncio.sleep(self.publish_delay)
        rows = await self.claim()
        if not rows:
            return 0, 0
        try:
            outcome = await self._publish(rows)
        except BaseException:
            # Not the broker's answer but a failure here: give the rows back at once rather
            # than when the lease runs out.
            with contextlib.suppress(Exception):
                await self._release_rows([row.seq for row in rows])
            raise
        async with self.db.session() as session:
            await self._settle(session, rows, outcome)
            await session.commit()
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(outcome.published))
        published = set(outcome.published)
        for row in rows:
            if row.seq in published:
                metrics.EVENTS_PUBLISHED.labels(self.service, row.event_type).inc()
        if outcome.broker_error is not None:
            raise BrokerUnavailable(
                f"the broker cannot take events ({_reason(outcome.broker_error)})"
            ) from outcome.broker_error
        return len(rows), len(outcome.published)

    async def claim(self) -> list[Row[Any]]:
        """Lease the oldest rows due to this relay, in one short transaction; oldest first."""
        now = utc_now()
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    self._claim, {"now": now, "until": now + self.lease, "me": self.relay_id}
                )
            ).all()
            await session.commit()
        return sorted(rows, key=lambda row: int(row.seq))

    async def _release_rows(self, seqs: list[int]) -> None:
        async with self.db.session() as session:
            await session.execute(self._release, {"seqs": seqs, "me": self.relay_id})
            await session.commit()

    async def _publish(self, rows: Sequence[Row[Any]]) -> _Outcome:
        """Send the rows in order, then wait for the stream's acks all together: one flush and
        one wait per round instead of a round trip per event. A key-value entry is waited for
        before the rows after it are sent, and when it is not stored they wait for the next
        round. A broker that cannot take events stops the round: nothing is blamed on a row."""
        acks: dict[int, asyncio.Future[PubAck]] = {}
        outcome = _Outcome()
        unanswered: Row[Any] | None = None
        try:
            stalled = False
            for row in rows:
                try:
                    acks[row.seq] = await self._send(row)
                except Exception as error:  # a message too large, a subject not allowed
                    if broker_condition(error):
                        outcome.broker_error = error
                        break
                    outcome.refused[row.seq] = _reason(error)
                if row.subject.startswith(KEY_VALUE_SUBJECTS):
                    entry = acks.get(row.seq)
                    if entry is None:
                        break
                    await asyncio.wait([entry], timeout=ACK_TIMEOUT_SECONDS)
                    stalled = not entry.done()
                    if stalled or entry.exception() is not None:
                        break
            if acks and not stalled:
                await asyncio.wait(acks.values(), timeout=ACK_TIMEOUT_SECONDS)
            for row in rows:
                ack = acks.get(row.seq)
                if ack is None:
                    continue
                if not ack.done():
                    unanswered = unanswered or row
                elif (failure := ack.exception()) is None:
                    outcome.published.append(row.seq)
                elif broker_condition(failure):
                    outcome.broker_error = failure
                else:
                    outcome.refused[row.seq] = _reason(failure)
        finally:
            # An ack that never came holds a slot of the client's in-flight limit until cancelled.
            for ack in acks.values():
                ack.cancel()
        if unanswered is not None and outcome.broker_error is None:
            await self._why_unanswered(unanswered, outcome)
        if outcome.refused and outcome.broker_error is None:
            # Blame the rows only when JetStream itself answers: while it is starting up or
            # away, every publish fails alike (no stream answers) and no row is at fault.
            try:
                await self.js.account_info()
            except Exception as error:
                outcome.broker_error = error
                outcome.refused.clear()
        return outcome

    async def _send(self, row: Row[Any]) -> asyncio.Future[PubAck]:
        """Publish a row without waiting for its ack; when spans are exported, under a span of
        the trace the row was recorded in, whose context the message carries on."""
        headers = _headers(row)
        if not tracing_on():
            return await self.js.publish_async(row.subject, row.payload, headers=headers)
        with tracer(__name__).start_as_current_span(
            f"publish {row.subject}",
            context=extract_context(headers),
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.message.id": row.event_id},
        ):
            headers.update(inject_headers())
            return await self.js.publish_async(row.subject, row.payload, headers=headers)

    async def _why_unanswered(self, row: Row[Any], outcome: _Outcome) -> None:
        """A publish left unanswered: the client (nats-py) drops JetStream's error answers to
        asynchronous publishes (a stream full, a message it will not take), so the ack just
        never comes. Publishing the first such row again and waiting for the answer tells
        whose fault it is; a copy of a row that did arrive is dropped by the stream (same
        Nats-Msg-Id). The rows after it wait for the next round either way."""
        try:
            await self.js.publish(
                row.subject, row.payload, timeout=ACK_TIMEOUT_SECONDS, headers=_headers(row)
            )
        except Exception as error:
            if broker_condition(error):
                outcome.broker_error = error
            else:
                outcome.refused[row.seq] = _reason(error)
            return
        outcome.published.append(row.seq)

    async def _settle(
        self, session: AsyncConnection, rows: Sequence[Row[Any]], outcome: _Outcome
    ) -> None:
        """Mark the round's rows: one statement for those published, one for those refused,
        and one giving back those the broker did not take (only when there are such)."""
        now = utc_now()
        refused = outcome.refused
        if outcome.published:
            await session.execute(self._mark_published, {"seqs": outcome.published, "now": now})
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
        if len(outcome.published) + len(refused) < len(rows):
            done = {*outcome.published, *refused}
            untaken = [row.seq for row in rows if row.seq not in done]
            await session.execute(self._release, {"seqs": untaken, "me": self.relay_id})

    async def _sample(self) -> None:
        """At most every SAMPLE_SECONDS: the age of the oldest event waiting and the broker's
        store use, for /metrics. A failure leaves the last figures; the round goes on."""
        now = utc_now()
        if self._last_sample is not None and now - self._last_sample < timedelta(
            seconds=SAMPLE_SECONDS
        ):
            return
        self._last_sample = now
        try:
            oldest = await self.oldest_pending()
            age = (now - as_utc(oldest)).total_seconds() if oldest else 0.0
            metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(max(age, 0.0))
            bus_user = SERVICES.get(self.service)
            await sample_store(self.js, bus_user.streams_read() if bus_user else [])
        except Exception as error:
            log.debug("sampling the outbox and the broker's store failed: %s", error)

    async def oldest_pending(self) -> datetime | None:
        """When the oldest event not yet published (nor parked) was committed."""
        async with self.db.session() as session:
            oldest = await session.scalar(
                select(func.min(self.table.c.created_at)).where(
                    self.table.c.published_at.is_(None), self.table.c.parked_at.is_(None)
                )
            )
            await session.rollback()
        return oldest

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


def _claim_rows(table: Table, batch_size: int) -> Update:
    """Lease the oldest rows due and unclaimed (or whose lease ran out) to a relay, returning
    them (bound: `now`, `until`, `me`). Rows another relay is claiming this instant are
    skipped, not waited for."""
    due = (
        select(table.c.seq)
        .where(
            table.c.published_at.is_(None),
            table.c.parked_at.is_(None),
            or_(table.c.retry_at.is_(None), table.c.retry_at <= bindparam("now")),
            or_(table.c.claimed_until.is_(None), table.c.claimed_until <= bindparam("now")),
        )
        .order_by(table.c.seq)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return (
        update(table)
        .where(table.c.seq.in_(due.scalar_subquery()))
        .values(claimed_until=bindparam("until"), claimed_by=bindparam("me"))
        .returning(
            table.c.seq,
            table.c.event_id,
            table.c.subject,
            table.c.event_type,
            table.c.payload,
            table.c.headers,
            table.c.attempts,
        )
    )


async def sample_store(js: JetStreamContext, streams: Sequence[str]) -> None:
    """The broker's file store as this service's NATS user may see it: its account's use and
    limit, and the bytes, messages and limit of the streams it reads."""
    account = await js.account_info()
    metrics.JETSTREAM_STORE_USED.set(account.storage)
    if account.limits.max_storage and account.limits.max_storage > 0:
        metrics.JETSTREAM_STORE_LIMIT.set(account.limits.max_storage)
    for stream in streams:
        info = await js.stream_info(stream)
        metrics.JETSTREAM_STREAM_BYTES.labels(stream).set(info.state.bytes)
        metrics.JETSTREAM_STREAM_MESSAGES.labels(stream).set(info.state.messages)
        if info.config.max_bytes and info.config.max_bytes > 0:
            metrics.JETSTREAM_STREAM_MAX_BYTES.labels(stream).set(info.config.max_bytes)


def _headers(row: Row[Any]) -> dict[str, str]:
    headers: dict[str, str] = json.loads(row.headers)
    headers[MSG_ID_HEADER] = row.event_id
    headers[EVENT_TYPE_HEADER] = row.event_type
    return headers


def broker_condition(error: BaseException) -> bool:
    """Whether a publish failed for the broker's sake (away, not answering, full), not the
    message's."""
    if isinstance(error, BROKER_DOWN_ERRORS):
        return True
    return isinstance(error, APIError) and error.err_code in BROKER_FULL_CODES


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
