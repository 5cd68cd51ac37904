"""Exports: the CSV and XLSX writers (escaping, BOM, round trips, formats, bounded memory, the
first bytes before the last row), and the download endpoints in the caller's scope."""

from __future__ import annotations

import asyncio
import csv
import io
import tracemalloc
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import openpyxl
import pytest
from fastapi import FastAPI

from aftersales.customers.v1 import customers_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2_grpc
from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from aftersales.reporting.v1 import reporting_pb2_grpc
from servicekit.grpc_server import SERVING, new_server
from servicekit.testing import DatabaseTarget
from servicekit.timeutil import to_timestamp
from services.gateway import exports
from services.gateway.app import create_app
from services.gateway.exports import Column, Kind, csv_chunks, xlsx_chunks
from services.gateway.tests.fakes import (
    RECEIVED_AT,
    FakeCustomers,
    FakeInventory,
    FakeOrders,
    FakeReporting,
    Seen,
)
from services.gateway.tests.helpers import auth_headers, make_settings

COLUMNS = [
    Column("number", "工单号"),
    Column("count", "数量", Kind.INTEGER),
    Column("amount", "金额(元)", Kind.MONEY_FEN),
    Column("day", "承诺日期", Kind.DATE),
    Column("at", "接机时间", Kind.DATETIME),
    Column("share", "占比", Kind.PERCENT),
]
AT = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
ROWS: list[dict[str, Any]] = [
    {
        "number": "SH-001-000001 张三",
        "count": 3,
        "amount": 12345,
        "day": date(2026, 3, 2),
        "at": AT,
        "share": 0.125,
    },
    {"number": "=cmd|' /C calc'!A0", "count": -2, "amount": -5, "day": "2026-03-03", "at": None},
    {"number": "<a&b> _x0041_ \x01", "count": 0, "amount": 0, "day": None, "at": AT, "share": 1},
]


async def from_list(rows: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield row


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def test_escape_rules() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert exports.escape_formula(text) == "'" + text
    for text in ("张三", "1-2", "a=b", "", " =x"):
        assert exports.escape_formula(text) == text
    # Only text is escaped: a negative number in a numeric column stays a number.
    assert exports.csv_cell(Column("n", "数", Kind.INTEGER), -3) == "-3"
    assert exports.csv_cell(Column("m", "额", Kind.MONEY_FEN), -5) == "-0.05"
    assert exports.csv_cell(Column("t", "文"), "-3") == "'-3"
    assert exports.yuan(123456) == "1234.56"
    assert exports.display_width("门店A") == 5
    with pytest.raises(ValueError):
        exports.csv_cell(Column("a", "时", Kind.DATETIME), datetime(2026, 3, 1))


async def test_csv_bom_and_round_trip() -> None:
    data = await collect(csv_chunks(COLUMNS, from_list(ROWS)))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["工单号", "数量", "金额(元)", "承诺日期", "接机时间", "占比"],
        ["SH-001-000001 张三", "3", "123.45", "2026-03-02", "2026-03-01 10:30:00", "12.50%"],
        ["'=cmd|' /C calc'!A0", "-2", "-0.05", "2026-03-03", "", ""],
        ["<a&b> _x0041_ \x01", "0", "0.00", "", "2026-03-01 10:30:00", "100.00%"],
    ]


async def test_csv_title_row_leaves_before_any_row() -> None:
    chunks = aiter(csv_chunks(COLUMNS, from_list(ROWS)))
    first = await anext(chunks)
    assert first.decode("utf-8-sig") == "工单号,数量,金额(元),承诺日期,接机时间,占比\r\n"


