"""Stocktake (盘点): counted against book; small differences posted at once as adjustments,
large ones only once a manager approves; a keeper's own large adjustment is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from aftersales.events.v1.inventory_events_pb2 import DocumentChanged
from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.adapters.orm import outbox
from services.inventory.domain import stocktake
from services.inventory.domain.stock import StockLevel
from services.inventory.domain.stocktake import APPROVAL_THRESHOLD_FEN
from services.inventory.handlers import conservation, documents, stock, stocktakes
from services.inventory.service import SPEC

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
WAREHOUSE, PART, OTHER = "WH-SH-002", "OP-SCR-FINDX7", "OP-BAT-FINDX7"
KEEPER = AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002")
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH")
HQ_ADMIN = AuthContext("u-hq", "hq_admin")


def test_differences_are_valued_and_large_ones_need_approval() -> None:
    book = {"P": StockLevel("W", "P", 5, 0, 30000), "Q": StockLevel("W", "Q", 2, 0, 1000)}
    lines = stocktake.count([("P", 4), ("Q", 3)], book)
    assert [(x.book, x.counted, x.difference) for x in lines] == [(5, 4, -1), (2, 3, 1)]
    doc = stocktake.Stocktake("ST-1", "W", lines, "u", AT)
    assert doc.difference_value_fen == 31000
    assert not doc.needs_approval  # 310 yuan, within the 1000 yuan threshold
    large = stocktake.Stocktake("ST-2", "W", stocktake.count([("P", 0)], book), "u", AT)
    assert (large.difference_value_fen, large.needs_approval) == (150000, True)
    posted = stocktake.decide(doc, True, "m", AT)
    assert (posted.status, posted.decided_by) == ("posted", "m")
    assert stocktake.decide(posted, True, "m", AT) == posted
    with pytest.raises(Conflict):
        stocktake.decide(posted, False, "m", AT)
    with pytest.raises(InvalidInput):
        stocktake.check_counts([("P", -1)])
    with pytest.raises(InvalidInput):
        stocktake.check_counts([("P", 1), ("P", 2)])


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def on_hand(runtime: Runtime, part: str) -> tuple[int, int]:
    _, [row] = await stock.get_stock(runtime.uow, HQ_ADMIN, WAREHOUSE, part)
    return row.level.on_hand, row.level.average_cost_fen


@pytest.mark.service("inventory")
async def test_a_small_stocktake_posts_at_once_and_a_large_one_waits(runtime: Runtime) -> None:
    uow = runtime.uow
    (part_book, part_cost), (other_book, other_cost) = (
        await on_hand(runtime, PART),
        await on_hand(runtime, OTHER),
    )
    # One found and nothing missing of the other: worth less than the threshold.
    assert part_cost <= APPROVAL_THRESHOLD_FEN
    doc = await stocktakes.record_stocktake(
        uow, KEEPER, WAREHOUSE, [(PART, part_book + 1), (OTHER, other_book)]
    )
    assert (doc.status, doc.difference_value_fen) == ("posted", part_cost)
    assert (await on_hand(runtime, PART))[0] == part_book + 1

    # Missing more than the threshold's worth: nothing moves until the manager approves.
    missing = APPROVAL_THRESHOLD_FEN // part_cost + 1
    assert missing <= part_book + 1
    doc = await stocktakes.record_stocktake(
        uow, KEEPER, WAREHOUSE, [(PART, part_book + 1 - missing)]
    )
    assert doc.status == "pending_approval"
    assert (await on_hand(runtime, PART))[0] == part_book + 1
    with pytest.raises(Forbidden):
        await stocktakes.decide_stocktake(uow, KEEPER, doc.id, True)
    with pytest.raises(NotFound):
        await stocktakes.get_stocktake(
            uow, AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001"), doc.id
        )
    approved = await stocktakes.decide_stocktake(uow, SH_MANAGER, doc.id, True)
    assert (approved.status, approved.decided_by) == ("posted", SH_MANAGER.user_id)
    assert (await on_hand(runtime, PART))[0] == part_book + 1 - missing
    assert await stocktakes.decide_stocktake(uow, SH_MANAGER, doc.id, True) == approved

    [check] = await conservation.check_conservation(uow, HQ_ADMIN, PART)
    assert check.balanced
    async with runtime.db.session() as session:
        payloads = await session.scalars(
            select(outbox.c.payload)
            .where(outbox.c.subject == "inventory.v1.SH.SH-002.document_changed")
            .order_by(outbox.c.seq)
        )
        changes = [DocumentChanged.FromString(p) for p in payloads]
    assert [(e.document_type, e.status) for e in changes] == [
        ("stocktake", "posted"),
        ("stocktake", "pending_approval"),
        ("stocktake", "posted"),
    ]
    assert changes[-1].document_id == doc.id

    # A keeper cannot write off that much directly either; the manager can.
    too_much = -(APPROVAL_THRESHOLD_FEN // other_cost + 1)
    with pytest.raises(Forbidden):
        await documents.record_adjustment(uow, KEEPER, WAREHOUSE, OTHER, too_much, "lost", "")
    await documents.record_adjustment(uow, SH_MANAGER, WAREHOUSE, OTHER, 1, "found", "")
