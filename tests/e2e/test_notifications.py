"""Customer notices and the tracking link on the real processes, through the gateway: an order
walked to ready sends exactly one ready-for-pickup SMS to the local provider's file, even when
its event is delivered again; no SMS without consent; the tracking link answers without login
and shows nothing personal, and is rate-limited; templates are HQ's."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from nats.js.api import ConsumerConfig, DeliverPolicy

from aftersales.events.v1 import order_events_pb2
from devtools.system import LocalSystem
from servicekit.dead_letters import EVENT_ID_HEADER
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.testing import eventually
from tests.e2e.conftest import Api, repair_order
from tests.e2e.test_repair_lifecycle import ORDERS, Desk

# The consumer that runs the notices (and customers' other handlers of order events).
NOTIFICATIONS_CONSUMER = "customers-orders"


async def walk_to_ready(api: Api, consent: bool) -> tuple[Desk, str]:
    """An order taken in at SH-001 and walked to ready_for_pickup; with the customer's phone."""
    body = repair_order()
    body["device"]["purchase_date"] = None  # out of warranty: quoted, approved by the customer
    body["customer"]["message_consent"] = consent
    created = await api.post("sh001.clerk", ORDERS, body, key=str(uuid.uuid4()))
    assert created.status_code == 201, created.text
    read = await api.get("sh001.clerk", f"{ORDERS}/{created.json()['id']}")
    desk = Desk(api, read.json(), read.headers["ETag"])
    diagnosis = {
        "fault_code": "F-SW",
        "cause_code": "C-SW",
        "actions": ["reflash"],
        "parts": [],
        "repair_level": "L1",
    }
    await desk.take("sh001.tech", "diagnosis", diagnosis)
    await desk.take("sh001.clerk", "quote", {"labour_fen": 5_000})
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    await desk.take("sh001.tech", "repair/start", {})
    await desk.take(
        "sh001.tech", "repair/finish", {"actions_done": ["reflash"], "repair_level": "L1"}
    )
    order = await desk.take("sh001.clerk", "qc", {"passed": True})
    assert order["status"] == "ready_for_pickup"
    return desk, body["customer"]["phone"]


async def deliveries(api: Api, order_id: str) -> list[dict[str, Any]]:
    reply = await api.get("sh001.clerk", "/api/v1/notifications", order_id=order_id)
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