async def test_xlsx_opens_with_openpyxl() -> None:
    data = await collect(xlsx_chunks(COLUMNS, from_list(ROWS), "维修工单"))
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook.active
    assert sheet is not None
    assert sheet.title == "维修工单"
    assert sheet.freeze_panes == "A2"
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values == [
        ["工单号", "数量", "金额(元)", "承诺日期", "接机时间", "占比"],
        [
            "SH-001-000001 张三",
            3,
            123.45,
            datetime(2026, 3, 2),
            datetime(2026, 3, 1, 10, 30),
            0.125,
        ],
        ["=cmd|' /C calc'!A0", -2, -0.05, datetime(2026, 3, 3), None, None],
        # A control character XML cannot carry is written _xHHHH_, and text looking like such an
        # escape is escaped itself, as Excel writes them (Excel reads them back; openpyxl does not).
        ["<a&b> _x005F_x0041_ _x0001_", 0, 0, None, datetime(2026, 3, 1, 10, 30), 1],
    ]
    # Formulas off: the text is a string cell, whatever it starts with.
    assert sheet["A3"].data_type == "s"
    assert [cell.number_format for cell in sheet[2]] == [
        "@",
        "0",
        "0.00",
        "yyyy-mm-dd",
        "yyyy-mm-dd hh:mm:ss",
        "0.00%",
    ]
    assert all(cell.font.b for cell in sheet[1])
    # Fitted to the widest of the title and the first rows, a Chinese character as two.
    widths = {letter: dim.width for letter, dim in sheet.column_dimensions.items()}
    assert int(widths["A"]) == exports.display_width("SH-001-000001 张三") + 2
    assert int(widths["C"]) == exports.display_width("金额(元)") + 2
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.testzip() is None  # every member whole, its CRC right
        assert "<f>" not in package.read("xl/worksheets/sheet1.xml").decode()


async def test_xlsx_without_rows_holds_the_titles() -> None:
    data = await collect(xlsx_chunks(COLUMNS, from_list([]), "经营指标"))
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["工单号", "数量", "金额(元)", "承诺日期", "接机时间", "占比"]
    ]


async def test_xlsx_refuses_more_rows_than_a_sheet_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "EXCEL_MAX_ROWS", 3)
    with pytest.raises(exports.ExportTooLarge):
        await collect(xlsx_chunks(COLUMNS, from_list(ROWS), "维修工单"))


Writer = Callable[[list[Column], AsyncIterator[dict[str, Any]]], AsyncIterator[bytes]]
WRITERS: dict[str, Writer] = {
    "csv": lambda columns, rows: csv_chunks(columns, rows),
    "xlsx": lambda columns, rows: xlsx_chunks(columns, rows, "维修工单"),
}


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
async def test_first_chunk_leaves_before_the_last_row(file_format: str) -> None:
    """The source holds back its last row until the reader has had a first chunk: a writer
    that gathered the whole file first would wait forever (here: time out)."""
    first_chunk = asyncio.Event()
    produced = 0

    async def source() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        for index in range(exports.WIDTH_SAMPLE_ROWS + 50):
            produced += 1
            yield {**ROWS[0], "count": index}
        await asyncio.wait_for(first_chunk.wait(), timeout=30)
        produced += 1
        yield {**ROWS[0], "number": "last"}

    chunks = []
    async for chunk in WRITERS[file_format](COLUMNS, source()):
        if not chunks:
            assert produced <= exports.WIDTH_SAMPLE_ROWS + 50
            first_chunk.set()
        chunks.append(chunk)
    data = b"".join(chunks)
    if file_format == "csv":
        assert data.decode("utf-8-sig").splitlines()[-1].startswith("last,")
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        assert sheet is not None
        assert sheet.max_row == exports.WIDTH_SAMPLE_ROWS + 52
        assert sheet.cell(sheet.max_row, 1).value == "last"


MILLION = 1_000_000
# Generous: the writers hold a chunk (64 KiB), the width sample and the zip's bookkeeping; a
# writer holding the rows would need hundreds of MiB.
PEAK_BOUND = 16 * 1024 * 1024


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
async def test_a_million_rows_in_bounded_memory(file_format: str) -> None:
    """One text column (the escaped kind): tracing every allocation slows the writers tenfold,
    and what a writer holds grows with the width of a row, never with the number of rows."""

    async def source() -> AsyncIterator[dict[str, Any]]:
        row = {"number": "SH-001-000001 张三"}
        for _ in range(MILLION):
            yield row

    columns = COLUMNS[:1]
    size = 0
    tracemalloc.start()
    try:
        async for chunk in WRITERS[file_format](columns, source()):
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > MILLION * 4  # every row was written (xlsx is compressed)
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.1f} MiB"


