"""The events customers listens to: durable JetStream consumers and the handler of each event."""

from __future__ import annotations

import functools

from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.inbox import EventConsumer
from servicekit.personal_data import DataKeys
from servicekit.runtime import Runtime
from services.customers import handlers
from services.customers.settings import follow_up_days

ORDERS_STREAM = "ORDERS"
ORDER_RECEIVED_CONSUMER = "customers-order-received"
# Every branch and store; a branch-level deployment would narrow it to orders.v1.<branch>.*.…
ORDER_RECEIVED_SUBJECT = "orders.v1.*.*.order_received"
ORDER_HISTORY_CONSUMER = "customers-order-history"
# Every order_<status> event; order_received is acked and skipped (no handler for it here).
ORDER_HISTORY_SUBJECT = "orders.v1.*.*.*"


def order_received_consumer(
    runtime: Runtime,
    personal_keys: DataKeys,
    name: str = ORDER_RECEIVED_CONSUMER,
    subject: str = ORDER_RECEIVED_SUBJECT,
) -> EventConsumer:
    """`personal_keys` open the name and phone the events carry sealed."""
    return runtime.consumer(
        name,
        ORDERS_STREAM,
        [subject],
        {
            events_pb2.OrderReceived.DESCRIPTOR.full_name: (
                events_pb2.OrderReceived,
                functools.partial(handlers.record_order_received, personal_keys=personal_keys),
            )
        },
    )


def order_history_consumer(
    runtime: Runtime,
    name: str = ORDER_HISTORY_CONSUMER,
    subject: str = ORDER_HISTORY_SUBJECT,
    days_after_pickup: int | None = None,
) -> EventConsumer:
    """Where each order stands (the customer's service history, who holds an open order) and
    the follow-up due after each pickup."""
    days = follow_up_days() if days_after_pickup is None else days_after_pickup
    return runtime.consumer(
        name,
        ORDERS_STREAM,
        [subject],
        {
            order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name: (
                order_events_pb2.OrderStatusChanged,
                functools.partial(handlers.record_order_status, days_after_pickup=days),
            )
        },
    )


def consumers(runtime: Runtime, personal_keys: DataKeys) -> list[EventConsumer]:
    return [order_received_consumer(runtime, personal_keys), order_history_consumer(runtime)]