async def deliver_again(system: LocalSystem, order_id: str) -> None:
    """The order's ready_for_pickup event put on the stream again under a new message id but
    its own event id, as a redelivery after a crash looks to the consumer; done once the
    notifications consumer has settled everything."""
    nc = await system.connect_bus()
    try:
        js = nc.jetstream()
        reader = await js.pull_subscribe(
            "orders.v1.SH.SH-001.order_ready_for_pickup",
            durable=None,
            stream="ORDERS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        original = None
        while original is None:
            for msg in await reader.fetch(50, timeout=5):
                event = order_events_pb2.OrderStatusChanged.FromString(msg.data)
                if event.order_id == order_id:
                    original = msg
        await reader.unsubscribe()
        headers = dict(original.headers or {})
        event_id = headers[MSG_ID_HEADER]
        await js.publish(
            original.subject,
            original.data,
            headers={
                MSG_ID_HEADER: str(uuid.uuid4()),
                EVENT_ID_HEADER: event_id,
                EVENT_TYPE_HEADER: headers[EVENT_TYPE_HEADER],
            },
        )

        async def settled() -> bool:
            info = await js.consumer_info("ORDERS", NOTIFICATIONS_CONSUMER)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(settled, within=30)
    finally:
        await nc.close()


async def test_an_order_walked_to_ready_sends_one_sms_even_when_its_event_comes_twice(
    api: Api, system: LocalSystem
) -> None:
    desk, phone = await walk_to_ready(api, consent=True)
    order_id = desk.order["id"]

    async def ready_sent() -> list[dict[str, Any]] | None:
        rows = [r for r in await deliveries(api, order_id) if r["kind"] == "ready_for_pickup"]
        return rows if rows and rows[0]["status"] == "sent" else None

    [row] = await eventually(ready_sent, within=30)
    await deliver_again(system, order_id)

    kinds = sorted(r["kind"] for r in await deliveries(api, order_id))
    assert kinds == ["order_received", "quote_to_approve", "ready_for_pickup"]
    lines = [line for line in system_lines(system) if line["reference"] == row["id"]]
    assert len(lines) == 1
    assert lines[0]["kind"] == "ready_for_pickup" and desk.order["number"] in lines[0]["text"]
    assert lines[0]["to"] == phone
    ready_lines = [
        line
        for line in system_lines(system)
        if line["kind"] == "ready_for_pickup" and desk.order["number"] in line["text"]
    ]
    assert len(ready_lines) == 1


def system_lines(system: LocalSystem) -> list[dict[str, Any]]:
    if not system.sms_outbox.exists():
        return []
    return [json.loads(line) for line in system.sms_outbox.read_text().splitlines()]


async def test_no_sms_without_consent(api: Api, system: LocalSystem) -> None:
    desk, phone = await walk_to_ready(api, consent=False)
    order_id = desk.order["id"]

    async def all_settled() -> list[dict[str, Any]] | None:
        rows = await deliveries(api, order_id)
        kinds = {r["kind"] for r in rows}
        done = all(r["status"] != "queued" for r in rows)
        return rows if "ready_for_pickup" in kinds and done else None

    rows = await eventually(all_settled, within=30)
    assert {r["status"] for r in rows} == {"skipped_no_consent"}
    assert not [line for line in system_lines(system) if line["to"] == phone]


async def test_the_tracking_link_works_without_login_and_shows_nothing_personal(
    api: Api, system: LocalSystem
) -> None:
    body = repair_order()
    created = await api.post("sh001.clerk", ORDERS, body, key=str(uuid.uuid4()))
    assert created.status_code == 201, created.text
    order = created.json()
    path = f"{ORDERS}/{order['id']}/tracking-link"

    async def link() -> dict[str, Any] | None:
        reply = await api.get("sh001.clerk", path)
        return reply.json() if reply.status_code == 200 else None

    found = await eventually(link, within=30)
    assert found["url"].endswith("/track/" + found["token"])
    elsewhere = await api.get("sh002.clerk", path)
    assert elsewhere.status_code == 404

    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as public:
        shown = await public.get(f"/track/{found['token']}")
        assert shown.status_code == 200, shown.text
        assert shown.headers["Cache-Control"] == "no-store"
        page = shown.json()
        assert (page["number"], page["status"], page["store_id"]) == (
            order["number"],
            "received",
            "SH-001",
        )
        assert [s["status"] for s in page["steps"]] == ["received"]
        for personal in (
            body["customer"]["name"],
            body["customer"]["phone"],
            body["device"]["imei"],
        ):
            assert personal not in shown.text

        unknown = await public.get("/track/not-a-token-of-ours")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")

        # A guesser is slowed down: one address, many look-ups at once.
        flood = await asyncio.gather(*(public.get("/track/guess") for _ in range(40)))
        codes = {reply.status_code for reply in flood}
        assert 429 in codes and codes <= {404, 429}
        limited = next(reply for reply in flood if reply.status_code == 429)
        assert int(limited.headers["Retry-After"]) >= 1


async def test_templates_are_kept_by_hq(api: Api) -> None:
    listed = await api.get("hq.admin", "/api/v1/notification-templates")
    assert listed.status_code == 200, listed.text
    kinds = {(t["kind"], t["language"]) for t in listed.json()["items"]}
    assert ("ready_for_pickup", "zh-CN") in kinds and ("order_received", "en") in kinds
    assert (await api.get("sh001.clerk", "/api/v1/notification-templates")).status_code == 403

    headers = await api.as_user("hq.admin")
    bad = await api.client.put(
        "/api/v1/notification-templates/ready_for_pickup/en",
        json={"body": "Pay {amount_yuan}"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body"
    unknown = await api.client.put(
        "/api/v1/notification-templates/birthday/en", json={"body": "hi"}, headers=headers
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "kind"
