"""Exports (报表导出): GET /api/v1/exports/{report}?format=csv|xlsx with the report's own filters,
answered as a streamed download in the caller's scope.

A report is one entry of REPORTS: its columns, a FastAPI dependency reading and checking its
filters (the same query parameters as the report's own endpoint), the async source of its rows
and the period its file is named after. Each entry gets a route of its own, so that its filters
are checked and documented like any endpoint's.

This module does not use `from __future__ import annotations`: the routes are made in a loop,
and FastAPI must see each route's own filter dependency, not a name it cannot resolve.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query
from google.protobuf.descriptor import FieldDescriptor
from starlette.responses import Response, StreamingResponse

from aftersales.orders.v1 import orders_pb2
from aftersales.reporting.v1 import reporting_pb2, stock_reports_pb2
from servicekit.auth import AuthContext, set_auth
from servicekit.errors import FieldError, NotFound
from servicekit.grpc_client import call
from servicekit.identifiers import normalise_digits
from servicekit.timeutil import shanghai_day, utc_now
from services.gateway import schemas, schemas_rules
from services.gateway.deps import Auth, Gateway, Gw
from services.gateway.exports import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    Column,
    Kind,
    Row,
    csv_chunks,
    xlsx_chunks,
)
from services.gateway.privacy import phone_for
from services.gateway.render import DocumentedRoute, moment
from services.gateway.routers.reports import Day, Figure, Unit

router = APIRouter(prefix="/api/v1", tags=["exports"], route_class=DocumentedRoute)

Format = Annotated[
    Literal["csv", "xlsx"],
    Query(description="csv (UTF-8 with BOM, formula-like text quoted) or xlsx (Excel workbook)"),
]
Filter = Annotated[str | None, Query(max_length=50)]
# The orders service's largest page: the fewest round trips for a long export.
ORDERS_PAGE_SIZE = 100
# The reporting service's largest page (record mismatches, the orders behind a figure).
REPORTING_PAGE_SIZE = 200

RowSource = Callable[[Gateway, AuthContext, Any], AsyncIterator[Row]]


@dataclass(frozen=True)
class Report:
    name: str  # in the path and the ASCII file name
    title: str  # Chinese: the sheet's name and the file's
    columns: tuple[Column, ...]
    filters: Callable[..., Any]  # a FastAPI dependency: the checked filters
    rows: RowSource
    period: Callable[[Any], tuple[str, str]]  # (from, to) of the filters, "" when open


# KPIs (经营指标): the rows of GET /api/v1/reports/kpis, by store and by service type.


@dataclass(frozen=True)
class KpiFilters:
    branch_id: str
    store_id: str
    date_from: str
    date_to: str


async def kpi_filters(
    auth: Auth,
    gw: Gw,
    branch_id: Unit = None,
    store_id: Unit = None,
    date_from: Day = None,
    date_to: Day = None,
) -> KpiFilters:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    return KpiFilters(
        branch,
        store,
        schemas.check_day("date_from", date_from),
        schemas.check_day("date_to", date_to),
    )


async def fetch_kpis(gw: Gateway, filters: KpiFilters) -> reporting_pb2.Kpis:
    request = reporting_pb2.GetKpisRequest(
        branch_id=filters.branch_id,
        store_id=filters.store_id,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )
    return await call(gw.clients.reporting.GetKpis, request)


async def kpi_rows(gw: Gateway, auth: AuthContext, filters: KpiFilters) -> AsyncIterator[Row]:
    kpis = await fetch_kpis(gw, filters)
    period = {"date_from": kpis.date_from, "date_to": kpis.date_to}
    for s in kpis.by_store:
        yield {
            "dimension": "门店",
            "branch_id": s.branch_id,
            "store_id": s.store_id,
            "orders_received": s.orders_received,
            **period,
        }
    for t in kpis.by_service_type:
        yield {
            "dimension": "服务类型",
            "service_type": t.service_type,
            "orders_received": t.orders_received,
            **period,
        }


KPI_COLUMNS = (
    Column("dimension", "维度"),
    Column("branch_id", "分公司"),
    Column("store_id", "门店"),
    Column("service_type", "服务类型"),
    Column("orders_received", "接单量", Kind.INTEGER),
    Column("date_from", "起始日期", Kind.DATE),
    Column("date_to", "截止日期", Kind.DATE),
)


# Every order figure (经营指标明细): the scope's total, each unit of the level below and each
# service type and brand, one row each, the figures titled as the contract names them.


def _figure_kind(field: FieldDescriptor) -> Kind:
    if field.name.endswith("_fen"):
        return Kind.MONEY_FEN
    if field.name.endswith("_rate"):
        return Kind.PERCENT
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return Kind.DECIMAL
    return Kind.INTEGER


_FIGURES = reporting_pb2.Figures.DESCRIPTOR.fields
FIGURE_COLUMNS = (
    Column("level", "层级"),
    Column("branch_id", "分公司"),
    Column("store_id", "门店"),
    Column("service_type", "服务类型"),
    Column("brand", "品牌"),
    *(
        Column(
            field.name,
            field.GetOptions().Extensions[reporting_pb2.kpi_title] or field.name,
            _figure_kind(field),
        )
        for field in _FIGURES
    ),
    Column("date_from", "起始日期", Kind.DATE),
    Column("date_to", "截止日期", Kind.DATE),
)


def _figures_row(figures: reporting_pb2.Figures) -> Row:
    """A figure the reply leaves unset (a rate with nothing to divide by) is an empty cell."""
    present = {field.name for field, _ in figures.ListFields()}
    return {
        field.name: getattr(figures, field.name)
        if field.name in present or not field.has_presence
        else None
        for field in _FIGURES
    }


async def kpi_figure_rows(
    gw: Gateway, auth: AuthContext, filters: KpiFilters
) -> AsyncIterator[Row]:
    kpis = await fetch_kpis(gw, filters)
    period = {"date_from": kpis.date_from, "date_to": kpis.date_to}
    scope = {"branch_id": kpis.branch_id, "store_id": kpis.store_id}
    yield {"level": "合计", **scope, **_figures_row(kpis.figures), **period}
    for unit in kpis.by_unit:
        yield {
            "level": "门店" if unit.store_id else "分公司",
            "branch_id": unit.branch_id,
            "store_id": unit.store_id,
            **_figures_row(unit.figures),
            **period,
        }
    for split in kpis.by_split:
        yield {
            "level": "服务类型×品牌",
            **scope,
            "service_type": split.service_type,
            "brand": split.brand,
            **_figures_row(split.figures),
            **period,
        }


# Work orders (维修工单): the orders list, page by page through the orders service's cursor.


async def repair_order_filters(
    auth: Auth,
    gw: Gw,
    status: schemas_rules.OrderStatus | None = None,
    service_type: schemas_rules.ServiceType | None = None,
    imei: Filter = None,
    phone: Filter = None,
    store_id: Filter = None,
    branch_id: Filter = None,
    received_from: schemas_rules.DayQuery = None,
    received_to: schemas_rules.DayQuery = None,
    swap_due_by: schemas_rules.DayQuery = None,
) -> orders_pb2.ListRepairOrdersRequest:
    """The filters of GET /api/v1/repair-orders, checked the same way."""
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    return orders_pb2.ListRepairOrdersRequest(
        page_size=ORDERS_PAGE_SIZE,
        branch_id=branch,
        store_id=store,
        status=status or "",
        service_type=service_type or "",
        imei=normalise_digits(imei or ""),
        phone=normalise_digits(phone or ""),
        received_from=schemas.check_day("received_from", received_from),
        received_to=schemas.check_day("received_to", received_to),
        swap_due_by=schemas.check_day("swap_due_by", swap_due_by),
    )


def repair_order_row(order: orders_pb2.RepairOrder, auth: AuthContext) -> Row:
    return {
        "number": order.number,
        "status": order.status,
        "service_type": order.service_type,
        "branch_id": order.branch_id,
        "store_id": order.store_id,
        "customer_name": order.customer.name,
        "customer_phone": phone_for(auth, order.store_id, order.customer.phone),
        "brand": order.device.brand,
        "model": order.device.model,
        "imei": order.device.imei,
        "fault": order.fault.description,
        "warranty_status": order.warranty.status,
        "quote_total_fen": order.quote.total_fen if order.HasField("quote") else None,
        "promised_date": order.promised_date,
        "received_at": moment(order.received_at),
        "closed_at": moment(order.closed_at),
        "repeat_repair": "是" if order.repeat_repair else "否",
        "qc_failures": order.qc_failures,
    }


async def repair_order_rows(
    gw: Gateway, auth: AuthContext, filters: orders_pb2.ListRepairOrdersRequest
) -> AsyncIterator[Row]:
    token = ""
    while True:
        # Later pages are fetched from the zip writer's tasks: the call names the caller itself
        # rather than count on the request's context reaching them.
        set_auth(auth)
        request = orders_pb2.ListRepairOrdersRequest()
        request.CopyFrom(filters)
        request.page_token = token
        reply = await call(gw.clients.orders.ListRepairOrders, request)
        for order in reply.orders:
            yield repair_order_row(order, auth)
        token = reply.next_page_token
        if not token or not reply.orders:
            return


REPAIR_ORDER_COLUMNS = (
    Column("number", "工单号"),
    Column("status", "状态"),
    Column("service_type", "服务类型"),
    Column("branch_id", "分公司"),
    Column("store_id", "门店"),
    Column("customer_name", "客户姓名"),
    Column("customer_phone", "客户电话"),
    Column("brand", "品牌"),
    Column("model", "型号"),
    Column("imei", "IMEI"),
    Column("fault", "故障描述"),
    Column("warranty_status", "保修状态"),
    Column("quote_total_fen", "报价合计(元)", Kind.MONEY_FEN),
    Column("promised_date", "承诺取机日期", Kind.DATE),
    Column("received_at", "接机时间", Kind.DATETIME),
    Column("closed_at", "结单时间", Kind.DATETIME),
    Column("repeat_repair", "返修"),
    Column("qc_failures", "质检不合格次数", Kind.INTEGER),
)


# The orders behind one figure (指标明细工单): the drill-down of GET /api/v1/reports/kpis/orders,
# page by page through the reporting service's cursor.


@dataclass(frozen=True)
class FigureOrderFilters:
    figure: str
    branch_id: str
    store_id: str
    date_from: str
    date_to: str


async def figure_order_filters(
    auth: Auth,
    gw: Gw,
    figure: Figure,
    branch_id: Unit = None,
    store_id: Unit = None,
    date_from: Day = None,
    date_to: Day = None,
) -> FigureOrderFilters:
    """The filters of GET /api/v1/reports/kpis/orders, checked the same way (the figure by the
    reporting service, on the first page)."""
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    return FigureOrderFilters(
        figure,
        branch,
        store,
        schemas.check_day("date_from", date_from),
        schemas.check_day("date_to", date_to),
    )


async def figure_order_rows(
    gw: Gateway, auth: AuthContext, filters: FigureOrderFilters
) -> AsyncIterator[Row]:
    token = ""
    while True:
        set_auth(auth)
        request = reporting_pb2.ListFigureOrdersRequest(
            branch_id=filters.branch_id,
            store_id=filters.store_id,
            date_from=filters.date_from,
            date_to=filters.date_to,
            figure=filters.figure,
            page_size=REPORTING_PAGE_SIZE,
            page_token=token,
        )
        reply = await call(gw.clients.reporting.ListFigureOrders, request)
        for order in reply.orders:
            yield {
                "number": order.number,
                "order_id": order.order_id,
                "branch_id": order.branch_id,
                "store_id": order.store_id,
                "service_type": order.service_type,
                "brand": order.brand,
                "warranty_status": order.warranty_status,
                "status": order.status,
                "received_at": moment(order.received_at),
                "ready_at": moment(order.ready_at),
                "closed_at": moment(order.closed_at),
                "promised_date": order.promised_date or None,
                "technician_id": order.technician_id,
                "satisfaction": order.satisfaction or None,
            }
        token = reply.next_page_token
        if not token or not reply.orders:
            return


FIGURE_ORDER_COLUMNS = (
    Column("number", "工单号"),
    Column("order_id", "工单ID"),
    Column("branch_id", "分公司"),
    Column("store_id", "门店"),
    Column("service_type", "服务类型"),
    Column("brand", "品牌"),
    Column("warranty_status", "保修状态"),
    Column("status", "状态"),
    Column("received_at", "接机时间", Kind.DATETIME),
    Column("ready_at", "完工时间", Kind.DATETIME),
    Column("closed_at", "结单时间", Kind.DATETIME),
    Column("promised_date", "承诺取机日期", Kind.DATE),
    Column("technician_id", "维修技师"),
    Column("satisfaction", "满意度", Kind.INTEGER),
)


# Stock figures (库存与用料指标): the scope's total and each store's (a branch's central
# warehouse is its store ""), then what the orders waiting for parts are short of.


def _stock_title(message: Any, name: str) -> str:
    options = message.DESCRIPTOR.fields_by_name[name].GetOptions()
    return str(options.Extensions[stock_reports_pb2.figure].title_zh)


_TOTALS = stock_reports_pb2.StockTotals
_STOCK_FIGURES = tuple(
    field.name for field in _TOTALS.DESCRIPTOR.fields if field.name not in ("branch_id", "store_id")
)
STOCK_COLUMNS = (
    Column("level", "层级"),
    Column("branch_id", "分公司"),
    Column("store_id", "门店"),
    *(
        Column(
            name,
            _stock_title(_TOTALS, name),
            Kind.MONEY_FEN
            if name.endswith("_fen")
            else Kind.DECIMAL
            if name == "turnover_days"
            else Kind.INTEGER,
        )
        for name in _STOCK_FIGURES
    ),
    Column("part_number", "配件编码"),
    Column("waiting_orders", _stock_title(stock_reports_pb2.WaitingPart, "orders"), Kind.INTEGER),
    Column("short_quantity", "缺料数量", Kind.INTEGER),
    Column("date_from", "起始日期", Kind.DATE),
    Column("date_to", "截止日期", Kind.DATE),
)


def _stock_totals_row(totals: stock_reports_pb2.StockTotals) -> Row:
    """A figure the reply leaves unset (nothing to divide by) is an empty cell."""
    present = {field.name for field, _ in totals.ListFields()}
    fields = _TOTALS.DESCRIPTOR.fields_by_name
    return {
        name: getattr(totals, name) if name in present or not fields[name].has_presence else None
        for name in _STOCK_FIGURES
    }


async def stock_figure_rows(
    gw: Gateway, auth: AuthContext, filters: KpiFilters
) -> AsyncIterator[Row]:
    request = stock_reports_pb2.GetStockFiguresRequest(
        branch_id=filters.branch_id,
        store_id=filters.store_id,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )
    figures = await call(gw.clients.stock_reports.GetStockFigures, request)
    period = {"date_from": figures.date_from, "date_to": figures.date_to}
    scope = {"branch_id": figures.branch_id, "store_id": figures.store_id}
    yield {"level": "合计", **scope, **_stock_totals_row(figures.total), **period}
    for unit in figures.by_store:
        yield {
            "level": "门店" if unit.store_id else "分公司中心仓",
            "branch_id": unit.branch_id,
            "store_id": unit.store_id,
            **_stock_totals_row(unit),
            **period,
        }
    for waiting in figures.waiting_parts:
        yield {
            "level": "待料配件",
            **scope,
            "part_number": waiting.part_number,
            "waiting_orders": waiting.orders,
            "short_quantity": waiting.quantity,
            **period,
        }


# Service records vs parts consumption (维修记录与用料不符), page by page.


@dataclass(frozen=True)
class UnitFilters:
    branch_id: str
    store_id: str


async def unit_filters(
    auth: Auth, gw: Gw, branch_id: Unit = None, store_id: Unit = None
) -> UnitFilters:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    return UnitFilters(branch, store)


MISMATCH_KINDS = {
    "issued_without_line": "有领料无记录",
    "line_without_issue": "有记录无领料",
    "quantity_differs": "数量不符",
}


async def record_mismatch_rows(
    gw: Gateway, auth: AuthContext, filters: UnitFilters
) -> AsyncIterator[Row]:
    token = ""
    while True:
        set_auth(auth)
        request = stock_reports_pb2.ListRecordMismatchesRequest(
            branch_id=filters.branch_id,
            store_id=filters.store_id,
            page_size=REPORTING_PAGE_SIZE,
            page_token=token,
        )
        reply = await call(gw.clients.stock_reports.ListRecordMismatches, request)
        for mismatch in reply.mismatches:
            yield {
                "order_number": mismatch.order_number,
                "order_id": mismatch.order_id,
                "part_number": mismatch.part_number,
                "branch_id": mismatch.branch_id,
                "store_id": mismatch.store_id,
                "kind": MISMATCH_KINDS.get(mismatch.kind, mismatch.kind),
                "record_quantity": mismatch.record_quantity,
                "issued_quantity": mismatch.issued_quantity,
            }
        token = reply.next_page_token
        # A page may hold no mismatch yet still have a next one (the service skips rows it
        # finds agreeing), so only the token ends the list.
        if not token:
            return


RECORD_MISMATCH_COLUMNS = (
    Column("order_number", "工单号"),
    Column("order_id", "工单ID"),
    Column("part_number", "配件编码"),
    Column("branch_id", "分公司"),
    Column("store_id", "门店"),
    Column("kind", _stock_title(stock_reports_pb2.RecordMismatch, "kind")),
    Column("record_quantity", "维修记录数量", Kind.INTEGER),
    Column("issued_quantity", "净领用数量", Kind.INTEGER),
)


REPORTS = {
    report.name: report
    for report in (
        Report(
            name="kpis",
            title="经营指标",
            columns=KPI_COLUMNS,
            filters=kpi_filters,
            rows=kpi_rows,
            period=lambda f: (f.date_from, f.date_to),
        ),
        Report(
            name="kpi-figures",
            title="经营指标明细",
            columns=FIGURE_COLUMNS,
            filters=kpi_filters,
            rows=kpi_figure_rows,
            period=lambda f: (f.date_from, f.date_to),
        ),
        Report(
            name="repair-orders",
            title="维修工单",
            columns=REPAIR_ORDER_COLUMNS,
            filters=repair_order_filters,
            rows=repair_order_rows,
            period=lambda f: (f.received_from, f.received_to),
        ),
        Report(
            name="kpi-orders",
            title="指标明细工单",
            columns=FIGURE_ORDER_COLUMNS,
            filters=figure_order_filters,
            rows=figure_order_rows,
            period=lambda f: (f.date_from, f.date_to),
        ),
        Report(
            name="stock-figures",
            title="库存与用料指标",
            columns=STOCK_COLUMNS,
            filters=kpi_filters,
            rows=stock_figure_rows,
            period=lambda f: (f.date_from, f.date_to),
        ),
        Report(
            name="record-mismatches",
            title="维修记录与用料不符",
            columns=RECORD_MISMATCH_COLUMNS,
            filters=unit_filters,
            rows=record_mismatch_rows,
            # The mismatches as they stand: the file is named after the day of the export.
            period=lambda f: (_today(), _today()),
        ),
    )
}


def _today() -> str:
    return shanghai_day(utc_now()).isoformat()


def content_disposition(report: Report, period: tuple[str, str], extension: str) -> str:
    """The file's name: the report and its period, an open end being the export's day. ASCII
    in filename for old clients, Chinese in RFC 5987's filename* for the others."""
    start = period[0] or "start"
    end = period[1] or _today()
    ascii_name = f"{report.name}_{start}_{end}.{extension}"
    name = f"{report.title}_{start}_{end}.{extension}"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


