"""The integration events orders announces, built from the domain objects."""

from __future__ import annotations

from google.protobuf.message import Message

from aftersales.events.v1 import events_pb2
from aftersales.events.v1.order_events_pb2 import (
    OrderPartLine,
    OrderStatusChanged,
    OrderStore,
    ShortPart,
)
from servicekit import bus
from servicekit.outbox import fill_meta
from servicekit.personal_data import DataKey
from servicekit.timeutil import to_timestamp
from servicekit.uow import Translate
from services.orders.adapters.inventory import store_warehouse_id
from services.orders.domain.order import OrderEvent, OrderReceived, RepairOrder, StepTaken


def translator(key: DataKey | None = None) -> Translate:
    """Orders' translator for the unit of work: each event an order recorded, as the subject
    and message it goes out as. `key` is the customer's data key, for an intake's event."""

    def translate(order: RepairOrder, event: OrderEvent) -> tuple[str, Message]:
        match event:
            case OrderReceived():
                if key is None:
                    raise ValueError("an order taken in is announced with its customer's key")
                return _subject(order, "order_received"), order_received(order, key)
            case StepTaken():
                return _subject(order, f"order_{event.to_status}"), status_changed(
                    order, event.step, event.from_status, event.previous_imei, event.parts_attempt
                )

    return translate


def _subject(order: RepairOrder, name: str) -> str:
    return bus.subject("orders", order.branch_id, order.store_id, name)


def order_received(order: RepairOrder, key: DataKey) -> events_pb2.OrderReceived:
    """The customer's name and phone go sealed with their data key, never in clear."""
    intake = order.intake
    person = events_pb2.PersonalData(name=intake.customer_name, phone=intake.customer_phone)
    event = events_pb2.OrderReceived(
        order_id=order.id,
        number=order.number,
        service_type=intake.service_type,
        warranty_status=order.warranty.status,
        customer=events_pb2.CustomerSnapshot(
            message_consent=intake.message_consent,
            language=intake.language,
            key_id=key.key_id,
            sealed=key.seal(person.SerializeToString(), order.id),
        ),
        device=events_pb2.DeviceSnapshot(
            imei=intake.imei,
            brand=intake.brand,
            model=intake.model,
            colour=intake.colour,
            purchase_date=intake.purchase_date.isoformat() if intake.purchase_date else "",
        ),
        received_at=to_timestamp(order.received_at),
        repeat_repair=order.repeat_repair,
        repeat_of_order_id=order.repeat_of or "",
        promised_date=intake.promised_date.isoformat() if intake.promised_date else "",
    )
    fill_meta(event.meta, order.branch_id, order.store_id)
    return event


def order_stores(order: RepairOrder) -> list[OrderStore]:
    """Every store with a part in the order: the intake store, and the partner it was sent to
    (送修), each with its warehouse and the labour it quoted."""
    work = order.work
    quote = work.quote
    labour_store = (quote.store_id or order.store_id) if quote else ""
    stores = [(order.branch_id, order.store_id, "intake")]
    if work.partner_store_id:
        stores.append((work.partner_branch_id, work.partner_store_id, "repairer"))
    return [
        OrderStore(
            branch_id=branch,
            store_id=store,
            role=role,
            warehouse_id=store_warehouse_id(store),
            labour_fen=quote.labour_fen if quote and labour_store == store else 0,
        )
        for branch, store, role in stores
    ]


def status_changed(
    order: RepairOrder,
    step: str,
    from_status: str,
    previous_imei: str = "",
    parts_attempt: str = "",
) -> OrderStatusChanged:
    """One event per step taken, with the org path of every store involved, and the attempt
    of the step at inventory's side that was written (parts_step.PartsAttempt)."""
    work = order.work
    last = order.timeline[-1]
    event = OrderStatusChanged(
        order_id=order.id,
        number=order.number,
        step=step,
        from_status=from_status,
        to_status=order.status,
        version=order.version,
        note=last.note,
        stores=order_stores(order),
        service_type=order.intake.service_type,
        warranty_status=order.warranty.status,
        quote_total_fen=work.quote.total_fen if work.quote else 0,
        paid_fen=sum(p.amount_fen for p in work.payments),
        warehouse_id=store_warehouse_id(order.holder_store_id),
        short_parts=[
            ShortPart(
                line_id=line.line_id,
                part_id=line.part_id,
                quantity=line.short,
                successor_part_id=line.successor_part_id,
                successor_available=line.successor_available,
            )
            for line in work.lines
            if line.short and order.status == "waiting_parts"
        ],
        imei=order.current_imei,
        previous_imei=previous_imei or order.current_imei,
        swap_offered=work.swap_offered,
        holder_store_id=order.holder_store_id,
        inspection_fee_fen=work.inspection_fee_fen,
        parts_attempt=parts_attempt,
        brand=order.intake.brand,
        repair_level=work.repair_level,
        qc_failures=work.qc_failures,
        received_at=to_timestamp(order.received_at),
        promised_date=order.intake.promised_date.isoformat() if order.intake.promised_date else "",
        repeat_repair=order.repeat_repair,
        repeat_of_order_id=order.repeat_of or "",
        part_lines=[
            OrderPartLine(
                line_id=line.line_id,
                part_id=line.part_id,
                quantity=line.quantity,
                issued=line.issued,
                warranty=line.warranty,
                old_part_kept=line.old_part_kept,
                store_id=line.store_id or order.store_id,
            )
            for line in work.lines
            if not line.released
        ],
    )
    fill_meta(event.meta, order.branch_id, order.store_id)
    return event
