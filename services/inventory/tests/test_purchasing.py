"""Purchasing: reorder suggestions from consumption, levels, stock in transit and on order;
purchase orders received into stock at their cost, in parts or whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.domain import purchasing
from services.inventory.domain.purchasing import PurchaseLine, ReorderLevel
from services.inventory.handlers import conservation, procurement, stock, work_order_parts
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

WAREHOUSE, PART = "WH-SH-002", "OP-CAM-FINDX7"
KEEPER = AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002")
AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_a_part_below_its_reorder_point_is_brought_up_to_its_maximum() -> None:
    level = ReorderLevel("P", min_level=5, max_level=20, lead_time_days=10)
    # 30 consumed over 30 days: one a day, ten over the lead time; the point is 10.
    low = purchasing.suggest(
        level, available=4, in_transit=2, on_order=1, consumed=30, window_days=30
    )
    assert (low.reorder_point, low.quantity) == (10, 20 - 7)
    enough = purchasing.suggest(level, 8, 2, 0, 30, 30)
    assert enough.quantity == 0
    # Fast movers order past the maximum: the point plus a lead time's consumption.
    fast = purchasing.suggest(level, 0, 0, 0, 90, 30)
    assert (fast.reorder_point, fast.quantity) == (30, 60)
    with pytest.raises(InvalidInput):
        purchasing.check_level(ReorderLevel("P", 5, 4, 1))


def test_a_purchase_order_is_received_in_parts() -> None:
    order = purchasing.PurchaseOrder(
        "PO-1", "W", "供应商", (PurchaseLine("P", 3, 100), PurchaseLine("Q", 1, 50)), "u", AT
    )
    part = purchasing.receive_lines(order, {"P": 2})
    assert (part.status, part.on_order) == ("open", {"P": 1, "Q": 1})
    done = purchasing.receive_lines(part, {})
    assert (done.status, done.on_order) == ("received", {})
    with pytest.raises(Conflict):
        purchasing.receive_lines(done, {})
    with pytest.raises(InvalidInput):
        purchasing.receive_lines(part, {"P": 2})


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("inventory")
async def test_a_suggestion_becomes_an_order_and_its_receipt(runtime: Runtime) -> None:
    uow = runtime.uow
    _, [row] = await stock.get_stock(uow, KEEPER, WAREHOUSE, PART)
    available = row.level.available
    level = ReorderLevel(PART, min_level=available + 2, max_level=available + 10, lead_time_days=7)
    await procurement.set_reorder_level(uow, KEEPER, WAREHOUSE, level)
    # One consumed today: a little daily consumption, still below the minimum.
    await work_order_parts.reserve_parts(
        uow, KEEPER, "o-p", WAREHOUSE, [PartRequest("l-1", PART, 1, False)]
    )
    await work_order_parts.issue_parts(uow, KEEPER, "o-p", [])
    [suggestion] = await procurement.suggest_reorders(uow, KEEPER, WAREHOUSE, 0)
    assert suggestion.part_number == PART and suggestion.available == available - 1
    assert suggestion.quantity == level.max_level - (available - 1)

    order = await procurement.create_purchase_order(
        uow, KEEPER, WAREHOUSE, "欧珀配件", [PurchaseLine(PART, suggestion.quantity, 33000)]
    )
    assert await procurement.suggest_reorders(uow, KEEPER, WAREHOUSE, 0) == []  # on order now
    received = await procurement.receive_purchase_order(uow, KEEPER, order.id, {})
    assert received.status == "received"
    _, [after] = await stock.get_stock(uow, KEEPER, WAREHOUSE, PART)
    assert after.level.on_hand == row.level.on_hand - 1 + suggestion.quantity
    [check] = await conservation.check_conservation(uow, AuthContext("u-hq", "hq_admin"), PART)
    assert check.balanced

    with pytest.raises(Conflict):
        await procurement.receive_purchase_order(uow, KEEPER, order.id, {})
    with pytest.raises(NotFound):
        await procurement.receive_purchase_order(
            uow, AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001"), order.id, {}
        )
    with pytest.raises(InvalidInput) as caught:
        await procurement.create_purchase_order(
            uow, KEEPER, WAREHOUSE, "x", [PurchaseLine("OP-MAI-FINDX7", 1, 1)]
        )
    assert caught.value.errors[0].field == "lines[0].part_number"
