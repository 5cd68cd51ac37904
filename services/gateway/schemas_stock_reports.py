"""The parts side of the report centre as the REST API shows it. Every figure's description is
its definition from the contract (stock_reports.proto, the `figure` option of its field): the
text the reporting service computes by is the text the API documents."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from pydantic import BaseModel, Field

from aftersales.reporting.v1 import stock_reports_pb2


def defined(message: type[Message], name: str, **extra: Any) -> Any:
    """A field described by its figure's Chinese title and definition."""
    options = message.DESCRIPTOR.fields_by_name[name].GetOptions()
    figure = options.Extensions[stock_reports_pb2.figure]
    return Field(title=figure.title_zh, description=figure.definition, **extra)


_T = stock_reports_pb2.StockTotals


class StockTotals(BaseModel):
    branch_id: str | None
    store_id: str | None = Field(description='"" is a branch\'s central warehouse')
    inventory_value_fen: int = defined(_T, "inventory_value_fen")
    average_inventory_value_fen: int = defined(_T, "average_inventory_value_fen")
    issued_cost_fen: int = defined(_T, "issued_cost_fen")
    turnover_days: float | None = defined(_T, "turnover_days")
    slow_moving_value_fen: int = defined(_T, "slow_moving_value_fen")
    parts_cost_fen: int = defined(_T, "parts_cost_fen")
    orders_with_issues: int = defined(_T, "orders_with_issues")
    parts_cost_per_order_fen: int | None = defined(_T, "parts_cost_per_order_fen")


class WaitingPart(BaseModel):
    part_number: str
    orders: int = defined(stock_reports_pb2.WaitingPart, "orders")
    quantity: int = Field(description="the quantity short over those orders")


class StockFigures(BaseModel):
    branch_id: str | None
    store_id: str | None
    date_from: str
    date_to: str
    total: StockTotals
    by_store: list[StockTotals]
    waiting_parts: list[WaitingPart] = Field(
        description="待料: what the orders waiting for parts are short of, most orders first "
        "(at most 50)"
    )


class RecordMismatch(BaseModel):
    order_id: str
    order_number: str | None
    part_number: str
    branch_id: str
    store_id: str = Field(description="the store whose warehouse issues the part")
    kind: str = defined(stock_reports_pb2.RecordMismatch, "kind")
    record_quantity: int = Field(description="the quantity on the service record (维修记录)")
    issued_quantity: int = Field(description="the quantity inventory issued, net of returns")


class RecordMismatchPage(BaseModel):
    items: list[RecordMismatch]
    next_cursor: str | None