# The endpoints, against fake services whose orders list pages with a real cursor.


class PagingOrders(FakeOrders):
    """The orders list as the orders service pages it: page_size at a time, an offset cursor."""

    # When set, a page after the first waits for it: the test sets it once a byte has left.
    gate: asyncio.Event | None = None

    async def ListRepairOrders(
        self, request: Any, context: Any
    ) -> orders_pb2.ListRepairOrdersResponse:
        auth = self.seen.note(request, context)
        if request.page_token and self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), timeout=30)
        found = [o for o in self.orders.values() if auth.covers(o.branch_id, o.store_id)]
        start = int(request.page_token or 0)
        end = start + request.page_size
        return orders_pb2.ListRepairOrdersResponse(
            orders=found[start:end], next_page_token=str(end) if end < len(found) else ""
        )


def order(index: int, branch: str, store: str) -> orders_pb2.RepairOrder:
    return orders_pb2.RepairOrder(
        id=f"ro-{store}-{index}",
        number=f"{store}-{index:06d}",
        status="received",
        service_type="repair",
        branch_id=branch,
        store_id=store,
        customer=orders_pb2.Customer(name="张三", phone="13812345678"),
        device=orders_pb2.Device(imei="490154203237518", brand="huawei", model="mate60"),
        fault=orders_pb2.Fault(description='=HYPERLINK("http://x")' if index == 0 else "碎屏"),
        quote=orders_pb2.Quote(total_fen=19900),
        promised_date="2026-03-05",
        received_at=to_timestamp(RECEIVED_AT),
    )


class Backend:
    def __init__(self, orders: PagingOrders, seen: Seen) -> None:
        self.orders = orders
        self.seen = seen


