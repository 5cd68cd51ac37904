"""Idempotent consumers (收件箱): durable JetStream pull consumers with explicit ack. The event id
goes into the inbox table in the same transaction as the handler's writes, so a redelivered
message is acked and skipped.

A failed attempt is counted per message in `consumer_failures`, in a transaction of its own
after the failed one rolled back, and only while the database answers: JetStream's delivery
count also counts the redeliveries of an outage, so it says nothing about the message. Then:
- while the database does not answer, nothing is counted: the consumer stops fetching and
  probes it with growing pauses (capped) until it answers, so an outage causes no storm and
  loses nothing;
- a transient failure (a dependency away, a timeout) is retried with back-off, up to a ceiling
  of attempts and of time since the first failure (a message that times out every time must
  not be retried for ever);
- an ordinary error is retried a few times (it may have met a passing state);
- an undecodable event or an `UnprocessableEvent` is given up on at once.
A message given up on goes to the dead letters (servicekit.dead_letters) with the reason, and
is terminated only once the dead letter is stored.

A fetched batch is handled in one transaction, its inbox rows written in one statement that
tells which were seen before; handlers run for the others only.

One durable consumer per service and stream dispatches to every handler of an event type. One
that took over former durables (`formers`, each with the handlers it ran) starts where the
slowest of them stood, deletes them, and runs a former's handler only for an event that former
has not recorded in the inbox: taking over replays nothing twice and misses nothing.
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
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    bindparam,
    delete,
    select,
    text,
)

from servicekit import dead_letters, metrics
from servicekit.auth import reset_auth, service_identity, set_auth
from servicekit.bus import DEAD_LETTER_RETENTION, RETENTION
from servicekit.db import Database, lost_connection, lost_race, upsert_on
from servicekit.dead_letters import EVENT_ID_HEADER, REPLAY_FOR_HEADER
from servicekit.errors import ServiceUnavailable
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.telemetry import extract_context, tracer
from servicekit.timeutil import as_utc, utc_now
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)


# An event id is kept in the inbox this long after it was handled: for as long as anything can
# bring the message back (a redelivery from its stream, or a replay of a dead letter, which
# carries the event id), and a week more for clocks.
INBOX_KEPT = max(RETENTION, DEAD_LETTER_RETENTION) + timedelta(days=7)

# Formers are deleted as soon as a consumer that took over from them is created, so only
# events stored before then can have been handled by them; this much more allows for the
# clocks of a cluster's servers and for deletion's own time.
TAKE_OVER_MARGIN = timedelta(minutes=1)

# How often a consumer looks up how far behind its stream it is, for /metrics.
SAMPLE_INTERVAL = timedelta(seconds=15)

FAILURES_TABLE = "consumer_failures"
# The last error as kept with a message's failures: a line, not a traceback.
_ERROR_LIMIT = 500


def inbox_table(metadata: MetaData) -> Table:
    """The inbox: the events each consumer handled, and (in `consumer_failures`, see
    `failures_table`) the failed attempts of those it has not handled yet."""
    failures_table(metadata)
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(64), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
        Index("ix_inbox_handled_at", "handled_at"),
    )


def failures_table(metadata: MetaData) -> Table:
    """Failed attempts per consumer and event: `errors` counts ordinary handler errors,
    `attempts` every failure counted (transient ones too)."""
    if FAILURES_TABLE in metadata.tables:
        return metadata.tables[FAILURES_TABLE]
    return Table(
        FAILURES_TABLE,
        metadata,
        Column("consumer", String(64), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("errors", Integer, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("first_failed_at", DateTime(timezone=True), nullable=False),
        Column("last_failed_at", DateTime(timezone=True), nullable=False),
        Column("last_error", String(_ERROR_LIMIT), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
        Index("ix_consumer_failures_last_failed_at", "last_failed_at"),
    )


async def prune(db: Database, inbox: Table, before: datetime) -> int:
    """Forget events handled, and failures last counted, before `before`; returns how many."""
    failures = failures_table(inbox.metadata)
    async with db.session() as session:
        handled = await session.execute(delete(inbox).where(inbox.c.handled_at < before))
        failed = await session.execute(delete(failures).where(failures.c.last_failed_at < before))
        await session.commit()
    return int(handled.rowcount or 0) + int(failed.rowcount or 0)


@dataclass(frozen=True)
class Failures:
    """What has been counted against one message so far."""

    errors: int
    attempts: int
    first_failed_at: datetime


@dataclass(frozen=True)
class RetryLimits:
    """When a message that keeps failing is given up on."""

    # Ordinary errors: a few, in case the handler met a passing state.
    errors: int = 5
    # Failures of any kind, transient ones included: a message that times out every time.
    attempts: int = 100
    # Time since the first failure: a dependency away longer than this is an operator's
    # matter, and the dead letter can be replayed once it is back.
    failing_for: timedelta = timedelta(hours=2)


def give_up_reason(failures: Failures, limits: RetryLimits, now: datetime) -> str | None:
    """Why a message that failed again is given up on, or None to try it again."""
    if failures.errors >= limits.errors:
        return f"failed {failures.errors} times"
    if failures.attempts >= limits.attempts:
        return f"failed {failures.attempts} attempts"
    failing_for = now - failures.first_failed_at
    if failing_for >= limits.failing_for:
        return f"failing for {failing_for} over {failures.attempts} attempts"
    return None


Handler = Callable[[UnitOfWork, Any], Awaitable[None]]
# An event's protobuf full name → its message class and the handler that applies it.
Handlers = dict[str, tuple[type[Message], Handler]]


def chained_handlers(*tables: Handlers) -> Handlers:
    """One consumer's handlers from several tables: an event type named in more than one has
    each table's handler run in turn, in the same unit of work (one durable per stream, not
    one per read model)."""
    chained: dict[str, tuple[type[Message], list[Handler]]] = {}
    for table in tables:
        for name, (message_class, handler) in table.items():
            chained.setdefault(name, (message_class, []))[1].append(handler)
    return {name: (message_class, _in_turn(run)) for name, (message_class, run) in chained.items()}


def _in_turn(run: list[Handler]) -> Handler:
    if len(run) == 1:
        return run[0]

    async def in_turn(uow: UnitOfWork, event: Any) -> None:
        for handler in run:
            await handler(uow, event)

    return in_turn


# A handler and the former consumer it came from (None: the consumer's own).
Step = tuple[str | None, Handler]


@dataclass(frozen=True)
class Former:
    """A durable consumer of its own that a merged one took over: its name (the inbox rows and
    dead letters it left are under it) and the handlers it ran."""

    name: str
    handlers: Handlers


class UnprocessableEvent(Exception):
    """A handler's word that this event can never be handled (it breaks a rule, not a
    dependency): the message goes to the dead letters at once, not retried."""


_TRANSIENT = (OSError, TimeoutError, ServiceUnavailable)


def transient(error: BaseException) -> bool:
    """A failure that passes by itself: the database or a dependency away, a timeout, a
    transaction rolled back to break a deadlock (also when wrapped in another error, as
    SQLAlchemy wraps the driver's)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, _TRANSIENT) or lost_connection(cause) or lost_race(cause):
            return True
        cause = cause.__cause__
    return False


@dataclass(frozen=True)
class Delivery:
    msg: Msg
    event_id: str
    event: Message
    # The name the inbox records the event under: the consumer's own, or a former's for the
    # replay of a dead letter that former gave up on.
    recorded_as: str
    steps: tuple[Step, ...]


@functools.cache
def _note_events(dialect_name: str, inbox: Table) -> Any:
    """Record event ids not there already, telling which were new: executed with a batch's
    rows it is one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING. Built once per inbox
    (a hot path)."""
    return (
        upsert_on(dialect_name, inbox)
        .on_conflict_do_nothing()
        .returning(inbox.c.consumer, inbox.c.event_id)
    )


@functools.cache
def _done_by(inbox: Table) -> Any:
    return select(inbox.c.consumer, inbox.c.event_id).where(
        inbox.c.consumer.in_(bindparam("formers", expanding=True)),
        inbox.c.event_id.in_(bindparam("event_ids", expanding=True)),
    )


@functools.cache
def _add_failure(dialect_name: str, failures: Table) -> Any:
    """Add one failed attempt to a message's count (the first one makes the row)."""
    insert = upsert_on(dialect_name, failures)
    return insert.on_conflict_do_update(
        index_elements=[failures.c.consumer, failures.c.event_id],
        set_={
            "errors": failures.c.errors + insert.excluded.errors,
            "attempts": failures.c.attempts + 1,
            "last_failed_at": insert.excluded.last_failed_at,
            "last_error": insert.excluded.last_error,
        },
    ).returning(failures.c.errors, failures.c.attempts, failures.c.first_failed_at)


def _delivered(msg: Msg) -> int:
    """How many times JetStream has given this message (1 for one not from JetStream)."""
    try:
        return msg.metadata.num_delivered or 1
    except Exception:
        return 1


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
    and a handler that writes through the given unit of work (committed by the consumer);
    `formers`, the durables it took over, add theirs."""

    service: str
    name: str
    stream: str
    subjects: list[str]
    handlers: Handlers
    new_uow: Callable[[], UnitOfWork]
    inbox: Table
    formers: list[Former] = field(default_factory=list)
    # Formers' inbox rows are looked up for events stored up to this long after this durable
    # was created.
    take_over_margin: timedelta = TAKE_OVER_MARGIN
    # Where dead letters go; `run` sets it when not given.
    js: JetStreamContext | None = None
    # When a message that keeps failing while the database answers goes to the dead letters.
    limits: RetryLimits = field(default_factory=RetryLimits)
    ack_wait_seconds: float = 30.0
    # One try at a message (or a batch) ends as a timeout after this, before the server would
    # deliver it again: a handler that hangs is a failed attempt, not a stuck consumer.
    attempt_timeout_seconds: float = 20.0
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
    # Event type → its message class and every handler of it, the formers' included.
    _routes: dict[str, tuple[type[Message], tuple[Step, ...]]] = field(init=False)
    # When the durable was created (known once set up).
    _created_at: datetime | None = field(default=None, init=False)
    _last_sample: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        routes: dict[str, tuple[type[Message], tuple[Step, ...]]] = {
            event_type: (message_class, ((None, handler),))
            for event_type, (message_class, handler) in self.handlers.items()
        }
        for former in self.formers:
            for event_type, (message_class, handler) in former.handlers.items():
                known, steps = routes.get(event_type, (message_class, ()))
                if known is not message_class:
                    raise ValueError(f"{event_type} read as two message classes on {self.name}")
                routes[event_type] = (message_class, (*steps, (former.name, handler)))
        self._routes = routes

    def config(
        self,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        start_sequence: int | None = None,
    ) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=deliver_policy,
            opt_start_seq=start_sequence,
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
        await self.set_up(js)
        subscription = await js.pull_subscribe_bind(durable=self.name, stream=self.stream)
        fetch_backoff = 0.5
        while not self._stopping.is_set():
            await self._sample(js)
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

    async def set_up(self, js: JetStreamContext) -> None:
        """Create the durable, or bring one made by an older version to this config; a new one
        that takes over formers starts at the lowest of their ack floors, then they go."""
        try:
            existing = (await js.consumer_info(self.stream, self.name)).config
            # Where a durable starts cannot change once it exists.
            config = self.config(
                existing.deliver_policy or DeliverPolicy.ALL, existing.opt_start_seq
            )
        except NotFoundError:
            config = await self._config_after_formers(js)
        self._created_at = (await js.add_consumer(self.stream, config)).created
        for former in self.formers:
            # Also when an earlier start stopped between creating this durable and this.
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(self.stream, former.name)
                log.info("%s took over from %s", self.name, former.name)

    async def _config_after_formers(self, js: JetStreamContext) -> ConsumerConfig:
        """Every event not yet acked by all formers comes again: the formers' inbox rows tell
        which of their handlers already ran for it."""
        floors = []
        for former in self.formers:
            with contextlib.suppress(NotFoundError):
                info = await js.consumer_info(self.stream, former.name)
                floors.append(info.ack_floor.stream_seq if info.ack_floor else 0)
        if not floors:
            return self.config()
        return self.config(DeliverPolicy.BY_START_SEQUENCE, min(floors) + 1)

    def stop(self) -> None:
        self._stopping.set()

    async def _sample(self, js: JetStreamContext) -> None:
        """At most every SAMPLE_SECONDS: how far behind its stream this consumer is, for
        /metrics. A failure leaves the last figures."""
        now = utc_now()
        if self._last_sample is not None and now - self._last_sample < SAMPLE_INTERVAL:
            return
        self._last_sample = now
        try:
            info = await js.consumer_info(self.stream, self.name)
        except Exception as error:
            log.debug("reading %s's position failed: %s", self.name, error)
            return
        metrics.CONSUMER_PENDING.labels(self.service, self.name).set(info.num_pending or 0)
        metrics.CONSUMER_ACK_PENDING.labels(self.service, self.name).set(info.num_ack_pending or 0)

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
        if _delivered(msg) > 1:
            metrics.CONSUMER_REDELIVERIES.labels(self.service, self.name).inc()
        message_class, steps = self._routes.get(headers.get(EVENT_TYPE_HEADER, ""), (Message, ()))
        recorded_as = headers.get(REPLAY_FOR_HEADER) or self.name
        if recorded_as != self.name:
            # A replay for a former (or another consumer): only that former's handlers.
            steps = tuple(step for step in steps if step[0] == recorded_as)
        if not steps:
            self._count("ignored")
            await msg.ack()
            return None
        # A replay keeps the event id apart from its Nats-Msg-Id (see servicekit.dead_letters).
        event_id = headers.get(EVENT_ID_HEADER) or headers.get(MSG_ID_HEADER)
        try:
            if not event_id:
                raise DecodeError("no message id")
            event = message_class.FromString(msg.data)
            return Delivery(msg, event_id, event, recorded_as, steps)
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
                async with asyncio.timeout(self.attempt_timeout_seconds), self.new_uow() as uow:
                    duplicates = await self._record(uow, deliveries)
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
            async with asyncio.timeout(self.attempt_timeout_seconds), self.new_uow() as uow:
                [duplicate] = await self._record(uow, [delivery])
                await uow.commit()
        except UnprocessableEvent as error:
            await self._dead_letter(delivery.msg, "unprocessable", str(error), delivery.event_id)
            return
        except Exception as error:
            await self._failed(delivery, error)
            return
        await self._done(delivery, duplicate)

    async def _record(self, uow: UnitOfWork, deliveries: list[Delivery]) -> list[bool]:
        """Note the events in the inbox and apply the new ones, inside `uow`; per delivery,
        True when it was seen before."""
        now = utc_now()
        keys = dict.fromkeys((d.recorded_as, d.event_id) for d in deliveries)
        # One statement both records the events and tells which were seen before.
        noted = await uow.session.execute(
            _note_events(uow.session.dialect.name, self.inbox),
            [
                {"consumer": name, "event_id": event_id, "handled_at": now}
                for name, event_id in keys
            ],
        )
        new = {(row.consumer, row.event_id) for row in noted}
        done_by_formers = await self._done_by_formers(
            uow, [d for d in deliveries if (self.name, d.event_id) in new and self._may_be_done(d)]
        )
        duplicates = []
        for delivery in deliveries:
            key = (delivery.recorded_as, delivery.event_id)
            duplicates.append(key not in new)
            if key not in new:
                continue
            # The same event twice in one batch is applied once.
            new.discard(key)
            done = done_by_formers.get(delivery.event_id, set())
            with tracer(__name__).start_as_current_span(
                f"consume {self.name}",
                context=extract_context(delivery.msg.headers or {}),
                kind=SpanKind.CONSUMER,
            ):
                for former, handler in delivery.steps:
                    if former not in done:
                        await handler(uow, delivery.event)
        return duplicates

    def _may_be_done(self, delivery: Delivery) -> bool:
        """Whether a former may have handled the event (stored before this took over)."""
        if not self.formers or delivery.recorded_as != self.name:
            return False
        stored_at = delivery.msg.metadata.timestamp
        return self._created_at is None or stored_at < self._created_at + self.take_over_margin

    async def _done_by_formers(
        self, uow: UnitOfWork, deliveries: list[Delivery]
    ) -> dict[str, set[str | None]]:
        """Per event id, the formers that recorded it in the inbox before this took over."""
        if not self.formers or not deliveries:
            return {}
        inbox = self.inbox
        rows = await uow.session.execute(
            _done_by(inbox),
            {
                "formers": [former.name for former in self.formers],
                "event_ids": [d.event_id for d in deliveries],
            },
        )
        done: dict[str, set[str | None]] = {}
        for row in rows:
            done.setdefault(row.event_id, set()).add(row.consumer)
        return done

    async def _done(self, delivery: Delivery, duplicate: bool) -> None:
        await delivery.msg.ack()
        self._count("duplicate" if duplicate else "handled")
        occurred = getattr(getattr(delivery.event, "meta", None), "occurred_at", None)
        if occurred is not None and not duplicate:
            lag = (utc_now() - occurred.ToDatetime(tzinfo=UTC)).total_seconds()
            metrics.EVENT_LAG.labels(self.service, self.name).observe(max(lag, 0.0))

    async def _failed(self, delivery: Delivery, error: Exception) -> None:
        """A handler failed: count the attempt against the message (only while the database
        answers: an outage is nobody's fault), then retry it or, past its limits, give up."""
        msg = delivery.msg
        is_transient = transient(error)
        if not is_transient and not await self._database_answers():
            await self._retry_later(msg, error)
            return
        described = f"{type(error).__name__}: {error}"
        try:
            failures = await self._count_failure(delivery, described, is_transient)
        except Exception:
            # Not counted (the database went away meanwhile, or worse): tried again later.
            log.exception("could not count a failure on %s", self.name)
            await self._database_answers()
            await self._retry_later(msg, error)
            return
        reason = give_up_reason(failures, self.limits, utc_now())
        if reason is not None:
            await self._dead_letter(
                msg, "failing", f"{reason}; last: {described}", delivery.event_id
            )
            return
        log.warning(
            "%s failure on %s (attempt %d); will retry",
            "transient" if is_transient else "handler",
            self.name,
            failures.attempts,
            exc_info=error,
        )
        self._count("retried")
        await msg.nak(delay=self._retry_delay(failures.attempts))

    async def _count_failure(self, delivery: Delivery, error: str, is_transient: bool) -> Failures:
        """Add the attempt to the message's failures, in a transaction of its own."""
        failures = failures_table(self.inbox.metadata)
        now = utc_now()
        async with self.new_uow() as uow:
            counted = (
                await uow.session.execute(
                    _add_failure(uow.session.dialect.name, failures),
                    {
                        "consumer": self.name,
                        "event_id": delivery.event_id,
                        "errors": 0 if is_transient else 1,
                        "attempts": 1,
                        "first_failed_at": now,
                        "last_failed_at": now,
                        "last_error": error[:_ERROR_LIMIT],
                    },
                )
            ).one()
            await uow.commit()
        return Failures(counted.errors, counted.attempts, as_utc(counted.first_failed_at))

    async def _forget_failures(self, event_id: str) -> None:
        """A message given up on starts afresh if it is replayed (after a fix)."""
        failures = failures_table(self.inbox.metadata)
        try:
            async with self.new_uow() as uow:
                await uow.session.execute(
                    delete(failures).where(
                        failures.c.consumer == self.name, failures.c.event_id == event_id
                    )
                )
                await uow.commit()
        except Exception:
            # Pruned with the inbox in any case; a replay would only be given up on sooner.
            log.exception("could not forget the failures of %s on %s", event_id, self.name)

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

    async def _dead_letter(
        self, msg: Msg, kind: str, reason: str, event_id: str | None = None
    ) -> None:
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
        if event_id is not None:
            await self._forget_failures(event_id)
