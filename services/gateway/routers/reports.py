"""The report centre (报表中心) for the caller's level (store, branch or chain), from the
reporting service: every order figure, and the orders behind one of them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.reporting.v1 import reporting_pb2
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_reports, schemas_rules
from services.gateway.deps import Auth, Gw
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, iso_utc, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["reports"], route_class=DocumentedRoute)

Unit = Annotated[str | None, Query(max_length=50)]
Day = schemas_rules.DayQuery
Figure = Annotated[schemas_rules.Figure, Query(description="the figure whose orders to list")]

_COUNTS = tuple(
    name for name, info in schemas_reports.Figures.model_fields.items() if info.annotation is int
)
_MEASURES = tuple(name for name in schemas_reports.Figures.model_fields if name not in _COUNTS)


def figures_json(figures: reporting_pb2.Figures) -> dict[str, Any]:
    body: dict[str, Any] = {name: getattr(figures, name) for name in _COUNTS}
    for name in _MEASURES:
        body[name] = _optional(figures, name)
    return body


def _optional(message: Any, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


def kpis_json(kpis: reporting_pb2.Kpis) -> dict[str, Any]:
    backlog = kpis.backlog
    return {
        "branch_id": or_none(kpis.branch_id),
        "store_id": or_none(kpis.store_id),
        "date_from": kpis.date_from,
        "date_to": kpis.date_to,
        "orders_received": kpis.orders_received,
        "by_store": [
            {"branch_id": s.branch_id, "store_id": s.store_id, "orders_received": s.orders_received}
            for s in kpis.by_store
        ],
        "by_service_type": [
            {"service_type": t.service_type, "orders_received": t.orders_received}
            for t in kpis.by_service_type
        ],
        "figures": figures_json(kpis.figures),
        "by_split": [
            {"service_type": s.service_type, "brand": s.brand, "figures": figures_json(s.figures)}
            for s in kpis.by_split
        ],
        "by_unit": [
            {
                "branch_id": u.branch_id,
                "store_id": or_none(u.store_id),
                "figures": figures_json(u.figures),
            }
            for u in kpis.by_unit
        ],
        "backlog": {
            "open": [{"age": b.age, "orders": b.orders} for b in backlog.open],
            "waiting_parts": [{"age": b.age, "orders": b.orders} for b in backlog.waiting_parts],
            "swap_limit_near": backlog.swap_limit_near,
            "swap_limit_passed": backlog.swap_limit_passed,
        },
        "technicians": [
            {
                "technician_id": t.technician_id,
                "branch_id": t.branch_id,
                "store_id": t.store_id,
                "completed": t.completed,
                "turnaround_mean_hours": _optional(t, "turnaround_mean_hours"),
                "came_back": t.came_back,
                "repeat_rate": _optional(t, "repeat_rate"),
                "average_satisfaction": _optional(t, "average_satisfaction"),
            }
            for t in kpis.technicians
        ],
    }


@router.get(
    "/reports/kpis",
    response_model=schemas_reports.Kpis,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def get_kpis(
    auth: Auth,
    gw: Gw,
    branch_id: Unit = None,
    store_id: Unit = None,
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    """Every order figure of the caller's unit (or a unit below it) over the period, split by
    service type and brand and broken down by the level below."""
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = reporting_pb2.GetKpisRequest(
        branch_id=branch,
        store_id=store,
        date_from=schemas.check_day("date_from", date_from),
        date_to=schemas.check_day("date_to", date_to),
    )
    kpis = await call(gw.clients.reporting.GetKpis, request)
    return json_response(kpis_json(kpis))


def figure_order_json(order: reporting_pb2.FigureOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "number": order.number,
        "branch_id": order.branch_id,
        "store_id": order.store_id,
        "service_type": order.service_type,
        "brand": order.brand,
        "warranty_status": order.warranty_status,
        "status": order.status,
        "received_at": iso_utc(order.received_at),
        "ready_at": iso_utc(order.ready_at),
        "closed_at": iso_utc(order.closed_at),
        "promised_date": or_none(order.promised_date),
        "technician_id": or_none(order.technician_id),
        "satisfaction": order.satisfaction or None,
    }


@router.get(
    "/reports/kpis/orders",
    response_model=schemas_reports.FigureOrderPage,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def list_figure_orders(
    auth: Auth,
    gw: Gw,
    figure: Figure,
    branch_id: Unit = None,
    store_id: Unit = None,
    date_from: Day = None,
    date_to: Day = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """The orders behind one figure (drill-down) of a branch or a store, a page at a time:
    by the time of the figure's event (intake, ready, closed...), then order id."""
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = reporting_pb2.ListFigureOrdersRequest(
        branch_id=branch,
        store_id=store,
        date_from=schemas.check_day("date_from", date_from),
        date_to=schemas.check_day("date_to", date_to),
        figure=figure,
        page_size=limit,
        page_token=cursor or "",
    )
    reply = await call(gw.clients.reporting.ListFigureOrders, request)
    return json_response(page([figure_order_json(o) for o in reply.orders], reply.next_page_token))
