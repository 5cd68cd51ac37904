"""Idempotent consumers (收件箱): durable JetStream pull consumers with explicit ack. The message
id goes into the inbox table in the same transaction as the handler's writes, so a redelivered
message is acked and skipped. A message that cannot be decoded, or that keeps failing, is
terminated and counted as poison rather than retried forever."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, String, Table

from servicekit import metrics
from servicekit.db import upsert_on
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.telemetry import extract_context, tracer
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(64), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


Handler = Callable[[UnitOfWork, Any], Awaitable[None]]


class UnprocessableEvent(Exception):
    """A handler's word that this event can never be handled (it breaks a rule, not a
    dependency): the message is terminated and counted as poison at once, not retried."""


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
    max_deliver: int = 5
    ack_wait_seconds: float = 30.0
    batch_size: int = 64
    # A partial batch waits this long for more: one transaction and one fetch for several
    # events cost far less than one each. Read models lag by up to about this much.
    linger_seconds: float = 0.1
    _stopping: bool = field(default=False, init=False)

    async def run(self, js: JetStreamContext) -> None:
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=self.max_deliver,
            ack_wait=self.ack_wait_seconds,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
            max_ack_pending=1000,
        )
        await js.add_consumer(self.stream, config)
        subscription = await js.pull_subscribe_bind(durable=self.name, stream=self.stream)
        while not self._stopping:
            try:
                messages = await subscription.fetch(self.batch_size, timeout=1.0)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception:
                log.exception("fetch failed on %s", self.name)
                await asyncio.sleep(0.5)
                continue
            await self.handle_batch(messages)
            if len(messages) < self.batch_size:
                await asyncio.sleep(self.linger_seconds)
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()

    def stop(self) -> None:
        self._stopping = True

    def _count(self, outcome: str) -> None:
        metrics.INBOX_HANDLED.labels(self.service, self.name, outcome).inc()

    async def _take(self, msg: Msg) -> Delivery | None:
        """The event in a message, or None when the message was settled here already: acked
        when no handler wants its type, terminated as poison when it cannot be read."""
        headers = msg.headers or {}
        entry = self.handlers.get(headers.get(EVENT_TYPE_HEADER, ""))
        if entry is None:
            self._count("ignored")
            await msg.ack()
            return None
        message_class, handler = entry
        event_id = headers.get(MSG_ID_HEADER)
        try:
            if not event_id:
                raise DecodeError("no message id")
            return Delivery(msg, event_id, message_class.FromString(msg.data), handler)
        except DecodeError:
            log.error("poison message on %s: undecodable %s", self.name, msg.subject)
            self._count("poison")
            await msg.term()
            return None

    async def handle_batch(self, messages: list[Msg]) -> None:
        """Handle a fetched batch in one transaction (one commit instead of one per message);
        if any of them fails, fall back to one transaction each so only that one is retried."""
        deliveries = [d for d in [await self._take(msg) for msg in messages] if d is not None]
        if len(deliveries) == 1:
            await self._handle_one(deliveries[0])
            return
        if not deliveries:
            return
        try:
            async with self.new_uow() as uow:
                duplicates = [await self._record(uow, d) for d in deliveries]
                await uow.commit()
        except Exception:
            for delivery in deliveries:
                await self._handle_one(delivery)
            return
        for delivery, duplicate in zip(deliveries, duplicates, strict=True):
            await self._done(delivery, duplicate)

    async def handle(self, msg: Msg) -> None:
        if delivery := await self._take(msg):
            await self._handle_one(delivery)

    async def _handle_one(self, delivery: Delivery) -> None:
        try:
            async with self.new_uow() as uow:
                duplicate = await self._record(uow, delivery)
                await uow.commit()
        except UnprocessableEvent as error:
            log.error("poison message on %s: %s", self.name, error)
            self._count("poison")
            await delivery.msg.term()
            return
        except Exception:
            await self._failed(delivery.msg)
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

    async def _failed(self, msg: Msg) -> None:
        delivered = msg.metadata.num_delivered or 1
        if delivered >= self.max_deliver:
            log.exception("poison message on %s after %d deliveries", self.name, delivered)
            self._count("poison")
            await msg.term()
        else:
            log.exception("handler failed on %s (delivery %d); will retry", self.name, delivered)
            self._count("retried")
            await msg.nak(delay=min(0.5 * 2**delivered, 30.0))
