"""Order events from a real NATS server into the read model of a real database (SQLite, or
PostgreSQL with TEST_DATABASE_URL), read back through the use case behind GetKpis: counted on
the Shanghai business day, once per event, and only within the caller's scope."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from nats.js.api import ConsumerConfig
from prometheus_client import REGISTRY

from servicekit import dead_letters
from servicekit.auth import AuthContext
from servicekit.errors import NotFound
from servicekit.inbox import EventConsumer
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.runtime import Runtime
from servicekit.testing import eventually
from services.reporting import handlers
from services.reporting.domain.kpis import Kpis
from services.reporting.service import CUSTOMERS_CONSUMER, ORDERS_CONSUMER, SPEC
from services.reporting.tests.factories import order_received, publish

DAY = "2026-11-27"  # a Shanghai business day: 2026-11-26T16:00Z up to 2026-11-27T16:00Z
HQ = AuthContext("u-analyst", "hq_analyst")


@dataclasses.dataclass(frozen=True)
class Chain:
    """Branch ids of one test's own: every test shares the ORDERS stream, and a consumer sees
    only its test's subjects, so tests never count each other's orders."""

    sh: str
    zj: str

    @classmethod
    def unique(cls) -> Chain:
        tag = uuid.uuid4().hex[:8].upper()
        return cls(f"SH{tag}", f"ZJ{tag}")

    @property
    def subjects(self) -> list[str]:
        return [f"orders.v1.{self.sh}.>", f"orders.v1.{self.zj}.>"]


@pytest.fixture
def chain() -> Chain:
    return Chain.unique()


@pytest.fixture
async def consumer(runtime: Runtime, chain: Chain) -> AsyncIterator[EventConsumer]:
    """The service's order handlers behind a durable consumer of this test's own, running."""
    consumer = runtime.consumer(
        f"reporting-test-{chain.sh}",
        "ORDERS",
        chain.subjects,
        handlers.ORDER_EVENTS,
    )
    task = asyncio.create_task(consumer.run(runtime.js))
    yield consumer
    consumer.stop()
    await asyncio.wait_for(task, 10)
    await runtime.js.delete_consumer("ORDERS", consumer.name)


async def kpis(
    runtime: Runtime,
    auth: AuthContext,
    branch_id: str = "",
    store_id: str = "",
    date_from: str = DAY,
    date_to: str = DAY,
) -> Kpis:
    return await handlers.get_kpis(runtime.uow, auth, branch_id, store_id, date_from, date_to)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.service("reporting")
async def test_orders_count_per_store_branch_and_hq_within_scope(
    runtime: Runtime, chain: Chain, consumer: EventConsumer
) -> None:
    sh1, sh2, zj1 = f"{chain.sh}-001", f"{chain.sh}-002", f"{chain.zj}-001"
    for branch, store, received_at, service_type in [
        (chain.sh, sh1, "2026-11-26T15:59:59", "repair"),  # 23:59:59 on the 26th in Shanghai
        (chain.sh, sh1, "2026-11-26T16:30:00", "repair"),  # 00:30 on the 27th
        (chain.sh, sh1, "2026-11-27T03:00:00", "repair"),
        (chain.sh, sh1, "2026-11-27T03:00:00", "swap"),
        (chain.sh, sh2, "2026-11-27T10:00:00", "repair"),
        (chain.zj, zj1, "2026-11-27T15:59:00", "software"),  # 23:59 on the 27th
        (chain.zj, zj1, "2026-11-27T16:00:00", "repair"),  # midnight: the 28th
    ]:
        await publish(runtime.js, order_received(branch, store, utc(received_at), service_type))

    async def all_counted() -> bool:
        week = await kpis(runtime, HQ, date_from="2026-11-25", date_to="2026-11-29")
        return week.orders_received == 7

    await eventually(all_counted)
    week = await kpis(runtime, HQ, date_from="2026-11-25", date_to="2026-11-29")
    assert [(t.service_type, t.orders_received) for t in week.by_service_type] == [
        ("repair", 5),
        ("software", 1),
        ("swap", 1),
    ]

    hq = await kpis(runtime, HQ)
    assert (hq.branch_id, hq.store_id, hq.orders_received) == (None, None, 5)
    # At HQ the breakdown is by branch (10,000 stores are no dashboard): by_store is empty.
    assert hq.by_store == ()
    assert [(u.branch_id, u.figures["received"]) for u in hq.by_unit] == [
        (chain.sh, 4),
        (chain.zj, 1),
    ]
    assert [
        (s.branch_id, s.orders_received) for s in (await kpis(runtime, HQ, store_id=sh1)).by_store
    ] == [(chain.sh, 3)]

    sh_manager = AuthContext("u-sh", "branch_manager", chain.sh)
    sh = await kpis(runtime, sh_manager)
    assert (sh.branch_id, sh.orders_received) == (chain.sh, 4)
    assert [s.store_id for s in sh.by_store] == [sh1, sh2]
    assert (await kpis(runtime, sh_manager, store_id=sh2)).orders_received == 1
    # Naming another branch's store within one's own branch finds nothing of it.
    assert (await kpis(runtime, sh_manager, store_id=zj1)).orders_received == 0

    zj_manager = AuthContext("u-zj", "branch_manager", chain.zj)
    zj = await kpis(runtime, zj_manager)
    assert zj.orders_received == 1
    assert [s.store_id for s in zj.by_store] == [zj1]
    with pytest.raises(NotFound):
        await kpis(runtime, zj_manager, branch_id=chain.sh)

    clerk = AuthContext("u-clerk", "clerk", chain.sh, sh1)
    own = await kpis(runtime, clerk)
    assert (own.store_id, own.orders_received) == (sh1, 3)
    with pytest.raises(NotFound):
        await kpis(runtime, clerk, store_id=sh2)

    # HQ narrows to a branch or a store like anyone else.
    assert (await kpis(runtime, HQ, branch_id=chain.zj)).orders_received == 1
    assert (await kpis(runtime, HQ, store_id=sh1, date_from="2026-11-26")).orders_received == 4


@pytest.mark.service("reporting")
async def test_an_event_published_twice_counts_once(
    runtime: Runtime, chain: Chain, consumer: EventConsumer
) -> None:
    store = f"{chain.sh}-001"
    event = order_received(chain.sh, store, utc("2026-11-27T02:00:00"))
    assert not (await publish(runtime.js, event)).duplicate
    assert (await publish(runtime.js, event)).duplicate  # dropped by the stream's window
    # A later order: once it is counted, everything published before it has been handled.
    await publish(runtime.js, order_received(chain.sh, store, utc("2026-11-27T03:00:00")))

    async def caught_up() -> bool:
        return (await kpis(runtime, HQ)).orders_received >= 2

    await eventually(caught_up)
    assert (await kpis(runtime, HQ)).orders_received == 2


@pytest.mark.service("reporting")
async def test_an_event_of_an_unknown_type_is_skipped(
    runtime: Runtime, chain: Chain, consumer: EventConsumer
) -> None:
    store = f"{chain.sh}-001"
    # A newer orders service may announce events this version does not know yet.
    await runtime.js.publish(
        f"orders.v1.{chain.sh}.{store}.order_closed",
        b"not for us",
        headers={MSG_ID_HEADER: str(uuid.uuid4()), EVENT_TYPE_HEADER: "aftersales.events.v1.Later"},
    )
    await publish(runtime.js, order_received(chain.sh, store, utc("2026-11-27T02:00:00")))

    async def counted() -> bool:
        return (await kpis(runtime, HQ)).orders_received == 1

    await eventually(counted)
    ignored = REGISTRY.get_sample_value(
        "aftersales_inbox_messages_total",
        {"service": "reporting", "consumer": consumer.name, "outcome": "ignored"},
    )
    assert ignored == 1


@pytest.mark.service("reporting")
async def test_a_redelivered_event_counts_once(runtime: Runtime, chain: Chain) -> None:
    """JetStream redelivers a message whose ack was lost (say the process died right after
    committing): the inbox recognises it, and the consumer acks it without counting again."""
    name = f"reporting-redelivery-{chain.sh}"
    subject = f"orders.v1.{chain.sh}.>"
    subscription = await runtime.js.pull_subscribe(
        subject, durable=name, stream="ORDERS", config=ConsumerConfig(ack_wait=1.0)
    )
    consumer = runtime.consumer(name, "ORDERS", [subject], handlers.ORDER_EVENTS)
    await publish(runtime.js, order_received(chain.sh, f"{chain.sh}-001", utc("2026-11-27T02:00")))

    [first] = await subscription.fetch(1, timeout=5)
    # Handled and committed, but the ack goes to a subject nobody listens on: it is lost.
    await consumer.handle(dataclasses.replace(first, reply="_INBOX.lost-ack"))
    assert (await kpis(runtime, HQ)).orders_received == 1

    # JetStream never got the ack, so it delivers the message again after ack_wait.
    [again] = await subscription.fetch(1, timeout=5)
    assert again.metadata.num_delivered == 2
    assert again.headers == first.headers
    await consumer.handle(again)
    assert again.is_acked
    assert (await kpis(runtime, HQ)).orders_received == 1
    duplicates = REGISTRY.get_sample_value(
        "aftersales_inbox_messages_total",
        {"service": "reporting", "consumer": name, "outcome": "duplicate"},
    )
    assert duplicates == 1

    await subscription.unsubscribe()
    await runtime.js.delete_consumer("ORDERS", name)


@pytest.mark.service("reporting")
async def test_the_service_consumes_every_order_and_customer_event(runtime: Runtime) -> None:
    orders, customers, *_ = SPEC.consumers(runtime)
    assert (orders.name, orders.stream, orders.subjects) == (
        ORDERS_CONSUMER,
        "ORDERS",
        ["orders.v1.>"],
    )
    assert set(orders.handlers) == {
        "aftersales.events.v1.OrderReceived",
        "aftersales.events.v1.OrderStatusChanged",
        "aftersales.events.v1.ClaimChanged",
    }
    assert (customers.name, customers.stream, customers.subjects) == (
        CUSTOMERS_CONSUMER,
        "CUSTOMERS",
        ["customers.v1.>"],
    )
    assert set(customers.handlers) == {"aftersales.events.v1.FollowUpRecorded"}


@pytest.mark.service("reporting")
async def test_an_event_that_cannot_be_counted_is_kept_in_the_dead_letters(
    runtime: Runtime, chain: Chain, consumer: EventConsumer
) -> None:
    store = f"{chain.sh}-001"
    # A branch-level event with no store: no store's figures can take it.
    stray = order_received(chain.sh, "", utc("2026-11-27T02:00:00"))
    await publish(runtime.js, stray)
    await publish(runtime.js, order_received(chain.sh, store, utc("2026-11-27T03:00:00")))

    async def kept() -> list[dead_letters.DeadLetter]:
        return [
            letter
            async for letter in dead_letters.letters(runtime.js, "reporting")
            if letter.consumer == consumer.name
        ]

    [letter] = await eventually(kept)
    assert (letter.kind, letter.event_id) == ("unprocessable", stray.meta.event_id)
    assert "branch and store" in letter.reason
    assert letter.subject == f"orders.v1.{chain.sh}._.order_received"

    async def counted() -> bool:
        return (await kpis(runtime, HQ)).orders_received == 1

    await eventually(counted)
