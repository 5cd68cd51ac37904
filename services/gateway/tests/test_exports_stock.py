"""Exports of the parts side and of the drill-down: the stock figures, the record mismatches
and the orders behind a figure, in the caller's scope, as CSV and XLSX with Chinese titles,
the paged ones page by page."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import openpyxl
import pytest
from fastapi import FastAPI

from aftersales.customers.v1 import customers_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2_grpc
from aftersales.orders.v1 import orders_pb2_grpc
from aftersales.reporting.v1 import (
    reporting_pb2,
    reporting_pb2_grpc,
    stock_reports_pb2,
    stock_reports_pb2_grpc,
)
from servicekit.errors import invalid
from servicekit.grpc_server import SERVING, new_server
from servicekit.testing import DatabaseTarget
from servicekit.timeutil import to_timestamp
from services.gateway.app import create_app
from services.gateway.tests.fakes import (
    FakeCustomers,
    FakeInventory,
    FakeOrders,
    FakeReporting,
    Seen,
)
from services.gateway.tests.helpers import auth_headers, make_settings

RECEIVED = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
FIGURE_ORDERS = 450  # three pages of the reporting service's largest
MISMATCHES = 230


class PagingReporting(FakeReporting):
    """The orders behind a figure, paged by offset tokens."""

    async def ListFigureOrders(self, request: Any, context: Any) -> reporting_pb2.FigureOrders:
        auth = self.seen.note(request, context)
        if request.figure not in ("received", "closed"):
            raise invalid("figure", "must be one of received, closed")
        branch, store = auth.narrow(request.branch_id or None, request.store_id or None)
        start = int(request.page_token or 0)
        end = min(start + request.page_size, FIGURE_ORDERS)
        orders = [
            reporting_pb2.FigureOrder(
                order_id=f"o{index:04d}",
                number="=cmd|' /C calc'!A0" if index == 0 else f"SH-001-{index:06d}",
                branch_id=branch or "SH",
                store_id=store or "SH-001",
                service_type="repair",
                brand="华为",
                warranty_status="in_warranty",
                status="closed",
                received_at=to_timestamp(RECEIVED),
                promised_date="2026-03-05",
                satisfaction=5 if index % 2 else 0,
            )
            for index in range(start, end)
        ]
        return reporting_pb2.FigureOrders(
            orders=orders, next_page_token=str(end) if end < FIGURE_ORDERS else ""
        )


class FakeStockReports(stock_reports_pb2_grpc.StockReportsServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetStockFigures(self, request: Any, context: Any) -> stock_reports_pb2.StockFigures:
        auth = self.seen.note(request, context)
        branch, store = auth.narrow(request.branch_id or None, request.store_id or None)
        return stock_reports_pb2.StockFigures(
            branch_id=branch or "",
            store_id=store or "",
            date_from=request.date_from,
            date_to=request.date_to,
            total=stock_reports_pb2.StockTotals(
                inventory_value_fen=488000,
                average_inventory_value_fen=338050,
                issued_cost_fen=-100,
                turnover_days=135.2,
                slow_moving_value_fen=1500,
                parts_cost_fen=500,
                orders_with_issues=2,
                parts_cost_per_order_fen=250,
            ),
            by_store=[
                stock_reports_pb2.StockTotals(branch_id="SH", store_id="", inventory_value_fen=480),
                stock_reports_pb2.StockTotals(
                    branch_id="SH", store_id="SH-001", inventory_value_fen=487520
                ),
            ],
            waiting_parts=[stock_reports_pb2.WaitingPart(part_number="P1", orders=1, quantity=2)],
        )

    async def ListRecordMismatches(
        self, request: Any, context: Any
    ) -> stock_reports_pb2.RecordMismatches:
        auth = self.seen.note(request, context)
        branch, store = auth.narrow(request.branch_id or None, request.store_id or None)
        start = int(request.page_token or 0)
        end = min(start + request.page_size, MISMATCHES)
        # The service's first page may hold nothing but still lead on: the export reads on.
        shown = range(start, end) if start else range(0)
        return stock_reports_pb2.RecordMismatches(
            mismatches=[
                stock_reports_pb2.RecordMismatch(
                    order_id=f"o{index:04d}",
                    order_number=f"SH-001-{index:06d}",
                    part_number="屏幕-P5",
                    branch_id=branch or "SH",
                    store_id=store or "SH-001",
                    kind="quantity_differs",
                    record_quantity=2,
                    issued_quantity=1,
                )
                for index in shown
            ],
            next_page_token=str(end) if end < MISMATCHES else "",
        )


@pytest.fixture
async def backend() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    server, health = new_server("fakes")
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(FakeOrders(seen), server)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(FakeInventory(seen), server)
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(FakeCustomers(seen), server)
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(PagingReporting(seen), server)
    stock_reports_pb2_grpc.add_StockReportsServiceServicer_to_server(FakeStockReports(seen), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    yield f"127.0.0.1:{port}", seen
    await server.stop(0)


@pytest.fixture
async def app(db_target: DatabaseTarget, backend: tuple[str, Seen]) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(db_target, backend[0]))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def gateway(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http:
        yield http


def filename_of(reply: httpx.Response) -> str:
    return unquote(reply.headers["content-disposition"].split("filename*=UTF-8''")[1])


def csv_table(reply: httpx.Response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"), newline="")))


async def test_stock_figures_download_per_store_titled_as_the_contract_names_them(
    gateway: httpx.AsyncClient, backend: tuple[str, Seen]
) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    params = {"store_id": "SH-001", "date_from": "2026-03-01", "date_to": "2026-03-31"}
    reply = await gateway.get(
        "/api/v1/exports/stock-figures", params={**params, "format": "csv"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    assert filename_of(reply) == "库存与用料指标_2026-03-01_2026-03-31.csv"
    table = csv_table(reply)
    assert [(r["层级"], r["门店"], r["配件编码"]) for r in table] == [
        ("合计", "SH-001", ""),
        ("分公司中心仓", "", ""),
        ("门店", "SH-001", ""),
        ("待料配件", "SH-001", "P1"),
    ]
    total, central, _, waiting = table
    assert (total["库存金额"], total["库存周转天数"], total["单均用料成本"]) == (
        "4880.00",
        "135.2",
        "2.50",
    )
    # A negative amount stays a number; a figure with nothing to divide by is empty, never 0.
    assert total["领用成本"] == "-1.00"
    assert (central["库存周转天数"], central["单均用料成本"]) == ("", "")
    assert (waiting["待料工单数"], waiting["缺料数量"]) == ("1", "2")
    sent = backend[1].requests[-1]
    assert (sent.branch_id, sent.store_id, sent.date_from) == ("", "SH-001", "2026-03-01")

    reply = await gateway.get(
        "/api/v1/exports/stock-figures", params={**params, "format": "xlsx"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    sheet = openpyxl.load_workbook(io.BytesIO(reply.content)).active
    assert sheet is not None
    assert sheet.title == "库存与用料指标"
    header = [c.value for c in sheet[1]]
    value = sheet.cell(row=2, column=header.index("库存金额") + 1)
    turnover = sheet.cell(row=2, column=header.index("库存周转天数") + 1)
    assert (value.value, value.number_format) == (4880, "0.00")
    assert (turnover.value, turnover.number_format) == (135.2, "0.0")

    outside = await gateway.get(
        "/api/v1/exports/stock-figures",
        params={"branch_id": "ZJ", "format": "csv"},
        headers=manager,
    )
    assert outside.status_code == 404


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
async def test_record_mismatches_download_every_page_in_scope(
    gateway: httpx.AsyncClient, backend: tuple[str, Seen], file_format: str
) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    reply = await gateway.get(
        "/api/v1/exports/record-mismatches",
        params={"store_id": "SH-001", "format": file_format},
        headers=manager,
    )
    assert reply.status_code == 200, reply.text
    assert filename_of(reply).startswith("维修记录与用料不符_")
    if file_format == "csv":
        table = csv_table(reply)
        first = table[0]
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(reply.content)).active
        assert sheet is not None
        rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
        table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
        first = {key: str(value) for key, value in table[0].items()}
    # The first page held no mismatch; the export read on to the end.
    assert len(table) == MISMATCHES - 200
    assert (first["工单号"], first["配件编码"], first["维修记录与用料不符"]) == (
        "SH-001-000200",
        "屏幕-P5",
        "数量不符",
    )
    assert (first["维修记录数量"], first["净领用数量"]) == ("2", "1")
    sent = [
        r
        for r in backend[1].requests
        if isinstance(r, stock_reports_pb2.ListRecordMismatchesRequest)
    ]
    assert [(r.page_token, r.page_size, r.store_id) for r in sent] == [
        ("", 200, "SH-001"),
        ("200", 200, "SH-001"),
    ]
    outside = await gateway.get(
        "/api/v1/exports/record-mismatches",
        params={"store_id": "ZJ-001", "format": file_format},
        headers=manager,
    )
    assert outside.status_code == 404


async def test_the_orders_behind_a_figure_download_page_by_page(
    gateway: httpx.AsyncClient, backend: tuple[str, Seen]
) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    params = {"figure": "closed", "branch_id": "SH", "date_from": "2026-03-01"}
    reply = await gateway.get(
        "/api/v1/exports/kpi-orders", params={**params, "format": "csv"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    assert filename_of(reply).startswith("指标明细工单_2026-03-01_")
    table = csv_table(reply)
    assert len(table) == FIGURE_ORDERS
    first, second = table[0], table[1]
    assert first["工单号"] == "'=cmd|' /C calc'!A0"
    assert (second["品牌"], second["接机时间"], second["承诺取机日期"]) == (
        "华为",
        "2026-03-02 09:00:00",
        "2026-03-05",
    )
    assert (first["满意度"], second["满意度"], first["完工时间"]) == ("", "5", "")
    sent = [r for r in backend[1].requests if isinstance(r, reporting_pb2.ListFigureOrdersRequest)]
    assert [r.page_token for r in sent] == ["", "200", "400"]
    assert {(r.figure, r.branch_id, r.page_size) for r in sent} == {("closed", "SH", 200)}

    reply = await gateway.get(
        "/api/v1/exports/kpi-orders", params={**params, "format": "xlsx"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    sheet = openpyxl.load_workbook(io.BytesIO(reply.content)).active
    assert sheet is not None
    assert sheet.max_row == FIGURE_ORDERS + 1
    assert (sheet["A2"].value, sheet["A2"].data_type) == ("=cmd|' /C calc'!A0", "s")
    assert sheet["I3"].value == datetime(2026, 3, 2, 9, 0)


async def test_drill_down_export_refusals_are_problems(gateway: httpx.AsyncClient) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    unknown = await gateway.get(
        "/api/v1/exports/kpi-orders",
        params={"figure": "salaries", "format": "csv"},
        headers=manager,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "figure"
    missing = await gateway.get(
        "/api/v1/exports/kpi-orders", params={"format": "csv"}, headers=manager
    )
    assert missing.status_code == 422
    outside = await gateway.get(
        "/api/v1/exports/kpi-orders",
        params={"figure": "closed", "store_id": "ZJ-001", "format": "csv"},
        headers=manager,
    )
    assert outside.status_code == 404


async def test_the_exports_take_their_reports_filters(gateway: httpx.AsyncClient) -> None:
    paths = (await gateway.get("/openapi.json")).json()["paths"]

    def names(path: str) -> set[str]:
        return {p["name"] for p in paths[path]["get"]["parameters"]}

    assert names("/api/v1/exports/stock-figures") == names("/api/v1/reports/stock") | {"format"}
    assert names("/api/v1/exports/record-mismatches") == (
        names("/api/v1/reports/record-mismatches") - {"limit", "cursor"}
    ) | {"format"}
    assert names("/api/v1/exports/kpi-orders") == (
        names("/api/v1/reports/kpis/orders") - {"limit", "cursor"}
    ) | {"format"}
