"""GET /api/v1/reports/stock and /api/v1/reports/record-mismatches: the caller's scope checked
against the org tree (outside it: 404), days validated, the reporting service's figures shown
with null for figures it leaves undefined, and the definitions as OpenAPI descriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aftersales.customers.v1 import customers_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2_grpc
from aftersales.orders.v1 import orders_pb2_grpc
from aftersales.reporting.v1 import reporting_pb2_grpc, stock_reports_pb2, stock_reports_pb2_grpc
from servicekit.grpc_server import SERVING, new_server
from services.gateway.tests.fakes import (
    FakeCustomers,
    FakeInventory,
    FakeOrders,
    FakeReporting,
    FakeServices,
    Seen,
)
from services.gateway.tests.helpers import auth_headers


class FakeStockReports(stock_reports_pb2_grpc.StockReportsServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetStockFigures(self, request: Any, context: Any) -> stock_reports_pb2.StockFigures:
        auth = self.seen.note(request, context)
        branch, store = auth.narrow(request.branch_id or None, request.store_id or None)
        total = stock_reports_pb2.StockTotals(
            inventory_value_fen=4880,
            average_inventory_value_fen=3380,
            issued_cost_fen=100,
            turnover_days=135.2,
            slow_moving_value_fen=1500,
            parts_cost_fen=500,
            orders_with_issues=2,
            parts_cost_per_order_fen=250,
        )
        quiet = stock_reports_pb2.StockTotals(
            branch_id="SH", store_id="", inventory_value_fen=480, average_inventory_value_fen=480
        )
        return stock_reports_pb2.StockFigures(
            branch_id=branch or "",
            store_id=store or "",
            date_from=request.date_from,
            date_to=request.date_to,
            total=total,
            by_store=[quiet],
            waiting_parts=[stock_reports_pb2.WaitingPart(part_number="P1", orders=1, quantity=2)],
        )

    async def ListRecordMismatches(
        self, request: Any, context: Any
    ) -> stock_reports_pb2.RecordMismatches:
        self.seen.note(request, context)
        return stock_reports_pb2.RecordMismatches(
            mismatches=[
                stock_reports_pb2.RecordMismatch(
                    order_id="o1",
                    part_number="P5",
                    branch_id="SH",
                    store_id="SH-001",
                    kind="issued_without_line",
                    record_quantity=0,
                    issued_quantity=1,
                )
            ],
            next_page_token="next",
        )


@pytest.fixture
async def fakes() -> AsyncIterator[FakeServices]:
    """The usual fakes, and the reporting service's StockReportsService beside them."""
    seen = Seen()
    server, health = new_server("fakes")
    orders = FakeOrders(seen)
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(orders, server)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(FakeInventory(seen), server)
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(FakeCustomers(seen), server)
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(FakeReporting(seen), server)
    stock_reports_pb2_grpc.add_StockReportsServiceServicer_to_server(FakeStockReports(seen), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    yield FakeServices(f"127.0.0.1:{port}", seen, orders, server)
    await server.stop(0)


async def test_stock_figures_in_scope(client: httpx.AsyncClient, fakes: FakeServices) -> None:
    manager = await auth_headers(client, "sh.manager")
    reply = await client.get(
        "/api/v1/reports/stock",
        params={"store_id": "SH-001", "date_from": "2026-11-01", "date_to": "2026-11-04"},
        headers=manager,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["branch_id"], body["store_id"], body["date_from"]) == (
        "SH",
        "SH-001",
        "2026-11-01",
    )
    assert body["total"] == {
        "branch_id": "SH",
        "store_id": "SH-001",
        "inventory_value_fen": 4880,
        "average_inventory_value_fen": 3380,
        "issued_cost_fen": 100,
        "turnover_days": 135.2,
        "slow_moving_value_fen": 1500,
        "parts_cost_fen": 500,
        "orders_with_issues": 2,
        "parts_cost_per_order_fen": 250,
    }
    # A branch's central warehouse is its store "", and undefined figures are null.
    [central] = body["by_store"]
    assert (central["store_id"], central["turnover_days"]) == ("", None)
    assert central["parts_cost_per_order_fen"] is None
    assert body["waiting_parts"] == [{"part_number": "P1", "orders": 1, "quantity": 2}]
    assert fakes.seen.requests[-1].store_id == "SH-001"

    chain = await client.get(
        "/api/v1/reports/stock", headers=await auth_headers(client, "hq.analyst")
    )
    assert chain.json()["branch_id"] is None
    bad = await client.get(
        "/api/v1/reports/stock", params={"date_to": "4/11/2026"}, headers=manager
    )
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "date_to", "reason": "must be a date YYYY-MM-DD"}]
    for params in (
        {"branch_id": "ZJ"},
        {"store_id": "ZJ-001"},
        {"branch_id": "SH", "store_id": "ZJ-001"},
    ):
        outside = await client.get("/api/v1/reports/stock", params=params, headers=manager)
        assert outside.status_code == 404, params


async def test_record_mismatches_paged_in_scope(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    manager = await auth_headers(client, "sh.manager")
    reply = await client.get(
        "/api/v1/reports/record-mismatches",
        params={"limit": 10, "cursor": "abc"},
        headers=manager,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "items": [
            {
                "order_id": "o1",
                "order_number": None,
                "part_number": "P5",
                "branch_id": "SH",
                "store_id": "SH-001",
                "kind": "issued_without_line",
                "record_quantity": 0,
                "issued_quantity": 1,
            }
        ],
        "next_cursor": "next",
    }
    sent = fakes.seen.requests[-1]
    assert (sent.page_size, sent.page_token, sent.branch_id) == (10, "abc", "")
    outside = await client.get(
        "/api/v1/reports/record-mismatches", params={"store_id": "ZJ-001"}, headers=manager
    )
    assert outside.status_code == 404
    too_many = await client.get(
        "/api/v1/reports/record-mismatches", params={"limit": 500}, headers=manager
    )
    assert too_many.status_code == 422


async def test_the_figures_definitions_are_their_openapi_descriptions(
    client: httpx.AsyncClient,
) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    turnover = schemas["StockTotals"]["properties"]["turnover_days"]
    assert turnover["title"] == "库存周转天数"
    assert turnover["description"].startswith("Average inventory value ÷ (issued cost")
    kind = schemas["RecordMismatch"]["properties"]["kind"]
    assert kind["title"] == "维修记录与用料不符"
    assert "issued_without_line" in kind["description"]