async def _with_first(first: Row | None, rest: AsyncIterator[Row]) -> AsyncIterator[Row]:
    if first is None:
        return
    yield first
    async for row in rest:
        yield row


async def download(
    report: Report, gw: Gateway, auth: AuthContext, filters: Any, file_format: str
) -> Response:
    rows = report.rows(gw, auth, filters)
    # The first page is read before the answer starts: a refusal (out of scope, a service
    # down) is still a problem answer, not a download cut short.
    first = await anext(rows, None)
    body = _with_first(first, rows)
    extension = "csv" if file_format == "csv" else "xlsx"
    chunks = (
        csv_chunks(report.columns, body)
        if file_format == "csv"
        else xlsx_chunks(report.columns, body, report.title)
    )
    return StreamingResponse(
        chunks,
        media_type=CSV_MEDIA_TYPE if file_format == "csv" else XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": content_disposition(report, report.period(filters), extension),
            # Customers' names and phones: not for a shared cache.
            "Cache-Control": "no-store",
        },
    )


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report as a file, streamed",
        "content": {CSV_MEDIA_TYPE: {}, XLSX_MEDIA_TYPE: {}},
    },
    404: {"model": schemas.Problem, "description": "a unit or store outside your scope"},
    422: {"model": schemas.Problem, "description": "invalid filters or format, by field"},
}


def _add_route(report: Report) -> None:
    async def export(
        auth: Auth,
        gw: Gw,
        format: Format,
        filters: Annotated[Any, Depends(report.filters)],
    ) -> Response:
        return await download(report, gw, auth, filters, format)

    router.add_api_route(
        f"/exports/{report.name}",
        export,
        methods=["GET"],
        name=f"export_{report.name.replace('-', '_')}",
        summary=f"Export {report.name} ({report.title}) as CSV or Excel",
        response_class=StreamingResponse,
        responses=RESPONSES,
    )


for _report in REPORTS.values():
    _add_route(_report)


@router.get(
    "/exports/{report}",
    responses={404: {"model": schemas.Problem, "description": "no such report"}},
    include_in_schema=False,
)
async def unknown_report(report: Annotated[str, Path(max_length=100)], auth: Auth) -> Response:
    raise NotFound(
        f"no report {report}",
        [FieldError("report", "unknown report; one of: " + ", ".join(sorted(REPORTS)))],
    )
