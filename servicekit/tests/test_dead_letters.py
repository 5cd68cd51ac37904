"""Dead letters against a real NATS JetStream server and a real database: what a consumer cannot
handle is kept in DEAD_LETTERS with why and where from, terminated only once kept, and a replay
after a fix reaches that one consumer and is applied exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from aftersales.events.v1 import events_pb2
from servicekit import bus, dead_letters
from servicekit.db import Database, new_metadata
from servicekit.inbox import (
    EventConsumer,
    Failures,
    Handler,
    RetryLimits,
    UnprocessableEvent,
    give_up_reason,
    inbox_table,
)
from servicekit.metrics import DEAD_LETTERS, INBOX_HANDLED
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta, outbox_table
from servicekit.testing import DatabaseTarget, database_with, eventually
from servicekit.uow import UnitOfWork

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
RECEIVED = events_pb2.OrderReceived.DESCRIPTOR.full_name
SERVICE = "dl"


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


@pytest.fixture
def subject() -> str:
    """A store of this test's own on the shared ORDERS stream."""
    return f"orders.v1.T.{uuid.uuid4().hex[:8]}.order_received"


def consumer_of(
    db: Database, js: bus.JetStreamContext, name: str, subject: str, handler: Handler
) -> EventConsumer:
    return EventConsumer(
        service=SERVICE,
        name=name,
        stream="ORDERS",
        subjects=[subject],
        handlers={RECEIVED: (events_pb2.OrderReceived, handler)},
        new_uow=lambda: UnitOfWork(db, outbox, lambda: None),
        inbox=inbox,
        js=js,
    )


@contextlib.asynccontextmanager
async def running(*consumers: EventConsumer) -> AsyncIterator[None]:
    assert consumers[0].js is not None
    tasks = [asyncio.create_task(c.run(c.js)) for c in consumers]  # type: ignore[arg-type]
    try:
        yield
    finally:
        for consumer in consumers:
            consumer.stop()
        await asyncio.gather(*tasks)


def outcome(consumer: EventConsumer, kind: str) -> float:
    return float(INBOX_HANDLED.labels(SERVICE, consumer.name, kind)._value.get())


def new_event(subject: str) -> events_pb2.OrderReceived:
    event = events_pb2.OrderReceived(order_id=str(uuid.uuid4()), number="n")
    fill_meta(event.meta, "T", subject.split(".")[3])
    return event


async def publish(
    js: bus.JetStreamContext, subject: str, event: events_pb2.OrderReceived
) -> dict[str, str]:
    headers = {MSG_ID_HEADER: event.meta.event_id, EVENT_TYPE_HEADER: RECEIVED, "X-Trace": "t1"}
    await js.publish(subject, event.SerializeToString(), headers=dict(headers))
    return headers


async def letters_of(
    js: bus.JetStreamContext, consumer: EventConsumer
) -> list[dead_letters.DeadLetter]:
    return [
        letter
        async for letter in dead_letters.letters(js, SERVICE)
        if letter.consumer == consumer.name
    ]


async def one_letter(js: bus.JetStreamContext, consumer: EventConsumer) -> dead_letters.DeadLetter:
    async def found() -> dead_letters.DeadLetter | None:
        letters = await letters_of(js, consumer)
        return letters[0] if letters else None

    return await eventually(found)


