"""Intake against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL) and a real
NATS server: the order is stored, numbered, announced once, and a retry changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from aftersales.events.v1 import events_pb2
from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext, reset_auth, set_auth
from servicekit.errors import InvalidInput, NotFound
from servicekit.idempotency import KEY_LIFETIME, request_hash
from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.orm import outbox, repair_orders
from services.orders.domain.intake import IntakeForm
from services.orders.grpc_api import OrdersService
from services.orders.service import SPEC
from services.orders.tests.fake_parts import FakeParts

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
BASE = repository.BaseDataCache()

KEYS = InMemoryKeys()


def form(**changes: str) -> IntakeForm:
    values = dict(
        customer_name="张三",
        customer_phone="13812345678",
        imei="490154203237518",
        brand="huawei",
        model="p60",
        colour="black",
        purchase_date="",
        fault_description="screen cracked",
        symptom_code="",
        service_type="repair",
        accessories="",
        appearance="",
        promised_date="",
    )
    values.update(changes)
    return IntakeForm(**values)


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("orders", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("orders")
async def test_intake_stores_numbers_and_announces_once(runtime: Runtime) -> None:
    order = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(),
        "SH",
        "SH-001",
        request_id="u-clerk:key-1",
        personal_keys=KEYS,
    )
    again = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(),
        "SH",
        "SH-001",
        request_id="u-clerk:key-1",
        personal_keys=KEYS,
    )
    assert again.id == order.id
    assert order.status == "received"
    assert order.number.startswith("SH-001-")
    assert order.brand_authorised is True

    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(repair_orders)) == 1
        assert await session.scalar(select(func.count()).select_from(outbox)) == 1

    sub = await runtime.js.pull_subscribe(
        "orders.v1.SH.SH-001.order_received", durable=None, stream="ORDERS"
    )
    assert await runtime.relay.publish_pending() == 1
    messages = await sub.fetch(10, timeout=5)
    received = [events_pb2.OrderReceived.FromString(m.data) for m in messages]
    assert order.id in [e.order_id for e in received]
    mine = next(e for e in received if e.order_id == order.id)
    assert (mine.meta.branch_id, mine.meta.store_id) == ("SH", "SH-001")
    assert messages[0].headers["Nats-Msg-Id"]
    # Everything committed is published; nothing is left pending.
    assert await runtime.relay.pending() == 0


@pytest.mark.service("orders")
async def test_intake_keeps_consent_and_language_and_announces_them(runtime: Runtime) -> None:
    consenting = replace(form(promised_date="2099-01-02"), message_consent=True, language="en")
    order = await handlers.create_repair_order(
        runtime.uow, BASE, CLERK, consenting, "SH", "SH-001", None, personal_keys=KEYS
    )
    stored = await handlers.get_repair_order(runtime.uow, CLERK, order.id)
    assert (stored.intake.message_consent, stored.intake.language) == (True, "en")
    plain = await handlers.create_repair_order(
        runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None, personal_keys=KEYS
    )
    assert (plain.intake.message_consent, plain.intake.language) == (False, "zh-CN")

    sub = await runtime.js.pull_subscribe(
        "orders.v1.SH.SH-001.order_received", durable=None, stream="ORDERS"
    )
    await runtime.relay.publish_pending()
    messages = await sub.fetch(10, timeout=5)
    received = {
        e.order_id: e for e in (events_pb2.OrderReceived.FromString(m.data) for m in messages)
    }
    event = received[order.id]
    assert (event.customer.message_consent, event.customer.language) == (True, "en")
    assert event.promised_date == "2099-01-02"
    assert received[plain.id].customer.language == "zh-CN"


@pytest.mark.service("orders")
async def test_intake_refuses_an_unknown_language(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as caught:
        await handlers.create_repair_order(
            runtime.uow,
            BASE,
            CLERK,
            replace(form(), language="fr"),
            "SH",
            "SH-001",
            None,
            personal_keys=KEYS,
        )
    assert [e.field for e in caught.value.errors] == ["customer.language"]


@pytest.mark.service("orders")
async def test_bad_intake_changes_nothing(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as caught:
        await handlers.create_repair_order(
            runtime.uow,
            BASE,
            CLERK,
            form(imei="490154203237519", brand="nokia"),
            "SH",
            "SH-001",
            None,
            personal_keys=KEYS,
        )
    assert {e.field for e in caught.value.errors} == {"device.imei", "device.brand"}
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(repair_orders)) == 0
        assert await session.scalar(select(func.count()).select_from(outbox)) == 0


@pytest.mark.service("orders")
async def test_other_store_cannot_read_the_order(runtime: Runtime) -> None:
    order = await handlers.create_repair_order(
        runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None, personal_keys=KEYS
    )
    other_store = AuthContext("u2", "clerk", "SH", "SH-002")
    other_branch = AuthContext("u3", "branch_manager", "ZJ")
    for outsider in (other_store, other_branch):
        with pytest.raises(NotFound):
            await handlers.get_repair_order(runtime.uow, outsider, order.id)
    manager = AuthContext("u4", "branch_manager", "SH")
    assert (await handlers.get_repair_order(runtime.uow, manager, order.id)).id == order.id


@pytest.mark.service("orders")
async def test_concurrent_intake_numbers_are_unique(runtime: Runtime) -> None:
    created = await asyncio.gather(
        *(
            handlers.create_repair_order(
                runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None, personal_keys=KEYS
            )
            for _ in range(10)
        )
    )
    assert len({o.number for o in created}) == 10


@pytest.mark.service("orders")
async def test_listing_pages_through_every_order_once(runtime: Runtime) -> None:
    for _ in range(5):
        await handlers.create_repair_order(
            runtime.uow, BASE, CLERK, form(), "SH", "SH-001", None, personal_keys=KEYS
        )
    where = handlers.order_filter(CLERK, "", "", "", "", "", "", "", "")
    seen: list[str] = []
    token = ""
    while True:
        page, token = await handlers.list_repair_orders(runtime.uow, where, 2, token)
        seen += [o.id for o in page]
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5
    with pytest.raises(NotFound):
        handlers.order_filter(CLERK, "", "SH-002", "", "", "", "", "", "")


def clock_at(*moments: datetime) -> Callable[[], datetime]:
    """A clock that reads each moment in turn and then stays at the last."""
    remaining = list(moments)

    def now() -> datetime:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return now


FIRST_USE = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def test_the_request_hash_ignores_the_key_but_not_the_request() -> None:
    request = orders_pb2.CreateRepairOrderRequest(
        request_id="u:k1", store_id="SH-001", fault=orders_pb2.Fault(description="dead")
    )
    retried = orders_pb2.CreateRepairOrderRequest()
    retried.CopyFrom(request)
    retried.request_id = "u:k2"
    other = orders_pb2.CreateRepairOrderRequest()
    other.CopyFrom(request)
    other.fault.description = "battery drains"
    assert request_hash(request) == request_hash(retried) != request_hash(other)


@pytest.mark.service("orders")
async def test_a_key_reused_for_another_request_is_refused_within_its_lifetime(
    runtime: Runtime,
) -> None:
    later = FIRST_USE + KEY_LIFETIME - timedelta(seconds=1)
    first = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(),
        "SH",
        "SH-001",
        "u-clerk:k",
        "hash-a",
        clock_at(FIRST_USE),
        personal_keys=KEYS,
    )
    retry = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(),
        "SH",
        "SH-001",
        "u-clerk:k",
        "hash-a",
        clock_at(later),
        personal_keys=KEYS,
    )
    assert retry.id == first.id
    with pytest.raises(InvalidInput) as refused:
        await handlers.create_repair_order(
            runtime.uow,
            BASE,
            CLERK,
            form(fault_description="battery drains"),
            "SH",
            "SH-001",
            "u-clerk:k",
            "hash-b",
            clock_at(later),
            personal_keys=KEYS,
        )
    assert [e.field for e in refused.value.errors] == ["Idempotency-Key"]
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(repair_orders)) == 1


@pytest.mark.service("orders")
async def test_a_key_is_free_again_after_its_lifetime(runtime: Runtime) -> None:
    expired = FIRST_USE + KEY_LIFETIME
    first = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(),
        "SH",
        "SH-001",
        "u-clerk:k",
        "hash-a",
        clock_at(FIRST_USE),
        personal_keys=KEYS,
    )
    again = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(fault_description="battery drains"),
        "SH",
        "SH-001",
        "u-clerk:k",
        "hash-b",
        clock_at(expired),
        personal_keys=KEYS,
    )
    assert again.id != first.id
    assert again.intake.fault_description == "battery drains"
    # The new order holds the key now; the old one is kept, without it.
    retry = await handlers.create_repair_order(
        runtime.uow,
        BASE,
        CLERK,
        form(),
        "SH",
        "SH-001",
        "u-clerk:k",
        "hash-b",
        clock_at(expired),
        personal_keys=KEYS,
    )
    assert retry.id == again.id
    async with runtime.db.session() as session:
        rows = (await session.execute(select(repair_orders.c.id, repair_orders.c.request_id))).all()
    assert dict(rows) == {first.id: None, again.id: "u-clerk:k"}


@pytest.mark.service("orders")
async def test_the_service_hashes_a_request_that_comes_without_a_hash(runtime: Runtime) -> None:
    service = OrdersService(runtime.uow, FakeParts(), KEYS)
    request = orders_pb2.CreateRepairOrderRequest(
        request_id="u-clerk:k",
        branch_id="SH",
        store_id="SH-001",
        customer=orders_pb2.Customer(name="张三", phone="13812345678"),
        device=orders_pb2.Device(imei="490154203237518", brand="huawei", model="p60"),
        fault=orders_pb2.Fault(description="screen cracked"),
        service_type="repair",
    )
    token = set_auth(CLERK)
    try:
        first = await service.CreateRepairOrder(request, None)  # type: ignore[arg-type]
        retry = await service.CreateRepairOrder(request, None)  # type: ignore[arg-type]
        assert retry.id == first.id
        request.fault.description = "battery drains"
        with pytest.raises(InvalidInput) as refused:
            await service.CreateRepairOrder(request, None)  # type: ignore[arg-type]
    finally:
        reset_auth(token)
    assert [e.field for e in refused.value.errors] == ["Idempotency-Key"]
