"""Exports (报表导出): any report's rows as CSV or as an Excel workbook, written as a stream of
byte chunks so that a million rows never sit in memory and the first bytes leave at once.

A report is a list of columns (key, Chinese title, kind) and an async iterator of row dicts.

CSV: UTF-8 with a BOM (without it Excel reads the Chinese as GBK), written by the csv module.
Formula injection: a text cell whose first character is one of = + - @ tab or carriage return is
prefixed with a single quote, so that a spreadsheet shows the text instead of running it as a
formula ("=cmd|..." becomes "'=cmd|..."). Only text cells are escaped: the numeric kinds are
written from numbers the code made, so a negative amount stays a number ("-12.50").

XLSX: the workbook's fixed parts (styles with the number formats, the column widths, the frozen
title row in Chinese, the workbook and its relations) are written by xlsxwriter into a small
template; the rows are then streamed into the worksheet's <sheetData> and the whole package is
zipped on the fly by stream-zip. xlsxwriter alone cannot stream: even in constant-memory mode it
emits the zip only when the workbook is closed, after the last row. Cells are numbers or inline
strings, never formulas, whatever the text says.
"""

from __future__ import annotations

import csv
import enum
import io
import re
import unicodedata
import zipfile
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import xlsxwriter
from stream_zip import ZIP_32, async_stream_zip
from xlsxwriter.utility import xl_col_to_name

from servicekit.timeutil import SHANGHAI

Row = Mapping[str, Any]

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# What makes Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP's list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Bytes gathered before a chunk is handed on: large enough that a chunk's overhead (a thread hop
# in the zip writer, a socket write) is small beside its content, small enough to leave soon.
CHUNK_BYTES = 64 * 1024
# Rows read before the workbook's head is written: its column widths are fitted to them.
WIDTH_SAMPLE_ROWS = 100
MIN_WIDTH, MAX_WIDTH = 6, 60
# Excel's own limits: rows in a sheet (the title row included), characters in a cell.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_CELL_CHARS = 32_767
# The deflate level of the workbook: level 1 costs a fraction of the CPU of the default 9 and
# sheet XML, being repetitive, still shrinks about tenfold.
DEFLATE_LEVEL = 1
_EXCEL_EPOCH = datetime(1899, 12, 30)
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_DIMENSION = re.compile(rb"<dimension ref=\"[^\"]*\"/>")
_SHEET_DATA_END = b"</sheetData>"
# XML 1.0 cannot carry these; Excel writes them as _xHHHH_, and a literal _xHHHH_ as _x005F_xHHHH_.
_ESCAPE_LIKE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")


