"""What the customer hears follows real changes only, against a real database: a step that
leaves the order's status as it was announces no status change (so no notice goes out twice), and a
second approval while the other is awaited is refused with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from servicekit.errors import Conflict
from servicekit.runtime import Runtime
from services.orders.adapters.orm import outbox
from services.orders.tests.test_lifecycle_integration import (
    CLERK,
    SCREEN,
    TECH,
    Desk,
    inventory,
    runtime,
    to_quoted,
    yes,
)

__all__ = ["runtime"]  # the fixture, shared


async def subjects(runtime: Runtime) -> list[str]:
    async with runtime.db.session() as session:
        rows = await session.scalars(select(outbox.c.subject).order_by(outbox.c.seq))
        return [str(subject) for subject in rows]


@pytest.mark.service("orders")
async def test_the_customer_s_yes_to_a_quote_over_the_threshold_announces_nothing_new(
    runtime: Runtime,
) -> None:
    desk = Desk(runtime, inventory(1))
    order = await to_quoted(desk, total=150_000)
    assert order.quote.manager_approval_required
    quoted = await subjects(runtime)
    assert quoted[-1].endswith(".order_awaiting_approval")
    order = await desk.step(CLERK, order, "approval", decision=yes())
    assert order.status == "awaiting_approval" and order.timeline[-1].step == "approval"
    # Still awaiting approval: no second order_awaiting_approval, so no second quote notice.
    assert await subjects(runtime) == quoted

    # A second yes while the manager's is awaited: 409, and nothing written.
    with pytest.raises(Conflict, match="branch manager's answer is awaited"):
        await desk.step(CLERK, order, "approval", decision=yes("again"))
    again = await desk.get(order.id)
    assert (again.version, len(again.timeline)) == (order.version, len(order.timeline))
    assert await subjects(runtime) == quoted


@pytest.mark.service("orders")
async def test_a_parts_retry_with_nothing_arrived_announces_nothing(runtime: Runtime) -> None:
    parts = inventory(0)
    desk = Desk(runtime, parts)
    order = await desk.step(CLERK, await to_quoted(desk), "approval", decision=yes())
    assert order.status == "waiting_parts"
    before = await subjects(runtime)
    order = await desk.step(TECH, order, "parts")
    assert order.status == "waiting_parts"
    assert order.timeline[-1].step == "parts"  # the clerk still sees the attempt
    # Inventory hears that this attempt's claims were written (it would let them go after its
    # grace otherwise); the event moves no status, so customers sends no second notice.
    after = await subjects(runtime)
    assert after[: len(before)] == before
    assert all(s.endswith(".order_waiting_parts") for s in after[len(before) :])
    assert len(after) - len(before) <= 1
    parts.stock[SCREEN] = 1  # now it came: a real change, announced
    order = await desk.step(TECH, order, "parts")
    assert order.status == "approved"
    assert (await subjects(runtime))[-1].endswith(".order_approved")
