"""The timeline records only what is true: an approval that finds parts short makes the order
wait for parts in that step; it never was `approved` (every part held)."""

from __future__ import annotations

import pytest

from servicekit.auth import AuthContext
from servicekit.runtime import Runtime
from services.orders.tests.test_lifecycle_integration import (
    CLERK,
    Desk,
    inventory,
    runtime,
    to_quoted,
    yes,
)

__all__ = ["runtime"]  # the fixture, shared

MANAGER = AuthContext("u-manager", "branch_manager", "SH", None)


@pytest.mark.service("orders")
async def test_the_managers_approval_with_parts_short_records_waiting_parts_only(
    runtime: Runtime,
) -> None:
    desk = Desk(runtime, inventory(0))
    order = await to_quoted(desk, total=150_000)  # over SH's threshold: the manager too
    order = await desk.step(CLERK, order, "approval", decision=yes())
    assert order.status == "awaiting_approval"
    order = await desk.step(MANAGER, order, "manager-approval", decision=yes())
    assert order.status == "waiting_parts"
    assert [(e.step, e.status) for e in order.timeline][-2:] == [
        ("approval", "awaiting_approval"),
        ("manager-approval", "waiting_parts"),
    ]
    assert "approved" not in [e.status for e in order.timeline]
    assert order.timeline[-1].note.endswith("short: HW-SCR-001 ×1")


@pytest.mark.service("orders")
async def test_the_approval_with_every_part_held_records_approved(runtime: Runtime) -> None:
    desk = Desk(runtime, inventory(1))
    order = await desk.step(CLERK, await to_quoted(desk), "approval", decision=yes())
    assert [(e.step, e.status) for e in order.timeline][-1] == ("approval", "approved")