class Kind(enum.StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    MONEY_FEN = "money_fen"  # integer fen, shown in yuan with two decimals
    DATE = "date"  # a date, or an ISO YYYY-MM-DD string
    DATETIME = "datetime"  # an aware datetime, shown in Asia/Shanghai
    PERCENT = "percent"  # a ratio: 0.125 is shown as 12.50%
    DECIMAL = "decimal"  # a measure with one decimal (hours)


# Excel number formats per kind (xlsxwriter's format strings).
NUMBER_FORMATS = {
    Kind.TEXT: "@",
    Kind.INTEGER: "0",
    Kind.MONEY_FEN: "0.00",
    Kind.DATE: "yyyy-mm-dd",
    Kind.DATETIME: "yyyy-mm-dd hh:mm:ss",
    Kind.PERCENT: "0.00%",
    Kind.DECIMAL: "0.0",
}


@dataclass(frozen=True)
class Column:
    key: str
    title: str  # Chinese, the column's title in the file
    kind: Kind = Kind.TEXT


class ExportTooLarge(Exception):
    """More rows than an Excel sheet holds: the download breaks off rather than end short."""


def escape_formula(text: str) -> str:
    """A text cell a spreadsheet would run as a formula, quoted to be shown as text."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def yuan(fen: int) -> str:
    """12345 fen -> "123.45", exactly (no float on the way)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        raise TypeError("a date column needs a date, not a datetime")
    return value if isinstance(value, date) else date.fromisoformat(value)


def as_local(value: datetime) -> datetime:
    """An aware time as the Shanghai wall clock, without its zone (as a spreadsheet shows it)."""
    if value.tzinfo is None:
        raise ValueError("a datetime column needs an aware datetime")
    return value.astimezone(SHANGHAI).replace(tzinfo=None)


def _empty(value: Any) -> bool:
    return value is None or value == ""


def text_of(column: Column, value: Any) -> str:
    """A value as shown in a CSV cell (and measured for a column's width), before escaping."""
    if _empty(value):
        return ""
    match column.kind:
        case Kind.TEXT:
            return str(value)
        case Kind.INTEGER:
            return str(int(value))
        case Kind.MONEY_FEN:
            return yuan(int(value))
        case Kind.DATE:
            return as_date(value).isoformat()
        case Kind.DATETIME:
            return as_local(value).strftime("%Y-%m-%d %H:%M:%S")
        case Kind.PERCENT:
            return f"{float(value) * 100:.2f}%"
        case Kind.DECIMAL:
            return f"{float(value):.1f}"


def csv_cell(column: Column, value: Any) -> str:
    text = text_of(column, value)
    return escape_formula(text) if column.kind is Kind.TEXT else text


async def csv_chunks(columns: Sequence[Column], rows: AsyncIterable[Row]) -> AsyncIterator[bytes]:
    """The CSV file: the BOM and the title row at once, then the rows in chunks of ~64 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.title for column in columns])
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    async for row in rows:
        writer.writerow([csv_cell(column, row.get(column.key)) for column in columns])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def display_width(text: str) -> int:
    """Columns a text takes on screen: a Chinese (wide) character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def column_widths(columns: Sequence[Column], sample: Sequence[Row]) -> list[int]:
    """Widths fitting each column's title and its values in the first rows."""
    widths = []
    for column in columns:
        texts = [column.title, *(text_of(column, row.get(column.key)) for row in sample)]
        widest = max(display_width(text) for text in texts)
        widths.append(min(max(widest + 2, MIN_WIDTH), MAX_WIDTH))
    return widths


def sheet_name(title: str) -> str:
    """A title Excel accepts as a sheet's name: no []:*?/\\ and at most 31 characters."""
    return _SHEET_NAME_FORBIDDEN.sub("_", title)[:31] or "Sheet1"


@dataclass(frozen=True)
class _Template:
    """A workbook holding only the title row, cut open where the rows go."""

    parts: list[tuple[str, bytes]]  # every part but the worksheet, in the template's order
    sheet_path: str
    sheet_head: bytes  # up to the title row's end
    sheet_tail: bytes  # from </sheetData>
    styles: list[int]  # each column's cell style (xf index)


def _template(columns: Sequence[Column], title: str, widths: Sequence[int]) -> _Template:
    out = io.BytesIO()
    # Text is written as text: never made a formula, a number or a link.
    workbook = xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    worksheet = workbook.add_worksheet(sheet_name(title))
    heading = workbook.add_format({"bold": True})
    # One format per kind: xlsxwriter gives a style index to the first of equal formats only.
    by_kind = {kind: workbook.add_format({"num_format": NUMBER_FORMATS[kind]}) for kind in Kind}
    formats = [by_kind[column.kind] for column in columns]
    for index, (width, cell_format) in enumerate(zip(widths, formats, strict=True)):
        worksheet.set_column(index, index, width, cell_format)
    worksheet.write_row(0, 0, [column.title for column in columns], heading)
    worksheet.freeze_panes(1, 0)
    workbook.close()

    sheet_path = "xl/worksheets/sheet1.xml"
    parts = []
    with zipfile.ZipFile(out) as package:
        for name in package.namelist():
            if name != sheet_path:
                parts.append((name, package.read(name)))
        sheet = package.read(sheet_path)
    # The dimension names the used range, unknown until the last row: it is optional, so left out.
    sheet = _DIMENSION.sub(b"", sheet)
    cut = sheet.index(_SHEET_DATA_END)
    return _Template(
        parts=parts,
        sheet_path=sheet_path,
        sheet_head=sheet[:cut],
        sheet_tail=sheet[cut:],
        styles=[cell_format.xf_index for cell_format in formats],
    )


def _xml_text(text: str) -> str:
    text = text[:EXCEL_MAX_CELL_CHARS]
    if not _NEEDS_ESCAPE.search(text):  # nearly every cell: one scan, no copy
        return text
    text = _ESCAPE_LIKE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda match: f"_x{ord(match.group()):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _excel_serial(moment: datetime) -> str:
    """A wall-clock time as Excel's day number (days since 1899-12-30, the day's fraction)."""
    delta = moment - _EXCEL_EPOCH
    return repr(delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400)


class _SheetRows:
    """The <row> elements of the worksheet: numbers as <v>, text as inline strings."""

    def __init__(self, columns: Sequence[Column], styles: Sequence[int]) -> None:
        self.cells = [
            (column.key, column.kind, xl_col_to_name(index), style)
            for index, (column, style) in enumerate(zip(columns, styles, strict=True))
        ]

    def row(self, number: int, row: Row) -> str:
        parts = [f'<row r="{number}">']
        for key, kind, letter, style in self.cells:
            value = row.get(key)
            if _empty(value):
                continue
            ref = f'r="{letter}{number}" s="{style}"'
            if kind is Kind.TEXT:
                text = str(value)
                space = ' xml:space="preserve"' if text != text.strip() else ""
                parts.append(f'<c {ref} t="inlineStr"><is><t{space}>{_xml_text(text)}</t></is></c>')
            else:
                parts.append(f"<c {ref}><v>{self.number(kind, value)}</v></c>")
        parts.append("</row>")
        return "".join(parts)

    @staticmethod
    def number(kind: Kind, value: Any) -> str:
        match kind:
            case Kind.INTEGER:
                return str(int(value))
            case Kind.MONEY_FEN:
                return yuan(int(value))
            case Kind.DATE:
                return str((as_date(value) - _EXCEL_EPOCH.date()).days)
            case Kind.DATETIME:
                return _excel_serial(as_local(value))
            case Kind.PERCENT | Kind.DECIMAL:
                return repr(float(value))
        raise ValueError(f"no number for kind {kind}")


async def _sheet_xml(
    template: _Template,
    columns: Sequence[Column],
    sample: Sequence[Row],
    rest: AsyncIterator[Row],
) -> AsyncIterator[bytes]:
    writer = _SheetRows(columns, template.styles)
    yield template.sheet_head
    pending: list[str] = []
    size = 0
    number = 1  # the title row
    rows = _chain(sample, rest)
    async for row in rows:
        number += 1
        if number > EXCEL_MAX_ROWS:
            raise ExportTooLarge(f"more than {EXCEL_MAX_ROWS - 1} rows: export as CSV instead")
        xml = writer.row(number, row)
        pending.append(xml)
        size += len(xml)
        if size >= CHUNK_BYTES:
            yield "".join(pending).encode()
            pending.clear()
            size = 0
    if pending:
        yield "".join(pending).encode()
    yield template.sheet_tail


async def _chain(first: Sequence[Row], rest: AsyncIterator[Row]) -> AsyncIterator[Row]:
    for row in first:
        yield row
    async for row in rest:
        yield row


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def xlsx_chunks(
    columns: Sequence[Column], rows: AsyncIterable[Row], title: str
) -> AsyncIterator[bytes]:
    """The workbook, one sheet named after the report: its title row once the first rows are
    read (for the widths), then the rows as they come."""
    source = aiter(rows)
    sample: list[Row] = []
    async for row in source:
        sample.append(row)
        if len(sample) >= WIDTH_SAMPLE_ROWS:
            break
    template = _template(columns, title, column_widths(columns, sample))
    modified = datetime.now(UTC)

    async def members() -> AsyncIterator[Any]:
        for name, data in template.parts:
            yield name, modified, 0o600, ZIP_32, _one(data)
        sheet = _sheet_xml(template, columns, sample, source)
        yield template.sheet_path, modified, 0o600, ZIP_32, sheet

    async for chunk in async_stream_zip(
        members(),
        chunk_size=CHUNK_BYTES,
        get_compressobj=lambda: zlib.compressobj(wbits=-zlib.MAX_WBITS, level=DEFLATE_LEVEL),
    ):
        yield chunk
