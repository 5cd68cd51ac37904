"""Erasure that erases, on the real processes: a customer with orders at two stores, closed and
cancelled (one after its quote), is erased; then no API answer, no message of any stream (the
dead letters and the key bucket included) and no row of any service's database holds their
name or phone in clear. The events that carried them stay in the streams, sealed with a key
that no longer exists."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import Connection, MetaData, select

from devtools.system import LocalSystem
from servicekit import bus, dead_letters
from servicekit.db import Database
from servicekit.outbox import EVENT_TYPE_HEADER
from servicekit.personal_data import STREAM as KEYS_STREAM
from servicekit.testing import eventually
from tests.e2e.conftest import Api, repair_order
from tests.e2e.test_customer_care import customer_id_of
from tests.e2e.test_repair_lifecycle import ORDERS, Desk, diagnosed_and_quoted, part_in_stock

DATABASES = ("orders", "inventory", "customers", "reporting", "gateway")
STREAMS = (*bus.STREAMS, bus.DEAD_LETTERS_STREAM, bus.ARCHIVE_STREAM, KEYS_STREAM)
# Common surname, rare given names: no other test's customer is called this.
GIVEN_NAMES = "琦瑾璇珂瑶琰璐瑜"


class Person:
    def __init__(self) -> None:
        self.name = "欧阳" + "".join(random.choices(GIVEN_NAMES, k=3))
        self.phone = "135" + "".join(random.choices("0123456789", k=8))

    def traces(self) -> list[bytes]:
        """How the name and phone would look in clear: as text, and as JSON escapes it."""
        escaped = json.dumps(self.name)[1:-1]
        return [self.phone.encode(), self.name.encode(), escaped.encode()]

    def found_in(self, value: object) -> bool:
        if value is None:
            return False
        raw = value if isinstance(value, bytes) else str(value).encode()
        return any(trace in raw for trace in self.traces())


@pytest.fixture
async def js(system: LocalSystem) -> AsyncIterator[JetStreamContext]:
    nc = await system.connect_bus()
    yield nc.jetstream()
    await nc.close()


async def take_in(api: Api, clerk: str, person: Person) -> Desk:
    body = repair_order(customer={"name": person.name, "phone": person.phone})
    body["device"]["purchase_date"] = None  # out of warranty: a paid repair
    created = await api.post(clerk, ORDERS, body, str(uuid.uuid4()))
    assert created.status_code == 201, created.text
    read = await api.get(clerk, f"{ORDERS}/{created.json()['id']}")
    return Desk(api, read.json(), read.headers["ETag"])


async def closed(api: Api, person: Person) -> Desk:
    part, _ = await part_in_stock(api)
    desk = await take_in(api, "sh001.clerk", person)
    order = await diagnosed_and_quoted(desk, part, labour=5_000)
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    await desk.take("sh001.tech", "repair/start", {})
    await desk.take(
        "sh001.tech", "repair/finish", {"actions_done": ["replace_screen"], "repair_level": "L2"}
    )
    await desk.take("sh001.clerk", "qc", {"passed": True})
    due = order["quote"]["total_fen"]
    order = await desk.take("sh001.clerk", "pickup", {"method": "cash", "amount_fen": due})
    assert order["status"] == "closed"
    return desk


async def cancelled_after_quote(api: Api, person: Person) -> Desk:
    part, _ = await part_in_stock(api)
    desk = await take_in(api, "sh001.clerk", person)
    await diagnosed_and_quoted(desk, part, labour=5_000)
    order = await desk.take("sh001.clerk", "cancel", {"reason": "customer changed their mind"})
    assert order["status"] == "cancelled"
    return desk


async def cancelled_at_intake(api: Api, person: Person, clerk: str) -> Desk:
    desk = await take_in(api, clerk, person)
    order = await desk.take(clerk, "cancel", {"reason": "came back another day"})
    assert order["status"] == "cancelled"
    return desk


async def dead_letter_of_its_intake(js: JetStreamContext, order_id: str) -> None:
    """The order's OrderReceived as the customers consumer dead-letters it (it failed five
    times), so the dead letters hold one of this customer's events too."""
    info = await js.stream_info("ORDERS")
    sub = await js.pull_subscribe("orders.v1.*.*.order_received", durable=None, stream="ORDERS")
    try:
        while True:
            [message] = await sub.fetch(1, timeout=5)
            await message.ack()
            if order_id.encode() in message.data:
                break
            assert message.metadata.sequence.stream < info.state.last_seq, "intake not found"
    finally:
        await sub.unsubscribe()
    original = dead_letters.Original(
        subject=message.subject,
        stream="ORDERS",
        sequence=message.metadata.sequence.stream,
        deliveries=5,
        payload=message.data,
        headers=dict(message.headers or {}),
    )
    assert original.headers[EVENT_TYPE_HEADER].endswith("OrderReceived")
    await dead_letters.send(
        js, "customers", "customers-order-received", original, "failed", "test: five failures"
    )


