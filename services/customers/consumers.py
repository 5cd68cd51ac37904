"""The events customers listens to: durable JetStream consumers and the handler of each event."""

from __future__ import annotations

from aftersales.events.v1 import events_pb2
from servicekit.inbox import EventConsumer
from servicekit.runtime import Runtime
from services.customers import handlers

ORDERS_STREAM = "ORDERS"
ORDER_RECEIVED_CONSUMER = "customers-order-received"
# Every branch and store; a branch-level deployment would narrow it to orders.v1.<branch>.*.…
ORDER_RECEIVED_SUBJECT = "orders.v1.*.*.order_received"


def order_received_consumer(
    runtime: Runtime,
    name: str = ORDER_RECEIVED_CONSUMER,
    subject: str = ORDER_RECEIVED_SUBJECT,
) -> EventConsumer:
    return runtime.consumer(
        name,
        ORDERS_STREAM,
        [subject],
        {
            events_pb2.OrderReceived.DESCRIPTOR.full_name: (
                events_pb2.OrderReceived,
                handlers.record_order_received,
            )
        },
    )


def consumers(runtime: Runtime) -> list[EventConsumer]:
    return [order_received_consumer(runtime)]
