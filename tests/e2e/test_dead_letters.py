"""Dead letters on the real processes: a poison event on an orders subject lands in the dead
letters of both services that consume it (customers, reporting), the command lists and shows
it, and a replay reaches only the consumer it was replayed for; intake goes on meanwhile."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from aftersales.events.v1 import events_pb2
from devtools.system import LocalSystem
from servicekit.bus_permissions import OPERATOR
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.testing import eventually
from services.customers.consumers import ORDERS_CONSUMER as CUSTOMERS_CONSUMER
from tests.e2e.conftest import Api, repair_order

ROOT = Path(__file__).resolve().parents[2]
SUBJECT = "orders.v1.SH.SH-001.order_received"


async def command(system: LocalSystem, service: str, *args: str) -> str:
    """`python -m services.<service> dead-letters ...` as an operator runs it beside the
    service (the same NATS_URL), as the operator's NATS user: only it may replay."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{service}",
        "dead-letters",
        *args,
        cwd=ROOT,
        env={**os.environ, **system.bus_env(OPERATOR)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def letters_for(
    system: LocalSystem, service: str, event_id: str, consumer: str
) -> list[list[str]]:
    """The listed letters of one event for one consumer: seq, at, consumer, kind, subject,
    event id, reason."""
    rows = [line.split("\t") for line in (await command(system, service, "list")).splitlines()]
    return [row for row in rows if row[5] == event_id and row[2] == consumer]


async def one_listed(system: LocalSystem, service: str, event_id: str, consumer: str) -> list[str]:
    async def found() -> list[str] | None:
        rows = await letters_for(system, service, event_id, consumer)
        return rows[0] if rows else None

    return await eventually(found, within=30, interval=0.2)


async def test_a_poison_event_lands_in_the_dead_letters_and_is_replayed_to_its_consumer(
    system: LocalSystem, api: Api
) -> None:
    event_id = f"poison-{uuid.uuid4()}"
    nc = await system.connect_bus()
    try:
        await nc.jetstream().publish(
            SUBJECT,
            b"\x08\xff\xff\xff not an order",
            headers={
                MSG_ID_HEADER: event_id,
                EVENT_TYPE_HEADER: events_pb2.OrderReceived.DESCRIPTOR.full_name,
            },
        )
    finally:
        await nc.close()

    # Each consumer of the event keeps its own letter: customers' one for all its handlers.
    in_customers = await one_listed(system, "customers", event_id, CUSTOMERS_CONSUMER)
    in_reporting = await one_listed(system, "reporting", event_id, "reporting-orders")
    assert in_customers[2:5] == [CUSTOMERS_CONSUMER, "undecodable", SUBJECT]
    assert in_reporting[2:5] == ["reporting-orders", "undecodable", SUBJECT]
    shown = await command(system, "customers", "show", in_customers[0])
    assert f"header {MSG_ID_HEADER}: {event_id}" in shown
    assert "from: ORDERS #" in shown and SUBJECT in shown

    # Intake is not held up by the poison ahead of it.
    reply = await api.post(
        "sh001.clerk", "/api/v1/repair-orders", repair_order(), str(uuid.uuid4())
    )
    assert reply.status_code == 201, reply.text

    replayed = await command(system, "customers", "replay", in_customers[0])
    assert f"replayed {in_customers[0]} to {CUSTOMERS_CONSUMER}" in replayed

    # Still undecodable, so customers keeps it again under a new number; reporting, which the
    # replay was not for, gets nothing new.
    async def kept_again() -> list[str] | None:
        rows = await letters_for(system, "customers", event_id, CUSTOMERS_CONSUMER)
        return rows[0] if rows and rows[0][0] != in_customers[0] else None

    again = await eventually(kept_again, within=30, interval=0.2)
    assert again[2:5] == in_customers[2:5]
    assert await letters_for(system, "customers", event_id, CUSTOMERS_CONSUMER) == [again]
    assert await letters_for(system, "reporting", event_id, "reporting-orders") == [in_reporting]
