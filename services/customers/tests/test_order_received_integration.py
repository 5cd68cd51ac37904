"""OrderReceived events through real JetStream into a real database (SQLite, or PostgreSQL with
TEST_DATABASE_URL): customers and devices become findable, an order counts once however often
it arrives, and a message that cannot be handled is kept in the dead letters, counted and
terminated, not retried forever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from servicekit import dead_letters
from servicekit.errors import NotFound
from servicekit.inbox import INBOX_KEPT
from servicekit.runtime import Runtime, prune_inbox
from servicekit.testing import eventually
from servicekit.timeutil import utc_now
from services.customers import handlers
from services.customers.adapters.orm import customer_orders, inbox
from services.customers.tests.support import (
    IMEI,
    OTHER_PHONE,
    PHONE,
    Lane,
    consuming,
    order_received,
    publish,
    publish_raw,
)

pytestmark = pytest.mark.service("customers")

MONDAY = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def handled(lane: Lane, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "aftersales_inbox_messages_total",
        {"service": "customers", "consumer": lane.consumer.name, "outcome": outcome},
    )
    return value or 0.0


async def handled_at_least(lane: Lane, count: int) -> bool:
    return handled(lane, "handled") >= count


async def poison_counted(lane: Lane) -> bool:
    return handled(lane, "poison") >= 1


async def dead_letters_of(runtime: Runtime, lane: Lane) -> list[dead_letters.DeadLetter]:
    return [
        letter
        async for letter in dead_letters.letters(runtime.js, "customers")
        if letter.consumer == lane.consumer.name
    ]


async def nothing_outstanding(runtime: Runtime, lane: Lane) -> bool:
    """Every message of the lane was acked or terminated: none waits for redelivery."""
    info = await runtime.js.consumer_info("ORDERS", lane.consumer.name)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def profile_by_phone(runtime: Runtime, phone: str) -> handlers.CustomerProfile | None:
    try:
        return await handlers.find_customer(runtime.uow, phone, "")
    except NotFound:
        return None


async def orders_counted(runtime: Runtime) -> int:
    async with runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(customer_orders)) or 0)


async def test_an_order_received_makes_the_customer_findable_by_phone_and_imei(
    runtime: Runtime, lane: Lane
) -> None:
    event = order_received(lane, received_at=MONDAY)
    await publish(runtime, lane, event)
    async with consuming(runtime, lane.consumer):
        by_phone = await eventually(lambda: profile_by_phone(runtime, PHONE))

    customer = by_phone.customer
    assert (customer.name, customer.phone, customer.order_count) == ("张三", PHONE, 1)
    assert (customer.last_seen_at, customer.last_store_id) == (MONDAY, lane.store_id)
    assert customer.marketing_consent is False
    assert [(d.imei, d.brand, d.model, d.first_seen_at) for d in by_phone.devices] == [
        (IMEI, "huawei", "p60", MONDAY)
    ]
    by_imei = await handlers.find_customer(runtime.uow, "", IMEI)
    assert by_imei.customer.id == customer.id

    async with runtime.db.session() as session:
        history = (await session.execute(select(customer_orders))).one()
    assert (history.order_id, history.customer_id) == (event.order_id, customer.id)
    assert (history.branch_id, history.store_id) == (lane.branch_id, lane.store_id)
    assert handled(lane, "handled") == 1


async def test_a_redelivered_message_counts_its_order_once(runtime: Runtime, lane: Lane) -> None:
    await publish(runtime, lane, order_received(lane))
    # The same stored message delivered twice, as after a crash between commit and ack.
    deliveries = []
    for _ in range(2):
        reader = await runtime.js.pull_subscribe(lane.subject, durable=None, stream="ORDERS")
        deliveries += await reader.fetch(1, timeout=5)
        await reader.unsubscribe()
    assert deliveries[0].headers == deliveries[1].headers

    for message in deliveries:
        await lane.consumer.handle(message)

    profile = await handlers.find_customer(runtime.uow, PHONE, "")
    assert profile.customer.order_count == 1
    assert await orders_counted(runtime) == 1
    assert (handled(lane, "handled"), handled(lane, "duplicate")) == (1, 1)
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(inbox)) == 1


async def test_the_same_order_announced_again_under_a_new_event_id_counts_once(
    runtime: Runtime, lane: Lane
) -> None:
    first = order_received(lane)
    again = order_received(lane, order_id=first.order_id)
    assert again.meta.event_id != first.meta.event_id
    await publish(runtime, lane, first)
    await publish(runtime, lane, again)
    async with consuming(runtime, lane.consumer):
        await eventually(lambda: handled_at_least(lane, 2))

    profile = await handlers.find_customer(runtime.uow, PHONE, "")
    assert profile.customer.order_count == 1
    assert await orders_counted(runtime) == 1


async def test_a_device_brought_in_by_someone_else_moves_to_them(
    runtime: Runtime, lane: Lane
) -> None:
    later = MONDAY + timedelta(days=200)
    await publish(runtime, lane, order_received(lane, received_at=MONDAY))
    await publish(
        runtime, lane, order_received(lane, name="李四", phone=OTHER_PHONE, received_at=later)
    )
    # And the first owner comes back with it once more, but that order was taken in earlier
    # and arrives late: it counts for them without moving the device back.
    await publish(runtime, lane, order_received(lane, received_at=MONDAY + timedelta(days=100)))
    async with consuming(runtime, lane.consumer):
        await eventually(lambda: handled_at_least(lane, 3))

    owner = await handlers.find_customer(runtime.uow, "", IMEI)
    assert (owner.customer.phone, owner.customer.name) == (OTHER_PHONE, "李四")
    assert [(d.imei, d.first_seen_at) for d in owner.devices] == [(IMEI, MONDAY)]
    earlier_owner = await handlers.find_customer(runtime.uow, PHONE, "")
    assert earlier_owner.customer.order_count == 2
    assert earlier_owner.devices == []
    assert await orders_counted(runtime) == 3


async def test_an_undecodable_message_is_kept_as_a_dead_letter_and_counted(
    runtime: Runtime, lane: Lane
) -> None:
    await publish_raw(runtime, lane, b"not protobuf at all", "poison-1")
    await publish(runtime, lane, order_received(lane))
    async with consuming(runtime, lane.consumer):
        # The good message behind it is handled: the consumer is not stuck on the bad one.
        await eventually(lambda: profile_by_phone(runtime, PHONE))
        await eventually(lambda: nothing_outstanding(runtime, lane))
    assert handled(lane, "poison") == 1
    assert handled(lane, "retried") == 0
    info = await runtime.js.consumer_info("ORDERS", lane.consumer.name)
    assert info.num_redelivered == 0
    [letter] = await dead_letters_of(runtime, lane)
    assert (letter.kind, letter.subject, letter.event_id) == (
        "undecodable",
        lane.subject,
        "poison-1",
    )
    assert letter.payload == b"not protobuf at all"


async def test_an_event_with_no_usable_phone_is_a_dead_letter_at_once(
    runtime: Runtime, lane: Lane
) -> None:
    await publish(runtime, lane, order_received(lane, phone="12345"))
    async with consuming(runtime, lane.consumer):
        await eventually(lambda: poison_counted(lane), within=15)
        await eventually(lambda: nothing_outstanding(runtime, lane))
    # Retrying cannot mend a broken rule: it is poison at the first delivery.
    assert handled(lane, "retried") == 0
    # Nothing of it was stored, not even its inbox entry: the transaction was undone.
    assert await orders_counted(runtime) == 0
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(inbox)) == 0
    [letter] = await dead_letters_of(runtime, lane)
    assert letter.kind == "unprocessable"
    assert "phone" in letter.reason


async def test_an_event_replayed_after_a_fix_is_counted_once(
    runtime: Runtime, lane: Lane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A number from a range the rule did not know is refused; once the rule learns it (here
    patched), the operator replays the dead letter and the order counts once."""
    await publish(runtime, lane, order_received(lane, phone="12345"))
    async with consuming(runtime, lane.consumer):
        await eventually(lambda: poison_counted(lane), within=15)
        [letter] = await dead_letters_of(runtime, lane)
        monkeypatch.setattr(handlers, "check_visit", lambda visit: None)
        await dead_letters.replay(runtime.js, letter)
        await eventually(lambda: handled_at_least(lane, 1))
        await eventually(lambda: nothing_outstanding(runtime, lane))
    assert await orders_counted(runtime) == 1
    assert await dead_letters_of(runtime, lane) == []


async def test_the_service_forgets_inbox_entries_older_than_the_stream_keeps(
    runtime: Runtime,
) -> None:
    now = utc_now()
    async with runtime.db.session() as session:
        await session.execute(
            inbox.insert(),
            [
                {"consumer": "c", "event_id": "old", "handled_at": now - INBOX_KEPT - HOUR},
                {"consumer": "c", "event_id": "kept", "handled_at": now - INBOX_KEPT + HOUR},
            ],
        )
        await session.commit()

    async def remembered_only_kept() -> list[str] | None:
        async with runtime.db.session() as session:
            left = list(await session.scalars(select(inbox.c.event_id)))
        return left if "old" not in left else None

    done = asyncio.Event()
    pruning = asyncio.create_task(prune_inbox(runtime, done))
    try:
        left = await eventually(remembered_only_kept)
    finally:
        done.set()
        await asyncio.wait_for(pruning, 10)
    assert left == ["kept"]
