"""The integration events inventory announces, built from the events its changes recorded:
the translator the unit of work sends them through."""

from __future__ import annotations

from google.protobuf.message import Message

from aftersales.events.v1 import inventory_events_pb2
from servicekit import bus
from servicekit.outbox import fill_meta
from services.inventory.domain.events import (
    DocumentChanged,
    InventoryEvent,
    OldPartsReturned,
    OrderPartsChanged,
    StockMoved,
    TransferChanged,
    WarehouseNews,
)
from services.inventory.domain.warehouse import Warehouse


def subject(warehouse: Warehouse, event_name: str) -> str:
    return bus.subject("inventory", warehouse.branch_id, warehouse.store_id, event_name)


def translate(news: WarehouseNews, event: InventoryEvent) -> tuple[str, Message]:
    warehouse = news.warehouse
    name, message = _message(warehouse, event)
    fill_meta(message.meta, warehouse.branch_id, warehouse.store_id)  # type: ignore[attr-defined]
    return subject(warehouse, name), message


def _message(warehouse: Warehouse, event: InventoryEvent) -> tuple[str, Message]:
    match event:
        case StockMoved(movement, after):
            return "stock_moved", inventory_events_pb2.StockMoved(
                warehouse_id=movement.warehouse_id,
                part_number=movement.part_number,
                kind=movement.kind,
                quantity=movement.quantity,
                unit_cost_fen=movement.unit_cost_fen,
                document_type=movement.document_type,
                document_id=movement.document_id,
                on_hand_after=after.on_hand,
                average_cost_after_fen=after.average_cost_fen,
                serial_number=movement.serial_number or "",
            )
        case DocumentChanged():
            return "document_changed", inventory_events_pb2.DocumentChanged(
                document_type=event.document_type,
                document_id=event.document_id,
                warehouse_id=warehouse.id,
                status=event.status,
            )
        case TransferChanged(doc):
            return "transfer_changed", inventory_events_pb2.TransferChanged(
                transfer_id=doc.id,
                from_warehouse_id=doc.from_warehouse_id,
                to_warehouse_id=doc.to_warehouse_id,
                status=doc.status,
                pending_branches=list(doc.pending_branches),
            )
        case OrderPartsChanged():
            return "order_parts_changed", inventory_events_pb2.OrderPartsChanged(
                order_id=event.order_id,
                warehouse_id=warehouse.id,
                action=event.action,
                lines=[
                    inventory_events_pb2.OrderPartLineState(
                        line_id=x.line_id,
                        part_number=x.part_number,
                        quantity=x.quantity,
                        reserved=x.reserved,
                        short=x.short,
                        issued=x.issued,
                        returned=x.returned,
                        status=x.status,
                        unit_cost_fen=x.unit_cost_fen,
                    )
                    for x in event.lines
                ],
            )
        case OldPartsReturned():
            return "old_parts_returned", inventory_events_pb2.OldPartsReturned(
                batch_id=event.batch_id,
                warehouse_id=warehouse.id,
                lines=[
                    inventory_events_pb2.ReturnedOldPart(
                        order_id=order_id, line_id=line_id, part_number=part, quantity=quantity
                    )
                    for order_id, line_id, part, quantity in event.lines
                ],
            )
