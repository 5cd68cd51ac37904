"""The integration events orders announces, built from the domain objects."""

from __future__ import annotations

from aftersales.events.v1 import events_pb2
from servicekit.outbox import fill_meta
from servicekit.timeutil import to_timestamp
from services.orders.domain.order import RepairOrder


def order_received(order: RepairOrder) -> events_pb2.OrderReceived:
    intake = order.intake
    event = events_pb2.OrderReceived(
        order_id=order.id,
        number=order.number,
        service_type=intake.service_type,
        warranty_status=order.warranty.status,
        customer=events_pb2.CustomerSnapshot(
            name=intake.customer_name, phone=intake.customer_phone
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
    )
    fill_meta(event.meta, order.branch_id, order.store_id)
    return event
