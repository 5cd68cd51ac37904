"""Transfers against a real database: approval by branch (both across branches), shipping out
of the sender into transit, a short receipt, cancelling; the conservation check balanced at
every step, and every step announced."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.adapters.orm import outbox
from services.inventory.domain.stock import StockLevel
from services.inventory.handlers import conservation, stock, transfers
from services.inventory.service import SPEC

PART = "VV-SCR-X100"  # stocked at the SH central, SH-002 and ZJ-001
HQ_ADMIN = AuthContext("u-hq", "hq_admin")
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH")
ZJ_MANAGER = AuthContext("u-zjm", "branch_manager", "ZJ")
SH002_KEEPER = AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002")
SH001_KEEPER = AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001")
ZJ001_KEEPER = AuthContext("u-k3", "warehouse_keeper", "ZJ", "ZJ-001")


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def level(runtime: Runtime, warehouse_id: str) -> StockLevel:
    _, rows = await stock.get_stock(runtime.uow, HQ_ADMIN, warehouse_id, PART)
    return rows[0].level


async def balanced(runtime: Runtime) -> tuple[bool, int]:
    [check] = await conservation.check_conservation(runtime.uow, HQ_ADMIN, PART)
    return check.balanced, check.in_transit


@pytest.mark.service("inventory")
async def test_a_transfer_within_a_branch_with_a_short_receipt(runtime: Runtime) -> None:
    uow = runtime.uow
    central, store = await level(runtime, "WH-SH"), await level(runtime, "WH-SH-002")
    doc = await transfers.request_transfer(uow, SH002_KEEPER, "WH-SH", "WH-SH-002", [(PART, 3)], "")
    assert (doc.status, doc.pending_branches) == ("requested", ("SH",))
    with pytest.raises(Forbidden):
        await transfers.approve_transfer(uow, SH002_KEEPER, doc.id)
    with pytest.raises(NotFound):
        await transfers.get_transfer(uow, ZJ_MANAGER, doc.id)
    with pytest.raises(Conflict):
        await transfers.ship_transfer(uow, SH_MANAGER, doc.id)
    doc = await transfers.approve_transfer(uow, SH_MANAGER, doc.id)
    assert doc.status == "approved"
    # The store may not ship out of its branch's central warehouse.
    with pytest.raises(Forbidden):
        await transfers.ship_transfer(uow, SH002_KEEPER, doc.id)

    doc = await transfers.ship_transfer(uow, SH_MANAGER, doc.id)
    assert doc.status == "shipped" and doc.lines[0].unit_cost_fen == central.average_cost_fen
    assert await transfers.ship_transfer(uow, SH_MANAGER, doc.id) == doc  # never twice
    assert (await level(runtime, "WH-SH")).on_hand == central.on_hand - 3
    assert await balanced(runtime) == (True, 3)
    with pytest.raises(Conflict):
        await transfers.cancel_transfer(uow, SH_MANAGER, doc.id)

    doc = await transfers.receive_transfer(uow, SH002_KEEPER, doc.id, {PART: (1, 0)})
    assert (doc.status, doc.lines[0].received, doc.lines[0].short) == ("received", 2, 1)
    after = await level(runtime, "WH-SH-002")
    assert after.on_hand == store.on_hand + 2
    total = store.on_hand * store.average_cost_fen + 2 * central.average_cost_fen
    assert after.average_cost_fen == total // (store.on_hand + 2)
    assert await balanced(runtime) == (True, 0)

    async with runtime.db.session() as session:
        subjects = list(
            await session.scalars(
                select(outbox.c.subject)
                .where(outbox.c.subject.like("%transfer_changed"))
                .order_by(outbox.c.seq)
            )
        )
    assert subjects == [
        "inventory.v1.SH._.transfer_changed",
        "inventory.v1.SH._.transfer_changed",
        "inventory.v1.SH._.transfer_changed",
        "inventory.v1.SH.SH-002.transfer_changed",
    ]


@pytest.mark.service("inventory")
async def test_across_branches_both_approve_and_a_transfer_can_be_cancelled(
    runtime: Runtime,
) -> None:
    uow = runtime.uow
    doc = await transfers.request_transfer(
        uow, ZJ001_KEEPER, "WH-SH-002", "WH-ZJ-001", [(PART, 1)], "急"
    )
    doc = await transfers.approve_transfer(uow, ZJ_MANAGER, doc.id)
    assert (doc.status, doc.pending_branches) == ("requested", ("SH",))
    doc = await transfers.approve_transfer(uow, SH_MANAGER, doc.id)
    assert doc.status == "approved"
    doc = await transfers.cancel_transfer(uow, ZJ001_KEEPER, doc.id)
    assert doc.status == "cancelled" and doc.cancelled_at is not None
    with pytest.raises(Conflict):
        await transfers.ship_transfer(uow, SH002_KEEPER, doc.id)

    with pytest.raises(NotFound):
        await transfers.request_transfer(
            uow, SH001_KEEPER, "WH-SH-002", "WH-ZJ-001", [(PART, 1)], ""
        )
    with pytest.raises(InvalidInput) as caught:
        await transfers.request_transfer(uow, ZJ001_KEEPER, "WH-SH", "WH-ZJ-001", [("NONE", 1)], "")
    assert caught.value.errors[0].field == "lines[0].part_number"
    with pytest.raises(InvalidInput) as caught:
        await transfers.request_transfer(uow, ZJ001_KEEPER, "WH-XX", "WH-ZJ-001", [(PART, 1)], "")
    assert caught.value.errors[0].field == "from_warehouse_id"
    # Shipping more than the sender has available is a conflict that changes nothing.
    big = (await level(runtime, "WH-SH-002")).available + 1
    doc = await transfers.request_transfer(
        uow, HQ_ADMIN, "WH-SH-002", "WH-ZJ-001", [(PART, big)], ""
    )
    await transfers.approve_transfer(uow, HQ_ADMIN, doc.id)
    with pytest.raises(Conflict):
        await transfers.ship_transfer(uow, HQ_ADMIN, doc.id)
    assert (await transfers.get_transfer(uow, HQ_ADMIN, doc.id)).status == "approved"
    assert await balanced(runtime) == (True, 0)