async def messages_holding(js: JetStreamContext, stream: str, person: Person) -> list[str]:
    """Every message of the stream whose subject, headers or payload name the person."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    if not info.state.messages:
        return []
    found = []
    # The archive has no subjects of its own: it holds its sources' messages.
    subject = info.config.subjects[0] if info.config.subjects else ">"
    sub = await js.pull_subscribe(subject, durable=None, stream=stream)
    try:
        seen = 0
        while seen < info.state.messages:
            batch = await sub.fetch(500, timeout=5)
            for message in batch:
                seen += 1
                headers = json.dumps(message.headers or {}, ensure_ascii=False)
                if any(person.found_in(v) for v in (message.subject, headers, message.data)):
                    found.append(f"{stream} #{message.metadata.sequence.stream} {message.subject}")
            if batch[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


def reflected(conn: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(conn)
    return metadata


async def rows_holding(system: LocalSystem, person: Person) -> list[str]:
    """Every row of every table of every service's database that names the person."""
    found = []
    config = system.config
    for service in DATABASES:
        if config.database_url:
            db = Database(config.database_url, f"{config.schema_prefix}{service}")
        else:
            db = Database(f"sqlite+aiosqlite:///{config.data_dir / f'{service}.db'}")
        try:
            async with db.session() as conn:
                metadata = await conn.run_sync(reflected)
                for table in metadata.sorted_tables:
                    for row in await conn.execute(select(table)):
                        if any(person.found_in(value) for value in row):
                            found.append(f"{service}.{table.name}: {row[0]}")
        finally:
            await db.dispose()
    return found


async def answers_holding(
    api: Api, person: Person, desks: list[Desk], customer_id: str
) -> list[str]:
    """The API answers about the customer and their orders that name them."""
    reads: list[tuple[str, str, dict[str, str]]] = [
        ("hq.admin", f"/api/v1/customers/{customer_id}", {}),
        ("hq.admin", f"/api/v1/customers/{customer_id}/export", {"reason": "audit check"}),
        ("sh001.clerk", "/api/v1/customers/lookup", {"phone": person.phone}),
        ("sh001.clerk", ORDERS, {"phone": person.phone}),
        ("hq.admin", ORDERS, {"limit": "100"}),
        ("hq.admin", "/api/v1/follow-ups", {"limit": "100"}),
        ("hq.admin", "/api/v1/privacy-audit", {"customer_id": customer_id}),
    ]
    for desk in desks:
        clerk = "sh001.clerk" if desk.order["store_id"] == "SH-001" else "zj001.clerk"
        reads.append((clerk, f"{ORDERS}/{desk.order['id']}", {}))
        reads.append((clerk, f"{ORDERS}/{desk.order['id']}/timeline", {}))
    found = []
    for user, path, params in reads:
        reply = await api.get(user, path, **params)
        assert reply.status_code in (200, 404), f"{path}: {reply.text}"
        if person.found_in(reply.content) or person.found_in(reply.text):
            found.append(f"{user} GET {path} {params}")
    return found


async def test_erasure_leaves_the_name_and_phone_nowhere(
    api: Api, system: LocalSystem, js: JetStreamContext
) -> None:
    person = Person()
    desks = [
        await closed(api, person),
        await cancelled_after_quote(api, person),
        await cancelled_at_intake(api, person, "sh001.clerk"),
        await cancelled_at_intake(api, person, "zj001.clerk"),
    ]
    customer_id = await customer_id_of(api, person.phone)
    await dead_letter_of_its_intake(js, desks[0].order["id"])

    async def history_done() -> bool:
        reply = await api.get("hq.admin", f"/api/v1/customers/{customer_id}")
        history: list[dict[str, Any]] = reply.json()["history"]
        return len(history) == len(desks) and all(
            h["status"] in ("closed", "cancelled") for h in history
        )

    await eventually(history_done, within=20)
    # Before: the name and phone are there to be found (the scans do find them).
    assert await answers_holding(api, person, desks, customer_id)
    assert await rows_holding(system, person)

    erased = await api.post(
        "hq.admin",
        f"/api/v1/customers/{customer_id}/erasure",
        {"reason": "customer request 2026-117"},
        str(uuid.uuid4()),
    )
    assert erased.status_code == 200, erased.text

    async def orders_cleared() -> bool:
        for desk in desks:
            clerk = "sh001.clerk" if desk.order["store_id"] == "SH-001" else "zj001.clerk"
            reply = await api.get(clerk, f"{ORDERS}/{desk.order['id']}")
            if person.found_in(reply.text):
                return False
        return True

    await eventually(orders_cleared, within=20)
    order = (await api.get("sh001.clerk", f"{ORDERS}/{desks[0].order['id']}")).json()
    assert order["customer"]["name"] == "已删除" and not order["customer"]["phone"]

    assert await answers_holding(api, person, desks, customer_id) == []
    for stream in STREAMS:
        assert await messages_holding(js, stream, person) == [], stream
    assert await rows_holding(system, person) == []
