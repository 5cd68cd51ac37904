"""Franchise quota (额度): the rule alone, then on a real database with the demo's franchised
store ZJ-002: receipts and transfers that would take it over are refused with the figures,
warranty issues count as old parts owed, its branch sets it and the store sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory import demo
from services.inventory.domain.quota import QuotaUse, admit
from services.inventory.handlers import documents, quotas, stock, transfers, work_order_parts
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

STORE = "WH-ZJ-002"
PART = "MI-SCR-XIAOMI14"  # stocked at ZJ-002 and at the ZJ central
ZJ_MANAGER = AuthContext("u-zjm", "branch_manager", "ZJ")
ZJ002_CLERK = AuthContext("u-c4", "clerk", "ZJ", "ZJ-002")
ZJ002_KEEPER = AuthContext("u-k4", "warehouse_keeper", "ZJ", "ZJ-002")
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH")


def test_a_movement_over_the_quota_is_refused_with_the_figures() -> None:
    use = QuotaUse("WH-ZJ-002", quota_fen=1000, held_fen=600, in_transit_fen=200, owed_fen=100)
    assert (use.used_fen, use.headroom_fen) == (900, 100)
    admit(use, 100, "receipt")
    with pytest.raises(Conflict) as caught:
        admit(use, 101, "transfer TR-1")
    assert caught.value.message == (
        "transfer TR-1 would exceed the franchise quota of WH-ZJ-002: quota 1000 fen, held 600, "
        "in transit 200, old parts owed 100, used 900, this 101, headroom 100"
    )
    admit(QuotaUse("W", 0, 5, 0, 0), -5, "a write-off")  # taking value out is always fine


def test_the_demo_quota_leaves_a_fifth_of_room() -> None:
    assert demo.demo_quota(1_000_000) == 1_200_000
    assert demo.demo_quota(1_000_001) == 1_300_000


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("inventory")
async def test_the_franchised_store_is_held_to_its_quota(runtime: Runtime) -> None:
    uow = runtime.uow
    use = await quotas.get_quota(uow, ZJ002_CLERK, STORE)
    assert use.quota_fen >= use.used_fen == use.held_fen > 0
    with pytest.raises(NotFound):
        await quotas.get_quota(uow, SH_MANAGER, STORE)
    with pytest.raises(NotFound):
        await quotas.get_quota(uow, ZJ_MANAGER, "WH-ZJ-001")  # an own store: no quota

    # A receipt worth more than the headroom is refused; one within it is taken.
    with pytest.raises(Conflict) as caught:
        await documents.record_receipt(uow, ZJ002_KEEPER, STORE, PART, 1, use.headroom_fen + 1, "")
    assert f"headroom {use.headroom_fen}" in caught.value.message
    await documents.record_receipt(uow, ZJ002_KEEPER, STORE, PART, 1, use.headroom_fen, "")
    # Held stock is valued at the average, rounded down: a few fen may come free.
    assert 0 <= (await quotas.get_quota(uow, ZJ002_CLERK, STORE)).headroom_fen < 10

    # Its branch raises the quota by one unit's worth of the central's stock, then a transfer
    # of two units from the central is refused at shipping, and one goes.
    _, [central] = await stock.get_stock(uow, ZJ_MANAGER, "WH-ZJ", PART)
    cost = central.level.average_cost_fen
    use = await quotas.set_quota(uow, ZJ_MANAGER, STORE, use.quota_fen + cost)
    assert cost <= use.headroom_fen < cost + 10
    two = await transfers.request_transfer(uow, ZJ002_KEEPER, "WH-ZJ", STORE, [(PART, 2)], "")
    await transfers.approve_transfer(uow, ZJ_MANAGER, two.id)
    with pytest.raises(Conflict) as caught:
        await transfers.ship_transfer(uow, ZJ_MANAGER, two.id)
    assert "franchise quota of WH-ZJ-002" in caught.value.message
    one = await transfers.request_transfer(uow, ZJ002_KEEPER, "WH-ZJ", STORE, [(PART, 1)], "")
    await transfers.approve_transfer(uow, ZJ_MANAGER, one.id)
    await transfers.ship_transfer(uow, ZJ_MANAGER, one.id)
    headroom = use.headroom_fen
    use = await quotas.get_quota(uow, ZJ002_CLERK, STORE)
    assert (use.in_transit_fen, use.headroom_fen) == (cost, headroom - cost)

    # A warranty issue turns held value into an old part owed; the total stays.
    line = [PartRequest("l-1", PART, 1, True)]
    await work_order_parts.reserve_parts(uow, ZJ002_CLERK, "o-w", STORE, line)
    issued = await work_order_parts.issue_parts(uow, ZJ002_CLERK, "o-w", [])
    after = await quotas.get_quota(uow, ZJ002_CLERK, STORE)
    assert after.owed_fen == issued.lines[0].unit_cost_fen > 0
    assert after.used_fen == use.used_fen

    with pytest.raises(Forbidden):
        await quotas.set_quota(uow, ZJ002_KEEPER, STORE, 1)
    with pytest.raises(InvalidInput) as caught:
        await quotas.set_quota(uow, ZJ_MANAGER, "WH-ZJ-001", 1)
    assert caught.value.errors[0].field == "warehouse_id"
    with pytest.raises(InvalidInput):
        await quotas.set_quota(uow, ZJ_MANAGER, STORE, -1)
