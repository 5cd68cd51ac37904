"""A customer hears once about each change they care about (SPEC §4), against a real database:
an order event that leaves the status as it was (a step that changed nothing the customer
sees, as orders announced before it stopped doing so) brings no second notice, nor does a
change announced again under another event id."""

from __future__ import annotations

import uuid

import pytest

from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.runtime import Runtime
from services.customers.notifications import handlers
from services.customers.notifications.templates import notice_of_change
from services.customers.tests.test_notifications_integration import (
    Branch,
    branch,
    deliveries_of,
    known_customer,
    moved,
    received,
    settings,
)

__all__ = ["branch", "settings"]  # the fixtures, shared

pytestmark = pytest.mark.service("customers")


async def handled(
    runtime: Runtime,
    branch: Branch,
    event: events_pb2.OrderReceived | order_events_pb2.OrderStatusChanged,
) -> None:
    """As the consumer does, each in its own transaction (run directly: nothing to wait for)."""
    async with runtime.uow() as uow:
        if isinstance(event, events_pb2.OrderReceived):
            await handlers.order_received(uow, event, branch.settings)
        else:
            await handlers.status_changed(uow, event, branch.settings)
        await uow.commit()


async def kinds_of(runtime: Runtime, order_id: str) -> list[str]:
    return sorted(row.kind for row in await deliveries_of(runtime, order_id))


async def test_a_status_announced_again_brings_no_second_notice(
    runtime: Runtime, branch: Branch
) -> None:
    order_id = str(uuid.uuid4())
    await known_customer(runtime, branch, order_id, consent=True)
    quote = moved(branch, order_id, "awaiting_approval", 3, quote_fen=150_000)
    quote.from_status = "diagnosed"
    # The customer said yes, the manager's answer is awaited: still awaiting_approval.
    agreed = moved(branch, order_id, "awaiting_approval", 4, quote_fen=150_000)
    agreed.from_status = "awaiting_approval"
    short = moved(branch, order_id, "waiting_parts", 5)
    short.from_status = "approved"
    # The parts step retried, nothing arrived: announced again under a new event and version.
    retried = moved(branch, order_id, "waiting_parts", 6)
    for event in (received(branch, order_id), quote, agreed, short, retried):
        await handled(runtime, branch, event)
    assert await kinds_of(runtime, order_id) == [
        "order_received",
        "quote_to_approve",
        "waiting_parts",
    ]
    # A real change back into a status is news again.
    came = moved(branch, order_id, "approved", 7)
    lost = moved(branch, order_id, "waiting_parts", 8)
    for event in (came, lost):
        await handled(runtime, branch, event)
    assert await kinds_of(runtime, order_id) == [
        "order_received",
        "quote_to_approve",
        "waiting_parts",
        "waiting_parts",
    ]


def test_a_notice_follows_a_real_change_only() -> None:
    assert notice_of_change("diagnosed", "diagnosed", "awaiting_approval") == "quote_to_approve"
    assert notice_of_change("awaiting_approval", "awaiting_approval", "awaiting_approval") is None
    assert notice_of_change("waiting_parts", "", "waiting_parts") is None
    assert notice_of_change("approved", "waiting_parts", "waiting_parts") is None
    assert notice_of_change("approved", "approved", "in_repair") is None  # nothing to tell
