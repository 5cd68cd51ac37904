"""What inventory's changes record, and the subjects and messages they go out as."""

from __future__ import annotations

from datetime import UTC, datetime

from aftersales.events.v1 import inventory_events_pb2
from servicekit.uow import collect
from services.inventory import events
from services.inventory.domain.events import (
    DocumentChanged,
    OrderPartsChanged,
    StockMoved,
    WarehouseNews,
)
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.stock import Movement, StockLevel
from services.inventory.domain.warehouse import Warehouse

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
STORE = Warehouse("WH-SH-001", "SH-001 store", "store", "SH", "SH-001")
CENTRAL = Warehouse("WH-SH", "SH central", "central", "SH", None)


def test_a_warehouses_news_go_out_in_its_name_in_the_order_recorded() -> None:
    moved = Movement(STORE.id, "HW-SCR", "receipt", 3, 100, "receipt", "GRN-1", AT, "u-1")
    after = StockLevel(STORE.id, "HW-SCR", on_hand=5, average_cost_fen=100, value_fen=500)
    store = WarehouseNews(STORE).record(StockMoved(moved, after))
    store.record(DocumentChanged("receipt", "GRN-1", "booked"))
    central = WarehouseNews(CENTRAL).record(DocumentChanged("stocktake", "ST-1"))
    rows = collect([(store, events.translate), (central, events.translate)])
    assert [subject for subject, _ in rows] == [
        "inventory.v1.SH.SH-001.stock_moved",
        "inventory.v1.SH.SH-001.document_changed",
        "inventory.v1.SH._.document_changed",
    ]
    stock = rows[0][1]
    assert isinstance(stock, inventory_events_pb2.StockMoved)
    assert (stock.quantity, stock.on_hand_after, stock.average_cost_after_fen) == (3, 5, 100)
    assert (stock.meta.branch_id, stock.meta.store_id) == ("SH", "SH-001")
    document = rows[2][1]
    assert isinstance(document, inventory_events_pb2.DocumentChanged)
    assert (document.warehouse_id, document.meta.store_id) == ("WH-SH", "")


def test_an_orders_part_lines_go_out_as_they_stand() -> None:
    line = OrderPartLine("o-1", "l-1", STORE.id, "HW-SCR", 2, False, 20_000, reserved=1, short=1)
    news = WarehouseNews(STORE).record(OrderPartsChanged("o-1", "reserved", (line,)))
    [(subject, message)] = collect([(news, events.translate)])
    assert subject == "inventory.v1.SH.SH-001.order_parts_changed"
    assert isinstance(message, inventory_events_pb2.OrderPartsChanged)
    assert [(x.line_id, x.reserved, x.short) for x in message.lines] == [("l-1", 1, 1)]
