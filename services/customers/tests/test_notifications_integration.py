"""Notices and tracking on real JetStream, a real database (SQLite, or PostgreSQL with
TEST_DATABASE_URL) and real gRPC: one notice per event however often it arrives, none without
consent, the HTTP provider retried against a local SMS gateway until it takes the message or
the notice is given up on, and a tracking link that shows progress and nothing personal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aftersales.customers.v1 import notifications_pb2, notifications_pb2_grpc
from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.auth import AuthContext
from servicekit.errors import Forbidden, InvalidInput, NotFound
from servicekit.grpc_client import call
from servicekit.inbox import EventConsumer
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.runtime import Runtime
from servicekit.testing import acting_as, eventually, serving
from servicekit.timeutil import utc_now
from services.customers.adapters.orm import customer_orders, customers
from services.customers.notifications import (
    ORDERS_STREAM,
    handlers,
    notifications_consumer,
    store,
)
from services.customers.notifications.delivery import RetrySchedule
from services.customers.notifications.providers import HttpProvider, LocalFileProvider
from services.customers.notifications.sender import NotificationSender
from services.customers.notifications.settings import NotificationSettings
from services.customers.notifications.tables import notification_deliveries
from services.customers.service import SPEC
from services.customers.tests.sms_gateway import sms_gateway
from services.customers.tests.support import PHONE, consuming

pytestmark = pytest.mark.service("customers")

HQ_ADMIN = AuthContext("u-admin", "hq_admin")
FAST = RetrySchedule((timedelta(0),), max_attempts=3)


@dataclass
class Branch:
    """A branch of our own on the shared ORDERS stream, with a notifications consumer that
    sees only it (the NATS server and stream live for the whole session)."""

    branch_id: str
    store_id: str
    consumer: EventConsumer
    settings: NotificationSettings

    def subject(self, name: str) -> str:
        return f"orders.v1.{self.branch_id}.{self.store_id}.{name}"


@pytest.fixture
def settings(tmp_path: Path) -> NotificationSettings:
    return NotificationSettings(
        outbox_file=tmp_path / "sms.jsonl",
        retry=FAST,
        tracking_base_url="https://track.example/t/",
    )


@pytest.fixture
async def branch(runtime: Runtime, settings: NotificationSettings) -> AsyncIterator[Branch]:
    tag = uuid.uuid4().hex[:8]
    branch_id = f"N{tag}"
    consumer = notifications_consumer(
        runtime,
        settings,
        name=f"customers-notifications-{tag}",
        subject=f"orders.v1.{branch_id}.*.*",
    )
    yield Branch(branch_id, f"{branch_id}-001", consumer, settings)
    with contextlib.suppress(Exception):
        await runtime.js.delete_consumer(ORDERS_STREAM, consumer.name)


def received(branch: Branch, order_id: str) -> events_pb2.OrderReceived:
    event = events_pb2.OrderReceived(
        order_id=order_id,
        number=f"{branch.store_id}-261123-0001",
        service_type="repair",
        warranty_status="out_of_warranty",
        customer=events_pb2.CustomerSnapshot(message_consent=True),
        device=events_pb2.DeviceSnapshot(imei="490154203237518", brand="huawei", model="p60"),
        promised_date="2026-11-26",
    )
    fill_meta(event.meta, branch.branch_id, branch.store_id)
    return event


def moved(
    branch: Branch, order_id: str, to_status: str, version: int, quote_fen: int = 0
) -> order_events_pb2.OrderStatusChanged:
    event = order_events_pb2.OrderStatusChanged(
        order_id=order_id,
        number=f"{branch.store_id}-261123-0001",
        step="step",
        to_status=to_status,
        version=version,
        service_type="repair",
        quote_total_fen=quote_fen,
    )
    fill_meta(event.meta, branch.branch_id, branch.store_id)
    return event


async def publish(runtime: Runtime, branch: Branch, event: Any) -> None:
    name = (
        "order_received"
        if isinstance(event, events_pb2.OrderReceived)
        else (f"order_{event.to_status}")
    )
    await runtime.js.publish(
        branch.subject(name),
        event.SerializeToString(),
        headers={
            MSG_ID_HEADER: event.meta.event_id,
            EVENT_TYPE_HEADER: type(event).DESCRIPTOR.full_name,
        },
    )


async def known_customer(
    runtime: Runtime, branch: Branch, order_id: str, consent: bool, language: str = "zh-CN"
) -> str:
    """The customer records know this order's customer (the records' own consumer does this
    from OrderReceived; here it is set up directly, with the consent under test)."""
    customer_id = str(uuid.uuid4())
    now = utc_now()
    async with runtime.db.session() as session:
        await session.execute(
            customers.insert().values(
                id=customer_id,
                phone=f"139{uuid.uuid4().int % 10**8:08d}",
                name="张三",
                message_consent=consent,
                language=language,
                order_count=1,
                first_seen_at=now,
                last_seen_at=now,
                last_store_id=branch.store_id,
            )
        )
        await session.execute(
            customer_orders.insert().values(
                order_id=order_id,
                customer_id=customer_id,
                branch_id=branch.branch_id,
                store_id=branch.store_id,
                received_at=now,
            )
        )
        await session.commit()
    return customer_id


async def deliveries_of(runtime: Runtime, order_id: str) -> list[Any]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(notification_deliveries)
            .where(notification_deliveries.c.order_id == order_id)
            .order_by(notification_deliveries.c.created_at)
        )
        return list(rows)


def sms_lines(settings: NotificationSettings) -> list[dict[str, Any]]:
    if not settings.outbox_file.exists():
        return []
    return [json.loads(line) for line in settings.outbox_file.read_text().splitlines()]


def local_sender(runtime: Runtime, settings: NotificationSettings) -> NotificationSender:
    return NotificationSender(runtime.db, settings, LocalFileProvider(settings.outbox_file))


async def test_an_order_walked_to_ready_sends_each_notice_once(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = str(uuid.uuid4())
    await known_customer(runtime, branch, order_id, consent=True)
    events = [
        received(branch, order_id),
        moved(branch, order_id, "diagnosed", 2),
        moved(branch, order_id, "awaiting_approval", 3, quote_fen=45600),
        moved(branch, order_id, "ready_for_pickup", 4),
    ]
    for event in events:
        await publish(runtime, branch, event)
    sender = local_sender(runtime, branch.settings)
    async with consuming(runtime, branch.consumer):
        rows = await eventually(lambda: _when(deliveries_of(runtime, order_id), 3))
        await sender.send_due()

    assert [r.kind for r in rows] == ["order_received", "quote_to_approve", "ready_for_pickup"]
    lines = sms_lines(branch.settings)
    assert sorted(line["kind"] for line in lines) == sorted(r.kind for r in rows)
    texts = {line["kind"]: line["text"] for line in lines}
    tracking = await _token(runtime, order_id)
    assert f"https://track.example/t/{tracking}" in texts["order_received"]
    assert "2026-11-26" in texts["order_received"]
    assert "456.00" in texts["quote_to_approve"]
    assert "请到" in texts["ready_for_pickup"]
    assert all(
        r.status == "sent" and r.attempts == 1 for r in await deliveries_of(runtime, order_id)
    )
    assert await sender.send_due() == 0
    assert len(sms_lines(branch.settings)) == 3


async def _when(rows: Any, count: int) -> list[Any] | None:
    found = await rows
    return found if len(found) >= count else None


async def _token(runtime: Runtime, order_id: str) -> str:
    async with runtime.db.session() as session:
        row = await store.tracking_of_order(session, order_id)
    assert row is not None
    return str(row.token)


async def test_an_event_delivered_twice_brings_one_message(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = str(uuid.uuid4())
    await known_customer(runtime, branch, order_id, consent=True)
    ready = moved(branch, order_id, "ready_for_pickup", 7)
    await publish(runtime, branch, ready)
    # The same stored message delivered twice, as after a crash between commit and ack.
    messages = []
    for _ in range(2):
        reader = await runtime.js.pull_subscribe(
            branch.subject("order_ready_for_pickup"), durable=None, stream=ORDERS_STREAM
        )
        messages += await reader.fetch(1, timeout=5)
        await reader.unsubscribe()
    for message in messages:
        await branch.consumer.handle(message)
    # And the handler run again past the inbox: the delivery log's unique key holds.
    async with runtime.uow() as uow:
        await handlers.status_changed(uow, ready, branch.settings)
        await uow.commit()

    sender = local_sender(runtime, branch.settings)
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0
    rows = await deliveries_of(runtime, order_id)
    assert [(r.kind, r.status) for r in rows] == [("ready_for_pickup", "sent")]
    assert len(sms_lines(branch.settings)) == 1


async def test_no_message_without_consent(runtime: Runtime, branch: Branch) -> None:
    order_id = str(uuid.uuid4())
    customer_id = await known_customer(runtime, branch, order_id, consent=False)
    async with runtime.uow() as uow:
        await handlers.order_received(uow, received(branch, order_id), branch.settings)
        await handlers.status_changed(
            uow, moved(branch, order_id, "ready_for_pickup", 5), branch.settings
        )
        await uow.commit()

    assert await local_sender(runtime, branch.settings).send_due() == 2
    rows = await deliveries_of(runtime, order_id)
    assert {(r.status, r.customer_id, r.attempts) for r in rows} == {
        ("skipped_no_consent", customer_id, 0)
    }
    assert sms_lines(branch.settings) == []


async def test_a_late_older_event_sends_nothing_and_keeps_the_status(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = str(uuid.uuid4())
    await known_customer(runtime, branch, order_id, consent=True)
    async with runtime.uow() as uow:
        await handlers.status_changed(uow, moved(branch, order_id, "closed", 9), branch.settings)
        await handlers.status_changed(
            uow, moved(branch, order_id, "waiting_parts", 4), branch.settings
        )
        await uow.commit()
    assert [r.kind for r in await deliveries_of(runtime, order_id)] == ["closed"]
    view = await handlers.tracking(runtime.uow, await _token(runtime, order_id))
    assert view.row.status == "closed"


# --- the HTTP provider against a local SMS gateway --------------------------------------------


async def queued_ready_notice(runtime: Runtime, branch: Branch) -> str:
    order_id = str(uuid.uuid4())
    await known_customer(runtime, branch, order_id, consent=True, language="en")
    async with runtime.uow() as uow:
        await handlers.status_changed(
            uow, moved(branch, order_id, "ready_for_pickup", 5), branch.settings
        )
        await uow.commit()
    return order_id


async def test_the_http_provider_is_retried_until_the_gateway_takes_the_message(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = await queued_ready_notice(runtime, branch)
    async with sms_gateway([500, 503, 200]) as (gateway, url):
        provider = HttpProvider(url, "secret-token", 5.0)
        sender = NotificationSender(runtime.db, replace(branch.settings, provider="http"), provider)
        for _ in range(3):
            assert await sender.send_due() == 1
        assert await sender.send_due() == 0
        await provider.close()

    [row] = await deliveries_of(runtime, order_id)
    assert (row.status, row.attempts, row.provider, row.language) == ("sent", 3, "http", "en")
    assert row.sent_at is not None
    assert len(gateway.received) == 3
    assert {r["reference"] for r in gateway.received} == {row.id}
    assert "ready" in gateway.received[0]["text"]
    assert gateway.headers[0]["authorization"] == "Bearer secret-token"


async def test_a_gateway_that_keeps_failing_leaves_the_notice_failed_with_its_last_error(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = await queued_ready_notice(runtime, branch)
    async with sms_gateway([500, 500, 502]) as (gateway, url):
        provider = HttpProvider(url, "", 5.0)
        sender = NotificationSender(runtime.db, branch.settings, provider)
        for _ in range(FAST.max_attempts):
            assert await sender.send_due() == 1
        assert await sender.send_due() == 0
        await provider.close()

    [row] = await deliveries_of(runtime, order_id)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 3, None)
    assert row.last_error.startswith("HTTP 502")
    assert len(gateway.received) == 3


async def test_a_gateway_that_does_not_answer_is_a_failed_attempt(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = await queued_ready_notice(runtime, branch)
    async with sms_gateway([200]) as (_gateway, url):
        pass  # closed: nothing listens there any more
    provider = HttpProvider(url, "", 1.0)
    sender = NotificationSender(runtime.db, branch.settings, provider)
    assert await sender.send_due() == 1
    await provider.close()
    [row] = await deliveries_of(runtime, order_id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert "ConnectError" in row.last_error


async def test_two_senders_never_send_one_notice_twice(runtime: Runtime, branch: Branch) -> None:
    order_ids = [await queued_ready_notice(runtime, branch) for _ in range(6)]
    senders = [local_sender(runtime, branch.settings) for _ in range(2)]
    handled = await asyncio.gather(*(s.send_due() for s in senders))
    assert sum(handled) == 6
    ids = [(await deliveries_of(runtime, o))[0].id for o in order_ids]
    assert sorted(line["reference"] for line in sms_lines(branch.settings)) == sorted(ids)


# --- templates, the log and tracking over gRPC -------------------------------------------------


@pytest.fixture
async def stub(
    runtime: Runtime,
) -> AsyncIterator[notifications_pb2_grpc.NotificationsServiceStub]:
    async with serving(SPEC, runtime) as channel:
        yield notifications_pb2_grpc.NotificationsServiceStub(channel)


async def test_hq_changes_a_template_and_the_next_notice_uses_it(
    runtime: Runtime, branch: Branch, stub: notifications_pb2_grpc.NotificationsServiceStub
) -> None:
    with acting_as(HQ_ADMIN):
        listed = await call(stub.ListTemplates, notifications_pb2.ListTemplatesRequest())
        assert all(t.is_default for t in listed.templates)
        changed = await call(
            stub.PutTemplate,
            notifications_pb2.PutTemplateRequest(
                kind="ready_for_pickup", language="en", body="Ready: {number} at {store}"
            ),
        )
        with pytest.raises(InvalidInput) as error:
            await call(
                stub.PutTemplate,
                notifications_pb2.PutTemplateRequest(
                    kind="ready_for_pickup", language="en", body="{amount_yuan}"
                ),
            )
        assert error.value.errors[0].field == "body"
    assert (changed.is_default, changed.updated_by) == (False, "u-admin")
    clerk = AuthContext("u-clerk", "clerk", branch.branch_id, branch.store_id)
    with acting_as(clerk), pytest.raises(Forbidden):
        await call(stub.ListTemplates, notifications_pb2.ListTemplatesRequest())

    order_id = await queued_ready_notice(runtime, branch)
    await local_sender(runtime, branch.settings).send_due()
    [line] = sms_lines(branch.settings)
    assert line["text"] == f"Ready: {branch.store_id}-261123-0001 at {branch.store_id}"
    assert (await deliveries_of(runtime, order_id))[0].text == line["text"]


async def test_the_delivery_log_is_scoped_to_the_caller(
    runtime: Runtime, branch: Branch, stub: notifications_pb2_grpc.NotificationsServiceStub
) -> None:
    order_id = await queued_ready_notice(runtime, branch)
    own = AuthContext("u-clerk", "clerk", branch.branch_id, branch.store_id)
    other = AuthContext("u-clerk2", "clerk", branch.branch_id, f"{branch.branch_id}-002")
    request = notifications_pb2.ListDeliveriesRequest(order_id=order_id)
    with acting_as(own):
        mine = await call(stub.ListDeliveries, request)
    with acting_as(other):
        theirs = await call(stub.ListDeliveries, request)
        with pytest.raises(NotFound):
            await call(
                stub.ListDeliveries,
                notifications_pb2.ListDeliveriesRequest(store_id=branch.store_id),
            )
    assert [(d.kind, d.status) for d in mine.deliveries] == [("ready_for_pickup", "queued")]
    assert list(theirs.deliveries) == []


async def test_the_tracking_link_shows_progress_and_nothing_personal_until_it_expires(
    runtime: Runtime, branch: Branch, stub: notifications_pb2_grpc.NotificationsServiceStub
) -> None:
    order_id = str(uuid.uuid4())
    async with runtime.uow() as uow:
        await handlers.order_received(uow, received(branch, order_id), branch.settings)
        await handlers.status_changed(
            uow, moved(branch, order_id, "ready_for_pickup", 5), branch.settings
        )
        await uow.commit()
    staff = AuthContext("u-clerk", "clerk", branch.branch_id, branch.store_id)
    with acting_as(staff):
        link = await call(
            stub.GetTrackingLink, notifications_pb2.GetTrackingLinkRequest(order_id=order_id)
        )
        shown = await call(stub.GetTracking, notifications_pb2.GetTrackingRequest(token=link.token))
    assert link.url == NotificationSettings.from_env().tracking_base_url + link.token
    assert len(link.token) >= 32
    assert (shown.status, shown.store_id, shown.promised_date) == (
        "ready_for_pickup",
        branch.store_id,
        "2026-11-26",
    )
    assert [s.status for s in shown.steps] == ["received", "ready_for_pickup"]
    wire = shown.SerializeToString()
    for personal in ("张三".encode(), PHONE.encode(), b"490154203237518"):
        assert personal not in wire

    with acting_as(AuthContext("u-zj", "clerk", "ZJ", "ZJ-001")):
        with pytest.raises(NotFound):
            await call(
                stub.GetTrackingLink, notifications_pb2.GetTrackingLinkRequest(order_id=order_id)
            )
        with pytest.raises(NotFound):
            await call(stub.GetTracking, notifications_pb2.GetTrackingRequest(token="nope"))

    closed = moved(branch, order_id, "closed", 6)
    async with runtime.uow() as uow:
        await handlers.status_changed(uow, closed, branch.settings)
        await uow.commit()
    days = branch.settings.tracking_days_after_pickup
    closed_at = closed.meta.occurred_at.ToDatetime().replace(tzinfo=utc_now().tzinfo)
    view = await handlers.tracking(
        runtime.uow, link.token, now=closed_at + timedelta(days=days - 1)
    )
    assert view.row.status == "closed"
    with pytest.raises(NotFound):
        await handlers.tracking(runtime.uow, link.token, now=closed_at + timedelta(days=days))
