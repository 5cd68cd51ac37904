"""StockReportsService over real gRPC, in process: the events applied by the handlers as the
consumer would run them, the figures and mismatches read back in the caller's scope, optional
figures absent when undefined, and bad input refused by field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from google.protobuf.message import Message

from aftersales.reporting.v1 import stock_reports_pb2, stock_reports_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, NotFound, Unauthenticated
from servicekit.grpc_client import call
from servicekit.inbox import UnprocessableEvent
from servicekit.runtime import Runtime
from servicekit.testing import acting_as, serving
from services.reporting import stock
from services.reporting.service import SPEC
from services.reporting.tests.test_stock_integration import moved, parts_changed, step

HQ = AuthContext("u-analyst", "hq_analyst")
SH_MANAGER = AuthContext("u-sh", "branch_manager", "SH")
ZJ_MANAGER = AuthContext("u-zj", "branch_manager", "ZJ")


@pytest.fixture
async def stub(
    runtime: Runtime,
) -> AsyncIterator[stock_reports_pb2_grpc.StockReportsServiceStub]:
    async with serving(SPEC, runtime) as channel:
        yield stock_reports_pb2_grpc.StockReportsServiceStub(channel)


async def handle(runtime: Runtime, *events: Message) -> None:
    """Apply events in one unit of work, as the consumer applies a batch."""
    handlers = {**stock.INVENTORY_EVENTS, **stock.STOCK_ORDER_EVENTS}
    async with runtime.uow() as uow:
        for event in events:
            await handlers[event.DESCRIPTOR.full_name][1](uow, event)
        await uow.commit()


@pytest.mark.service("reporting")
async def test_figures_and_mismatches_over_grpc(
    runtime: Runtime, stub: stock_reports_pb2_grpc.StockReportsServiceStub
) -> None:
    await handle(
        runtime,
        moved("SH", "SH-001", "W-SH-001", "P1", "2026-11-01", "receipt", 5, 200, 5),
        moved("SH", "SH-001", "W-SH-001", "P1", "2026-11-02", "issue", -1, 200, 4),
        moved("SH", "", "W-SH", "P1", "2026-11-01", "receipt", 1, 300, 1),  # central warehouse
        moved("ZJ", "ZJ-001", "W-ZJ-001", "P1", "2026-11-01", "receipt", 1, 999, 1),
        parts_changed("SH", "SH-001", "o1", "2026-11-02", "issue", [("L1", "P1", 1, 0, 200)]),
        step("SH", "SH-001", "o1", 7, "closed", [("L1", "P1", 2)]),
    )
    request = stock_reports_pb2.GetStockFiguresRequest(date_from="2026-11-01", date_to="2026-11-02")
    with acting_as(SH_MANAGER):
        sh = await call(stub.GetStockFigures, request)
        page = await call(
            stub.ListRecordMismatches, stock_reports_pb2.ListRecordMismatchesRequest()
        )
    assert (sh.branch_id, sh.store_id, sh.date_from) == ("SH", "", "2026-11-01")
    # Closing 1300 then 1100: average 1200; 200 issued over 2 days is 100 a day: 12 days.
    total = sh.total
    assert (total.inventory_value_fen, total.average_inventory_value_fen) == (1100, 1200)
    assert (total.turnover_days, total.parts_cost_per_order_fen) == (12.0, 200)
    central, store = sh.by_store
    assert (central.store_id, central.inventory_value_fen) == ("", 300)
    assert not central.HasField("turnover_days")
    assert not central.HasField("parts_cost_per_order_fen")
    assert (store.store_id, store.issued_cost_fen, store.orders_with_issues) == ("SH-001", 200, 1)
    [mismatch] = page.mismatches
    assert (mismatch.order_id, mismatch.order_number, mismatch.kind) == (
        "o1",
        "No1",
        "quantity_differs",
    )
    assert (mismatch.record_quantity, mismatch.issued_quantity) == (2, 1)
    assert page.next_page_token == ""

    with acting_as(ZJ_MANAGER):
        zj = await call(stub.GetStockFigures, request)
        assert (
            await call(stub.ListRecordMismatches, stock_reports_pb2.ListRecordMismatchesRequest())
        ).mismatches == []
        with pytest.raises(NotFound):
            await call(
                stub.GetStockFigures, stock_reports_pb2.GetStockFiguresRequest(branch_id="SH")
            )
    assert zj.total.inventory_value_fen == 999


@pytest.mark.service("reporting")
async def test_bad_requests_come_back_by_field(
    stub: stock_reports_pb2_grpc.StockReportsServiceStub,
) -> None:
    with acting_as(HQ):
        with pytest.raises(InvalidInput) as bad_dates:
            await call(
                stub.GetStockFigures,
                stock_reports_pb2.GetStockFiguresRequest(date_from="2026-11-31"),
            )
        with pytest.raises(InvalidInput) as bad_size:
            await call(
                stub.ListRecordMismatches,
                stock_reports_pb2.ListRecordMismatchesRequest(page_size=-1),
            )
        with pytest.raises(InvalidInput) as bad_token:
            await call(
                stub.ListRecordMismatches,
                stock_reports_pb2.ListRecordMismatchesRequest(page_token="forged"),
            )
    assert [e.field for e in bad_dates.value.errors] == ["date_from"]
    assert [e.field for e in bad_size.value.errors] == ["page_size"]
    assert [e.field for e in bad_token.value.errors] == ["cursor"]
    with pytest.raises(Unauthenticated):
        await call(stub.GetStockFigures, stock_reports_pb2.GetStockFiguresRequest())


@pytest.mark.service("reporting")
async def test_a_step_announced_before_steps_carried_the_record_is_not_read(
    runtime: Runtime,
) -> None:
    old = step("SH", "SH-001", "o1", 3, "closed", [])
    old.ClearField("received_at")
    await handle(
        runtime,
        parts_changed("SH", "SH-001", "o1", "2026-11-02", "issue", [("L1", "P1", 1, 0, 200)]),
        old,
    )
    found, _ = await stock.list_record_mismatches(runtime.uow, HQ, "", "", 0, "")
    assert found == []  # the record is unknown, not empty
    await handle(runtime, step("SH", "SH-001", "o1", 4, "closed", []))
    [mismatch] = (await stock.list_record_mismatches(runtime.uow, HQ, "", "", 0, ""))[0]
    assert (mismatch.kind, mismatch.row.order_number) == ("issued_without_line", "No1")


@pytest.mark.service("reporting")
async def test_a_part_dropped_from_the_record_is_no_longer_on_it(runtime: Runtime) -> None:
    await handle(
        runtime,
        step("SH", "SH-001", "o2", 1, "diagnosed", [("L1", "P1", 1), ("L2", "P9", 1)]),
        parts_changed("SH", "SH-001", "o2", "2026-11-02", "issue", [("L2", "P9", 1, 0, 50)]),
        step("SH", "SH-001", "o2", 2, "in_repair", [("L1", "P1", 1)]),
        step("SH", "SH-001", "o2", 3, "in_repair", [("L1", "P1", 1)]),  # the record unchanged
    )
    [mismatch] = (await stock.list_record_mismatches(runtime.uow, HQ, "", "", 0, ""))[0]
    assert (mismatch.row.part_number, mismatch.kind) == ("P9", "issued_without_line")


@pytest.mark.service("reporting")
async def test_concurrent_consumers_apply_one_parts_movements_one_at_a_time(
    runtime: Runtime,
) -> None:
    """Two replicas each with a batch holding a movement of the same part: the second waits
    for the first (the position's row lock on PostgreSQL, the write lock on SQLite), so it
    sees the level the first left and the value is counted once."""
    first = moved("SH", "SH-001", "W-SH-001", "P1", "2026-11-01", "receipt", 5, 100, 5)
    second = moved("SH", "SH-001", "W-SH-001", "P1", "2026-11-02", "receipt", 3, 100, 8)
    order = [
        parts_changed("SH", "SH-001", "o1", "2026-11-02", "issue", [("L1", "P1", n, 0, 100)])
        for n in (1, 2)
    ]
    await asyncio.gather(handle(runtime, first, order[0]), handle(runtime, second, order[1]))
    figures = await stock.get_stock_figures(runtime.uow, HQ, "", "", "2026-11-02", "2026-11-02")
    assert figures.total.inventory_value_fen == 800
    assert (figures.total.parts_cost_fen, figures.total.orders_with_issues) == (200, 1)


@pytest.mark.service("reporting")
async def test_an_event_that_cannot_be_placed_changes_nothing(runtime: Runtime) -> None:
    negative = moved("SH", "SH-001", "W-SH-001", "P1", "2026-11-01", "adjustment", -9, 100, -1)
    no_branch = moved("", "", "W-SH", "P1", "2026-11-01", "receipt", 1, 100, 1)
    for event in (negative, no_branch):
        with pytest.raises(UnprocessableEvent):
            await handle(runtime, event)
    figures = await stock.get_stock_figures(runtime.uow, HQ, "", "", "2026-11-01", "2026-11-01")
    assert figures.by_store == ()
