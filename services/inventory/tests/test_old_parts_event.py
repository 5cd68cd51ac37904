"""A batch of old parts (旧件) sent back is announced as OldPartsReturned, through the outbox in
the batch's own transaction, naming each order line it settles with its part and quantity:
orders' settlement makes those claim lines payable. A batch refused announces nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from aftersales.events.v1 import inventory_events_pb2
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.adapters.orm import outbox
from services.inventory.domain.old_parts import OldPartLine
from services.inventory.handlers import old_part_returns, work_order_parts
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

pytestmark = pytest.mark.service("inventory")

TECH = AuthContext("u-t1", "technician", "SH", "SH-001")
KEEPER = AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001")
SUBJECT = "inventory.v1.SH.SH-001.old_parts_returned"


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def announced(runtime: Runtime) -> list[inventory_events_pb2.OldPartsReturned]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(outbox.c.payload).where(outbox.c.subject == SUBJECT).order_by(outbox.c.seq)
        )
        return [inventory_events_pb2.OldPartsReturned.FromString(p) for (p,) in rows]


async def test_a_batch_returned_is_announced_line_by_line(runtime: Runtime) -> None:
    uow = runtime.uow
    lines = [
        PartRequest("l-1", "HW-BAT-P60", 2, True),
        PartRequest("l-2", "HW-SCR-P60", 1, True),
    ]
    await work_order_parts.reserve_parts(uow, TECH, "o-w", "WH-SH-001", lines)
    await work_order_parts.issue_parts(uow, TECH, "o-w", [])

    batch = await old_part_returns.return_old_parts(
        uow,
        KEEPER,
        "WH-SH-001",
        [OldPartLine("o-w", "l-1", 2), OldPartLine("o-w", "l-2", 1)],
        "RMA-1",
    )
    [event] = await announced(runtime)
    assert (event.batch_id, event.warehouse_id) == (batch.id, "WH-SH-001")
    assert event.meta.event_id and event.meta.branch_id == "SH"
    assert [(x.order_id, x.line_id, x.part_number, x.quantity) for x in event.lines] == [
        ("o-w", "l-1", "HW-BAT-P60", 2),
        ("o-w", "l-2", "HW-SCR-P60", 1),
    ]

    # Refused (it owes no more): nothing announced.
    with pytest.raises(InvalidInput):
        await old_part_returns.return_old_parts(
            uow, KEEPER, "WH-SH-001", [OldPartLine("o-w", "l-1", 1)], "RMA-2"
        )
    assert len(await announced(runtime)) == 1