async def settled(js: bus.JetStreamContext, consumer: EventConsumer) -> bool:
    info = await js.consumer_info("ORDERS", consumer.name)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_an_undecodable_message_is_kept_as_a_dead_letter_with_why_and_where_from(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    handled: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        handled.append(event.order_id)

    consumer = consumer_of(db, js, f"poison-{uuid.uuid4().hex[:8]}", subject, on_received)
    poison_id = str(uuid.uuid4())
    ack = await js.publish(
        subject,
        b"\xff\xff not a protobuf",
        headers={MSG_ID_HEADER: poison_id, EVENT_TYPE_HEADER: RECEIVED, "X-Trace": "t1"},
    )
    good = new_event(subject)
    await publish(js, subject, good)
    async with running(consumer):
        letter = await one_letter(js, consumer)
        await eventually(lambda: asyncio.sleep(0, handled == [good.order_id]))
        await eventually(lambda: settled(js, consumer))

    assert (letter.kind, letter.consumer) == ("undecodable", consumer.name)
    assert letter.reason
    assert (letter.subject, letter.stream, letter.stream_sequence) == (subject, "ORDERS", ack.seq)
    assert letter.payload == b"\xff\xff not a protobuf"
    assert letter.original_headers == {
        MSG_ID_HEADER: poison_id,
        EVENT_TYPE_HEADER: RECEIVED,
        "X-Trace": "t1",
    }
    assert letter.event_id == poison_id
    assert outcome(consumer, "poison") == 1
    assert DEAD_LETTERS.labels(SERVICE, consumer.name, "undecodable")._value.get() == 1
    # Terminated once kept: the message is not delivered again.
    info = await js.consumer_info("ORDERS", consumer.name)
    assert info.num_redelivered == 0
    assert await dead_letters.letter(js, SERVICE, letter.seq) == letter


async def test_an_unprocessable_event_is_kept_at_once_and_applied_exactly_once_after_replay(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    """The handler refuses the event (a rule it broke); after a fix, the replay is applied
    once, and the other consumer of the same subject, which handled it long ago, skips it."""
    fixed = False
    applied: list[str] = []
    elsewhere: list[str] = []

    async def picky(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        if not fixed:
            raise UnprocessableEvent("store unknown to this read model")
        applied.append(event.order_id)

    async def easy(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        elsewhere.append(event.order_id)

    tag = uuid.uuid4().hex[:8]
    consumer = consumer_of(db, js, f"picky-{tag}", subject, picky)
    other = consumer_of(db, js, f"easy-{tag}", subject, easy)
    event = new_event(subject)
    await publish(js, subject, event)
    async with running(consumer, other):
        letter = await one_letter(js, consumer)
        await eventually(lambda: settled(js, consumer))
        await eventually(lambda: asyncio.sleep(0, elsewhere == [event.order_id]))
        assert (letter.kind, letter.reason) == ("unprocessable", "store unknown to this read model")
        assert outcome(consumer, "retried") == 0

        fixed = True
        await dead_letters.replay(js, letter)
        await eventually(lambda: asyncio.sleep(0, applied == [event.order_id]))
        await eventually(lambda: settled(js, consumer))
        await eventually(lambda: asyncio.sleep(0, outcome(other, "ignored") == 1))
        # Replayed once more (a second operator, a retried command): dropped by the stream.
        await dead_letters.replay(js, letter)
        await asyncio.sleep(0.5)
        await eventually(lambda: settled(js, consumer))

    assert applied == [event.order_id]
    assert elsewhere == [event.order_id]
    assert await letters_of(js, consumer) == []
    with pytest.raises(LookupError):
        await dead_letters.letter(js, SERVICE, letter.seq)


async def test_a_replay_of_an_event_handled_meanwhile_is_skipped_by_the_inbox(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    """A consumer kept a dead letter but stopped before terminating the message, which came
    back and got through: replaying that letter changes nothing, as the inbox knows the event."""
    applied: list[str] = []

    async def on_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        applied.append(event.order_id)

    consumer = consumer_of(db, js, f"twice-{uuid.uuid4().hex[:8]}", subject, on_received)
    event = new_event(subject)
    headers = await publish(js, subject, event)
    original = dead_letters.Original(subject, "ORDERS", 1, 1, event.SerializeToString(), headers)
    await dead_letters.send(js, SERVICE, consumer.name, original, "failing", "crashed after")
    async with running(consumer):
        await eventually(lambda: asyncio.sleep(0, applied == [event.order_id]))
        letter = await one_letter(js, consumer)
        await dead_letters.replay(js, letter)
        await eventually(lambda: asyncio.sleep(0, outcome(consumer, "duplicate") == 1))
        await eventually(lambda: settled(js, consumer))
    assert applied == [event.order_id]
    assert await letters_of(js, consumer) == []


async def test_a_handler_that_keeps_failing_goes_to_the_dead_letters_after_its_deliveries(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    async def broken(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        raise ValueError("a bug, not an outage")

    consumer = consumer_of(db, js, f"buggy-{uuid.uuid4().hex[:8]}", subject, broken)
    consumer.limits = RetryLimits(errors=3)
    consumer.max_retry_delay = 0.2
    await publish(js, subject, new_event(subject))
    async with running(consumer):
        letter = await one_letter(js, consumer)
        await eventually(lambda: settled(js, consumer))
    assert letter.kind == "failing"
    assert "ValueError: a bug, not an outage" in letter.reason
    assert outcome(consumer, "retried") == 2
    assert "failed 3 times" in letter.reason


async def deliver_and_nak(js: bus.JetStreamContext, consumer: EventConsumer, times: int) -> None:
    """Deliver the consumer's next message `times` times without handling it, as an outage
    does: a replica that dies holding it, a fetch whose ack wait runs out, a database away."""
    await js.add_consumer("ORDERS", consumer.config())
    subscription = await js.pull_subscribe_bind(durable=consumer.name, stream="ORDERS")
    for _ in range(times):
        (msg,) = await subscription.fetch(1, timeout=5)
        await msg.nak()
    await subscription.unsubscribe()


async def test_deliveries_of_an_outage_do_not_count_as_failures(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    failures_left = 1
    applied: list[str] = []

    async def flaky(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise ValueError("met a passing state")
        applied.append(event.order_id)

    consumer = consumer_of(db, js, f"after-outage-{uuid.uuid4().hex[:8]}", subject, flaky)
    consumer.limits = RetryLimits(errors=3)
    consumer.max_retry_delay = 0.2
    event = new_event(subject)
    await publish(js, subject, event)
    await deliver_and_nak(js, consumer, times=5)
    async with running(consumer):
        await eventually(lambda: asyncio.sleep(0, applied == [event.order_id]))
        await eventually(lambda: settled(js, consumer))
    # One error, after five deliveries that were nobody's fault: retried, not given up on.
    assert outcome(consumer, "retried") == 1
    assert await letters_of(js, consumer) == []


async def test_a_message_that_times_out_every_time_goes_to_the_dead_letters_with_why(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    never = asyncio.Event()

    async def hangs(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        await never.wait()

    consumer = consumer_of(db, js, f"hangs-{uuid.uuid4().hex[:8]}", subject, hangs)
    consumer.limits = RetryLimits(attempts=3)
    consumer.attempt_timeout_seconds = 0.1
    consumer.max_retry_delay = 0.2
    await publish(js, subject, new_event(subject))
    async with running(consumer):
        letter = await one_letter(js, consumer)
        await eventually(lambda: settled(js, consumer))
    assert letter.kind == "failing"
    assert "failed 3 attempts" in letter.reason
    assert "TimeoutError" in letter.reason
    assert outcome(consumer, "retried") == 2


async def test_a_replayed_letter_gets_its_tries_afresh(
    db: Database, js: bus.JetStreamContext, subject: str
) -> None:
    errors_to_raise = 2
    applied: list[str] = []

    async def buggy(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
        nonlocal errors_to_raise
        if errors_to_raise:
            errors_to_raise -= 1
            raise ValueError("a bug, fixed later")
        applied.append(event.order_id)

    consumer = consumer_of(db, js, f"refixed-{uuid.uuid4().hex[:8]}", subject, buggy)
    consumer.limits = RetryLimits(errors=2)
    consumer.max_retry_delay = 0.2
    event = new_event(subject)
    await publish(js, subject, event)
    async with running(consumer):
        letter = await one_letter(js, consumer)
        await eventually(lambda: settled(js, consumer))
        # After the fix the replay meets one passing error: it has its own two to spend.
        errors_to_raise = 1
        await dead_letters.replay(js, letter)
        await eventually(lambda: asyncio.sleep(0, applied == [event.order_id]))
    assert await letters_of(js, consumer) == []


FIRST_FAILURE = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failures", "minutes_later", "why"),
    [
        (Failures(errors=4, attempts=4, first_failed_at=FIRST_FAILURE), 5, None),
        (Failures(errors=5, attempts=5, first_failed_at=FIRST_FAILURE), 5, "failed 5 times"),
        (Failures(errors=0, attempts=99, first_failed_at=FIRST_FAILURE), 60, None),
        (Failures(errors=0, attempts=100, first_failed_at=FIRST_FAILURE), 60, "100 attempts"),
        (Failures(errors=1, attempts=3, first_failed_at=FIRST_FAILURE), 119, None),
        (Failures(errors=1, attempts=3, first_failed_at=FIRST_FAILURE), 120, "failing for 2:00"),
    ],
)
def test_a_message_is_given_up_on_past_its_errors_its_attempts_or_its_age(
    failures: Failures, minutes_later: int, why: str | None
) -> None:
    now = FIRST_FAILURE + timedelta(minutes=minutes_later)
    reason = give_up_reason(failures, RetryLimits(), now)
    if why is None:
        assert reason is None
    else:
        assert reason is not None and why in reason