@pytest.fixture
async def backend() -> AsyncIterator[tuple[str, Backend]]:
    seen = Seen()
    server, health = new_server("fakes")
    orders = PagingOrders(seen)
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(orders, server)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(FakeInventory(seen), server)
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(FakeCustomers(seen), server)
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(FakeReporting(seen), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    yield f"127.0.0.1:{port}", Backend(orders, seen)
    await server.stop(0)


@pytest.fixture
async def app(db_target: DatabaseTarget, backend: tuple[str, Backend]) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(db_target, backend[0]))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def gateway(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http:
        yield http


def filename_of(reply: httpx.Response) -> str:
    disposition = reply.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    return unquote(disposition.split("filename*=UTF-8''")[1])


async def test_repair_orders_download_in_scope_page_by_page(
    gateway: httpx.AsyncClient, backend: tuple[str, Backend]
) -> None:
    fake = backend[1]
    for index in range(230):
        placed = order(index, "SH", "SH-001")
        fake.orders.orders[placed.id] = placed
    outside = order(0, "ZJ", "ZJ-001")
    fake.orders.orders[outside.id] = outside
    manager = await auth_headers(gateway, "sh.manager")
    params = {"received_from": "2026-03-01", "received_to": "2026-03-31", "status": "received"}

    reply = await gateway.get(
        "/api/v1/exports/repair-orders", params={**params, "format": "csv"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == exports.CSV_MEDIA_TYPE
    assert reply.headers["cache-control"] == "no-store"
    assert filename_of(reply) == "维修工单_2026-03-01_2026-03-31.csv"
    assert (
        'filename="repair-orders_2026-03-01_2026-03-31.csv"' in reply.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"), newline="")))
    assert len(rows) == 230
    assert {row["门店"] for row in rows} == {"SH-001"}
    assert rows[0]["故障描述"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["客户姓名"] == "张三"
    assert rows[0]["客户电话"] != "13812345678"  # masked: the manager holds no store
    assert (rows[0]["报价合计(元)"], rows[0]["接机时间"]) == ("199.00", "2026-03-01 10:30:00")
    sent = [r for r in fake.seen.requests if isinstance(r, orders_pb2.ListRepairOrdersRequest)]
    assert [r.page_token for r in sent] == ["", "100", "200"]
    assert {(r.page_size, r.branch_id, r.status, r.received_from) for r in sent} == {
        (100, "", "received", "2026-03-01")
    }
    assert {a.user_id for a in fake.seen.auth} == {fake.seen.auth[0].user_id}

    reply = await gateway.get(
        "/api/v1/exports/repair-orders", params={**params, "format": "xlsx"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == exports.XLSX_MEDIA_TYPE
    assert filename_of(reply) == "维修工单_2026-03-01_2026-03-31.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(reply.content)).active
    assert sheet is not None
    assert sheet.max_row == 231
    assert sheet["A1"].value == "工单号"
    assert sheet["A2"].value == "SH-001-000000"
    assert sheet["K2"].value == '=HYPERLINK("http://x")'
    assert sheet["K2"].data_type == "s"
    assert (sheet["M2"].value, sheet["M2"].number_format) == (199, "0.00")
    assert sheet["O2"].value == datetime(2026, 3, 1, 10, 30)


async def test_kpis_download(gateway: httpx.AsyncClient, backend: tuple[str, Backend]) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    params = {"store_id": "SH-001", "date_from": "2026-03-01", "date_to": "2026-03-31"}
    reply = await gateway.get(
        "/api/v1/exports/kpis", params={**params, "format": "csv"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    assert filename_of(reply) == "经营指标_2026-03-01_2026-03-31.csv"
    rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["维度", "分公司", "门店", "服务类型", "接单量", "起始日期", "截止日期"],
        ["门店", "SH", "SH-001", "", "3", "2026-03-01", "2026-03-31"],
        ["服务类型", "", "", "repair", "2", "2026-03-01", "2026-03-31"],
        ["服务类型", "", "", "swap", "1", "2026-03-01", "2026-03-31"],
    ]
    sent = backend[1].seen.requests[-1]
    assert (sent.branch_id, sent.store_id, sent.date_from) == ("", "SH-001", "2026-03-01")

    reply = await gateway.get(
        "/api/v1/exports/kpis", params={**params, "format": "xlsx"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    sheet = openpyxl.load_workbook(io.BytesIO(reply.content)).active
    assert sheet is not None
    assert sheet.title == "经营指标"
    assert [c.value for c in sheet[2]] == [
        "门店",
        "SH",
        "SH-001",
        None,
        3,
        datetime(2026, 3, 1),
        datetime(2026, 3, 31),
    ]


async def test_every_figure_downloads_per_unit_and_split_titled_as_the_contract_names_it(
    gateway: httpx.AsyncClient,
) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    params = {"branch_id": "SH", "date_from": "2026-03-01", "date_to": "2026-03-31"}
    reply = await gateway.get(
        "/api/v1/exports/kpi-figures", params={**params, "format": "csv"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    assert filename_of(reply) == "经营指标明细_2026-03-01_2026-03-31.csv"
    titles, *rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"), newline="")))
    assert titles[:7] == ["层级", "分公司", "门店", "服务类型", "品牌", "受理量", "结单量"]
    assert {"周转时间中位数", "按时完工率", "保外收入", "劳务费回款"} <= set(titles)
    table = [dict(zip(titles, row, strict=True)) for row in rows]
    assert [(r["层级"], r["门店"], r["品牌"]) for r in table] == [
        ("合计", "", ""),
        ("门店", "SH-001", ""),
        ("服务类型×品牌", "", "华为"),
    ]
    total, store, split = table
    assert (total["受理量"], total["周转时间中位数"], total["保外收入"]) == ("3", "26.2", "123.45")
    # A rate with nothing to divide by is empty, never 0 %.
    assert total["按时完工率"] == ""
    assert (store["有承诺日期完工量"], store["按时完工率"]) == ("2", "50.00%")
    assert (split["服务类型"], split["受理量"]) == ("repair", "2")

    reply = await gateway.get(
        "/api/v1/exports/kpi-figures", params={**params, "format": "xlsx"}, headers=manager
    )
    assert reply.status_code == 200, reply.text
    sheet = openpyxl.load_workbook(io.BytesIO(reply.content)).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    median = sheet.cell(row=2, column=header.index("周转时间中位数") + 1)
    rate = sheet.cell(row=3, column=header.index("按时完工率") + 1)
    assert (median.value, median.number_format) == (26.25, "0.0")
    assert (rate.value, rate.number_format) == (0.5, "0.00%")


async def test_export_refusals_are_problems(gateway: httpx.AsyncClient) -> None:
    manager = await auth_headers(gateway, "sh.manager")
    unknown = await gateway.get(
        "/api/v1/exports/salaries", params={"format": "csv"}, headers=manager
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["errors"][0]["field"] == "report"
    for params in ({"format": "pdf"}, {}):
        bad = await gateway.get("/api/v1/exports/kpis", params=params, headers=manager)
        assert bad.status_code == 422, params
        assert bad.json()["errors"][0]["field"] == "format"
    bad_day = await gateway.get(
        "/api/v1/exports/repair-orders",
        params={"format": "csv", "received_to": "2026-13-01"},
        headers=manager,
    )
    assert bad_day.status_code == 422
    assert bad_day.json()["errors"][0]["field"] == "received_to"
    for report, params in (
        ("kpis", {"branch_id": "ZJ"}),
        ("repair-orders", {"store_id": "ZJ-001"}),
    ):
        outside = await gateway.get(
            f"/api/v1/exports/{report}", params={**params, "format": "xlsx"}, headers=manager
        )
        assert outside.status_code == 404, report
        assert outside.headers["content-type"] == "application/problem+json"
    anonymous = await gateway.get("/api/v1/exports/kpis", params={"format": "csv"})
    assert anonymous.status_code == 401


async def test_repair_orders_export_takes_the_list_filters(gateway: httpx.AsyncClient) -> None:
    paths = (await gateway.get("/openapi.json")).json()["paths"]

    def names(path: str) -> set[str]:
        return {p["name"] for p in paths[path]["get"]["parameters"]}

    assert names("/api/v1/exports/repair-orders") == (
        names("/api/v1/repair-orders") - {"limit", "cursor"}
    ) | {"format"}
    assert names("/api/v1/exports/kpis") == names("/api/v1/reports/kpis") | {"format"}


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
async def test_download_starts_before_the_last_page(
    app: FastAPI, gateway: httpx.AsyncClient, backend: tuple[str, Backend], file_format: str
) -> None:
    """Through the whole gateway (its middlewares too): the orders service answers the second
    page only once the client has had a first chunk of the body. Anything on the way holding
    the body back would leave the page waiting (here: failing on the fake's timeout)."""
    fake = backend[1]
    for index in range(150):
        placed = order(index, "SH", "SH-001")
        fake.orders.orders[placed.id] = placed
    fake.orders.gate = asyncio.Event()
    token = (await auth_headers(gateway, "sh.manager"))["Authorization"]
    messages: list[dict[str, Any]] = []

    requested, done = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the body is over
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            assert fake.orders.gate is not None
            fake.orders.gate.set()
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/exports/repair-orders",
        "raw_path": b"/api/v1/exports/repair-orders",
        "query_string": f"format={file_format}".encode(),
        "root_path": "",
        "headers": [(b"host", b"gw"), (b"authorization", token.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("gw", 80),
    }
    await app(scope, receive, send)
    assert messages[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in messages[1:])
    pages = [r for r in fake.seen.requests if isinstance(r, orders_pb2.ListRepairOrdersRequest)]
    assert [r.page_token for r in pages] == ["", "100"]
    if file_format == "csv":
        assert len(body.decode("utf-8-sig").splitlines()) == 151
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        assert sheet is not None
        assert sheet.max_row == 151
