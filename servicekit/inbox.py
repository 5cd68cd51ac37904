"""Idempotent consumers (收件箱): durable JetStream pull consumers with explicit ack. The event id
goes into the inbox table in the same transaction as the handler's writes, so a redelivered
message is acked and skipped.

A failure is one of two kinds:
- transient (the database or a dependency is away, a timeout): the message is retried, never
  given up on. When the database does not answer, the consumer stops fetching and probes it
  with growing pauses (capped) until it answers, so an outage causes no storm and loses nothing;
- unprocessable (undecodable, an `UnprocessableEvent`, or an error that keeps coming while the
  database answers): the message goes to the dead letters (servicekit.dead_letters) and is
  terminated only once the dead letter is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import SpanKind
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    text,
)

from servicekit import dead_letters, metrics
from servicekit.auth import reset_auth, service_identity, set_auth
from servicekit.bus import RETENTION
from servicekit.db import Database, lost_connection, upsert_on
from servicekit.dead_letters import EVENT_ID_HEADER, REPLAY_FOR_HEADER
from servicekit.errors import ServiceUnavailable
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.telemetry import extract_context, tracer
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)


# An event id is kept in the inbox this long after it was handled: past the stream's own
# retention nothing can bring the message back, and a week more covers clocks and replays.
INBOX_KEPT = RETENTION + timedelta(days=7)


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(64), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
        Index("ix_inbox_handled_at", "handled_at"),
    )


async def prune(db: Database, inbox: Table, before: datetime) -> int:
    """Forget events handled before `before`; returns how many."""
    async with db.session() as session:
        result = await session.execute(delete(inbox).where(inbox.c.handled_at < before))
        await session.commit()
    return int(result.rowcount or 0)


Handler = Callable[[UnitOfWork, Any], Awaitable[None]]


class UnprocessableEvent(Exception):
    """A handler's word that this event can never be handled (it breaks a rule, not a
    dependency): the message goes to the dead letters at once, not retried."""


_TRANSIENT = (OSError, TimeoutError, ServiceUnavailable)


def transient(error: BaseException) -> bool:
    """A failure that passes by itself: the database or a dependency away, a timeout (also
    when wrapped in another error, as SQLAlchemy wraps the driver's)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, _TRANSIENT) or lost_connection(cause):
            return True
        cause = cause.__cause__
    return False


@dataclass(frozen=True)
class Delivery:
    msg: Msg
    event_id: str
    event: Message
    handler: Handler


@functools.cache
def _note_event(dialect_name: str, inbox: Table) -> Any:
    """Record an event id unless it is there already: built once per inbox (a hot path)."""
    return upsert_on(dialect_name, inbox).on_conflict_do_nothing()


@contextlib.contextmanager
def _acting_as_service(service: str) -> Iterator[None]:
    # Events a handler emits record the service as their actor, not whoever called last.
    token = set_auth(service_identity(service))
    try:
        yield
    finally:
        reset_auth(token)


@dataclass
class EventConsumer:
    """One durable consumer: `handlers` maps an event's protobuf full name to its message class
    and a handler that writes through the given unit of work (committed by the consumer)."""

    service: str
    name: str
    stream: str
    subjects: list[str]
    handlers: dict[str, tuple[type[Message], Handler]]
    new_uow: Callable[[], UnitOfWork]
    inbox: Table
    # Where dead letters go; `run` sets it when not given.
    js: JetStreamContext | None = None
    # A message that keeps failing while the database answers goes to the dead letters at
    # this delivery (transient failures never count: they are retried for as long as it takes).
    dead_letter_after: int = 5
    ack_wait_seconds: float = 30.0
    batch_size: int = 64
    # A partial batch waits this long for more: one transaction and one fetch for several
    # events cost far less than one each. Read models lag by up to about this much.
    linger_seconds: float = 0.1
    # Redelivery delays double from half a second up to this.
    max_retry_delay: float = 30.0
    # While the database is down it is probed with pauses doubling up to this: one cheap
    # statement each, and the consumer resumes at most this long after it is back.
    max_probe_delay: float = 5.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _database_down: bool = field(default=False, init=False)

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # Unlimited: the consumer itself decides when a message is given up on (sent to
            # the dead letters), never the server after a count of transient failures.
            max_deliver=-1,
            ack_wait=self.ack_wait_seconds,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
            max_ack_pending=1000,
        )

    async def run(self, js: JetStreamContext) -> None:
        self.js = self.js or js
        # Creates the consumer, or brings one made by an older version to this config.
        await js.add_consumer(self.stream, self.config())
        subscription = await js.pull_subscribe_bind(durable=self.name, stream=self.stream)
        fetch_backoff = 0.5
        while not self._stopping.is_set():
            if self._database_down:
                await self._wait_for_database()
                continue
            try:
                messages = await subscription.fetch(self.batch_size, timeout=1.0)
                fetch_backoff = 0.5
            except (NatsTimeout, TimeoutError):
                continue
            except Exception:
                log.exception("fetch failed on %s", self.name)
                await self._pause(fetch_backoff)
                fetch_backoff = min(fetch_backoff * 2, self.max_probe_delay)
                continue
            await self.handle_batch(messages)
            if len(messages) < self.batch_size:
                await asyncio.sleep(self.linger_seconds)
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()

    def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when told to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _count(self, outcome: str) -> None:
        metrics.INBOX_HANDLED.labels(self.service, self.name, outcome).inc()

    async def _take(self, msg: Msg) -> Delivery | None:
        """The event in a message, or None when the message was settled here already: acked
        when no handler wants it, sent to the dead letters when it cannot be read."""
        headers = msg.headers or {}
        entry = self.handlers.get(headers.get(EVENT_TYPE_HEADER, ""))
        replay_for = headers.get(REPLAY_FOR_HEADER)
        if entry is None or (replay_for is not None and replay_for != self.name):
            self._count("ignored")
            await msg.ack()
            return None
        message_class, handler = entry
        # A replay keeps the event id apart from its Nats-Msg-Id (see servicekit.dead_letters).
        event_id = headers.get(EVENT_ID_HEADER) or headers.get(MSG_ID_HEADER)
        try:
            if not event_id:
                raise DecodeError("no message id")
            return Delivery(msg, event_id, message_class.FromString(msg.data), handler)
        except DecodeError as error:
            await self._dead_letter(msg, "undecodable", str(error) or "not a protobuf message")
            return None

    async def handle_batch(self, messages: list[Msg]) -> None:
        """Handle a fetched batch in one transaction (one commit instead of one per message);
        if any of them fails, fall back to one transaction each so only that one is retried."""
        with _acting_as_service(self.service):
            deliveries = [d for d in [await self._take(msg) for msg in messages] if d]
            if len(deliveries) == 1:
                await self._handle_one(deliveries[0])
                return
            if not deliveries:
                return
            try:
                async with self.new_uow() as uow:
                    duplicates = [await self._record(uow, d) for d in deliveries]
                    await uow.commit()
            except Exception as error:
                if transient(error) and not await self._database_answers():
                    log.warning(
                        "transient failure on %s (batch of %d): %s; will retry",
                        self.name,
                        len(deliveries),
                        error,
                    )
                    for delivery in deliveries:
                        await self._nak(delivery.msg)
                    return
                for delivery in deliveries:
                    await self._handle_one(delivery)
                return
            for delivery, duplicate in zip(deliveries, duplicates, strict=True):
                await self._done(delivery, duplicate)

    async def handle(self, msg: Msg) -> None:
        with _acting_as_service(self.service):
            if delivery := await self._take(msg):
                await self._handle_one(delivery)

    async def _handle_one(self, delivery: Delivery) -> None:
        if self._database_down:
            # Found down a moment ago (in this batch): no use trying until a probe says so.
            await self._nak(delivery.msg)
            return
        try:
            async with self.new_uow() as uow:
                duplicate = await self._record(uow, delivery)
                await uow.commit()
        except UnprocessableEvent as error:
            await self._dead_letter(delivery.msg, "unprocessable", str(error))
            return
        except Exception as error:
            await self._failed(delivery.msg, error)
            return
        await self._done(delivery, duplicate)

    async def _record(self, uow: UnitOfWork, delivery: Delivery) -> bool:
        """Note the event in the inbox and apply it, inside `uow`; True when it was seen before."""
        headers = delivery.msg.headers or {}
        with tracer(__name__).start_as_current_span(
            f"consume {self.name}", context=extract_context(headers), kind=SpanKind.CONSUMER
        ):
            # One statement both records the event and tells whether it was seen before.
            noted = await uow.session.execute(
                _note_event(uow.session.dialect.name, self.inbox),
                {"consumer": self.name, "event_id": delivery.event_id, "handled_at": utc_now()},
            )
            if noted.rowcount == 0:
                return True
            await delivery.handler(uow, delivery.event)
        return False

    async def _done(self, delivery: Delivery, duplicate: bool) -> None:
        await delivery.msg.ack()
        self._count("duplicate" if duplicate else "handled")
        occurred = getattr(getattr(delivery.event, "meta", None), "occurred_at", None)
        if occurred is not None and not duplicate:
            lag = (utc_now() - occurred.ToDatetime(tzinfo=UTC)).total_seconds()
            metrics.EVENT_LAG.labels(self.service, self.name).observe(max(lag, 0.0))

    async def _failed(self, msg: Msg, error: Exception) -> None:
        """A handler failed: retry what may pass by itself, give up only on what keeps failing
        while the database answers (an error that is neither a rule broken nor an outage)."""
        if transient(error) or not await self._database_answers():
            await self._retry_later(msg, error)
            return
        delivered = msg.metadata.num_delivered or 1
        if delivered >= self.dead_letter_after:
            await self._dead_letter(
                msg, "failing", f"{type(error).__name__}: {error} (delivery {delivered})"
            )
            return
        log.warning(
            "handler failed on %s (delivery %d); will retry", self.name, delivered, exc_info=error
        )
        self._count("retried")
        await msg.nak(delay=self._retry_delay(delivered))

    async def _retry_later(self, msg: Msg, error: Exception) -> None:
        log.warning(
            "transient failure on %s (delivery %d): %s; will retry",
            self.name,
            msg.metadata.num_delivered or 1,
            error,
        )
        await self._nak(msg)

    async def _nak(self, msg: Msg) -> None:
        self._count("retried")
        # While the database is down the consumer fetches nothing, so the message may come
        # back as soon as it resumes; a dependency that is away gets growing pauses.
        delay = None if self._database_down else self._retry_delay(msg.metadata.num_delivered or 1)
        await msg.nak(delay=delay)

    def _retry_delay(self, delivered: int) -> float:
        return min(0.5 * 2 ** min(delivered - 1, 16), self.max_retry_delay)

    async def _database_answers(self) -> bool:
        """Probe the database; when it does not answer, stop fetching until it does."""
        try:
            async with asyncio.timeout(self.max_probe_delay * 2), self.new_uow() as uow:
                await uow.session.execute(text("SELECT 1"))
        except Exception as error:
            if not self._database_down:
                log.warning("database unavailable to %s: %s; pausing", self.name, error)
                metrics.CONSUMER_WAITING.labels(self.service, self.name).set(1)
            self._database_down = True
            return False
        if self._database_down:
            log.info("database back for %s; resuming", self.name)
            metrics.CONSUMER_WAITING.labels(self.service, self.name).set(0)
        self._database_down = False
        return True

    async def _wait_for_database(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            await self._pause(delay)
            if await self._database_answers():
                return
            delay = min(delay * 2, self.max_probe_delay)

    async def _dead_letter(self, msg: Msg, kind: str, reason: str) -> None:
        """Store the message in the dead letters, then terminate it; if the dead letter cannot
        be stored, the message is retried later instead: it is never just dropped."""
        meta = msg.metadata
        original = dead_letters.Original(
            subject=msg.subject,
            stream=meta.stream or self.stream,
            sequence=meta.sequence.stream if meta.sequence else 0,
            deliveries=meta.num_delivered or 1,
            payload=msg.data,
            headers=dict(msg.headers or {}),
        )
        try:
            if self.js is None:
                raise RuntimeError("no JetStream context to send dead letters to")
            await dead_letters.send(self.js, self.service, self.name, original, kind, reason)
        except Exception:
            log.exception("could not store a dead letter on %s; will retry", self.name)
            self._count("retried")
            await msg.nak(delay=self.max_retry_delay)
            return
        log.error(
            "dead letter on %s: %s message %s#%d: %s",
            self.name,
            kind,
            original.stream,
            original.sequence,
            reason,
        )
        self._count("poison")
        metrics.DEAD_LETTERS.labels(self.service, self.name, kind).inc()
        await msg.term()
