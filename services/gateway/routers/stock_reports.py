"""Stock and parts figures, and the service records vs parts consumption reconciliation
(维修记录与用料不符), for the caller's level, from the reporting service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.reporting.v1 import stock_reports_pb2
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_rules
from services.gateway import schemas_stock_reports as stock_schemas
from services.gateway.deps import Auth, Gw
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["reports"], route_class=DocumentedRoute)

Unit = Annotated[str | None, Query(max_length=50)]
Day = schemas_rules.DayQuery
PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Problem},
    422: {"model": schemas.Problem},
}


def totals_json(t: stock_reports_pb2.StockTotals) -> dict[str, Any]:
    return {
        "branch_id": or_none(t.branch_id),
        "store_id": t.store_id if t.branch_id else None,
        "inventory_value_fen": t.inventory_value_fen,
        "average_inventory_value_fen": t.average_inventory_value_fen,
        "issued_cost_fen": t.issued_cost_fen,
        "turnover_days": t.turnover_days if t.HasField("turnover_days") else None,
        "slow_moving_value_fen": t.slow_moving_value_fen,
        "parts_cost_fen": t.parts_cost_fen,
        "orders_with_issues": t.orders_with_issues,
        "parts_cost_per_order_fen": (
            t.parts_cost_per_order_fen if t.HasField("parts_cost_per_order_fen") else None
        ),
    }


@router.get(
    "/reports/stock",
    response_model=stock_schemas.StockFigures,
    responses=PROBLEMS,
    summary="Inventory value, turnover, slow-moving stock and parts cost per order",
)
async def get_stock_figures(
    auth: Auth,
    gw: Gw,
    branch_id: Unit = None,
    store_id: Unit = None,
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = stock_reports_pb2.GetStockFiguresRequest(
        branch_id=branch,
        store_id=store,
        date_from=schemas.check_day("date_from", date_from),
        date_to=schemas.check_day("date_to", date_to),
    )
    figures = await call(gw.clients.stock_reports.GetStockFigures, request)
    total = totals_json(figures.total)
    total["branch_id"], total["store_id"] = or_none(figures.branch_id), or_none(figures.store_id)
    return json_response(
        {
            "branch_id": or_none(figures.branch_id),
            "store_id": or_none(figures.store_id),
            "date_from": figures.date_from,
            "date_to": figures.date_to,
            "total": total,
            "by_store": [totals_json(t) for t in figures.by_store],
            "waiting_parts": [
                {"part_number": w.part_number, "orders": w.orders, "quantity": w.quantity}
                for w in figures.waiting_parts
            ],
        }
    )


@router.get(
    "/reports/record-mismatches",
    response_model=stock_schemas.RecordMismatchPage,
    responses=PROBLEMS,
    summary="Service records vs parts consumption (维修记录与用料不符), by order and part",
)
async def list_record_mismatches(
    auth: Auth,
    gw: Gw,
    branch_id: Unit = None,
    store_id: Unit = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = stock_reports_pb2.ListRecordMismatchesRequest(
        branch_id=branch, store_id=store, page_size=limit, page_token=cursor or ""
    )
    reply = await call(gw.clients.stock_reports.ListRecordMismatches, request)
    items = [
        {
            "order_id": m.order_id,
            "order_number": or_none(m.order_number),
            "part_number": m.part_number,
            "branch_id": m.branch_id,
            "store_id": m.store_id,
            "kind": m.kind,
            "record_quantity": m.record_quantity,
            "issued_quantity": m.issued_quantity,
        }
        for m in reply.mismatches
    ]
    return json_response(page(items, reply.next_page_token))
