"""Events as orders and customers announce them, and publishing them to JetStream the way
their outbox relays do (message id and event type in the headers)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from google.protobuf.message import Message
from nats.js import JetStreamContext
from nats.js.api import PubAck

from aftersales.events.v1 import (
    customer_events_pb2,
    events_pb2,
    order_events_pb2,
    settlement_events_pb2,
)
from servicekit import bus
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.timeutil import to_timestamp


def order_received(
    branch_id: str,
    store_id: str,
    received_at: datetime,
    service_type: str = "repair",
    order_id: str = "",
    brand: str = "huawei",
    promised_date: date | None = None,
    repeat_of_order_id: str = "",
    warranty_status: str = "in_warranty",
) -> events_pb2.OrderReceived:
    event = events_pb2.OrderReceived(
        order_id=order_id or str(uuid.uuid4()),
        number=f"{store_id}-{received_at:%Y%m%d}-0001",
        service_type=service_type,
        warranty_status=warranty_status,
        received_at=to_timestamp(received_at),
        device=events_pb2.DeviceSnapshot(brand=brand),
        promised_date=promised_date.isoformat() if promised_date else "",
        repeat_repair=bool(repeat_of_order_id),
        repeat_of_order_id=repeat_of_order_id,
    )
    fill_meta(event.meta, branch_id, store_id)
    return event


def status_changed(
    intake: events_pb2.OrderReceived,
    step: str,
    to_status: str,
    version: int,
    occurred_at: datetime,
    actor: str = "u-tech",
    qc_failures: int = 0,
    paid_fen: int = 0,
) -> order_events_pb2.OrderStatusChanged:
    """A step of the order taken in by `intake`, carrying its placement as orders does."""
    event = order_events_pb2.OrderStatusChanged(
        order_id=intake.order_id,
        number=intake.number,
        step=step,
        to_status=to_status,
        version=version,
        service_type=intake.service_type,
        warranty_status=intake.warranty_status,
        brand=intake.device.brand,
        received_at=intake.received_at,
        promised_date=intake.promised_date,
        repeat_repair=intake.repeat_repair,
        repeat_of_order_id=intake.repeat_of_order_id,
        qc_failures=qc_failures,
        paid_fen=paid_fen,
    )
    fill_meta(event.meta, intake.meta.branch_id, intake.meta.store_id)
    event.meta.occurred_at.CopyFrom(to_timestamp(occurred_at))
    event.meta.actor_user_id = actor
    return event


def follow_up_recorded(
    intake: events_pb2.OrderReceived, attempt: int, score: int, state: str = "done"
) -> customer_events_pb2.FollowUpRecorded:
    event = customer_events_pb2.FollowUpRecorded(
        follow_up_id=f"f-{intake.order_id}",
        order_id=intake.order_id,
        attempt=attempt,
        reached=score > 0,
        score=score,
        state=state,
    )
    fill_meta(event.meta, intake.meta.branch_id, intake.meta.store_id)
    return event


def claim_changed(
    branch_id: str,
    claim_id: str,
    version: int,
    month: str,
    lines: list[tuple[str, str, int]],
) -> settlement_events_pb2.ClaimChanged:
    """A claim with (order id, line state, labour fen) lines."""
    event = settlement_events_pb2.ClaimChanged(
        claim_id=claim_id,
        manufacturer="huawei",
        month=month,
        status="submitted",
        version=version,
        lines=[
            settlement_events_pb2.ClaimLine(order_id=order_id, state=state, labour_fen=labour)
            for order_id, state, labour in lines
        ],
    )
    fill_meta(event.meta, branch_id, None)
    return event


def subject_of(event: Message) -> str:
    meta = event.meta  # type: ignore[attr-defined]
    match event:
        case events_pb2.OrderReceived():
            return bus.subject("orders", meta.branch_id, meta.store_id, "order_received")
        case order_events_pb2.OrderStatusChanged():
            name = f"order_{event.to_status}"
            return bus.subject("orders", meta.branch_id, meta.store_id, name)
        case settlement_events_pb2.ClaimChanged():
            return bus.subject("orders", meta.branch_id, None, "claim_changed")
        case customer_events_pb2.FollowUpRecorded():
            return bus.subject("customers", meta.branch_id, meta.store_id, "follow_up_recorded")
    raise ValueError(f"no subject for {type(event).__name__}")


async def publish(js: JetStreamContext, event: Message) -> PubAck:
    return await js.publish(
        subject_of(event),
        event.SerializeToString(),
        headers={
            MSG_ID_HEADER: event.meta.event_id,  # type: ignore[attr-defined]
            EVENT_TYPE_HEADER: event.DESCRIPTOR.full_name,
        },
    )
