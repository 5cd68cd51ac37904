"""The events customers listens to: one durable consumer of the ORDERS stream, which runs the
handlers of what three durables did on their own before (their names stay, as the formers it
took over: the inbox rows and dead letters they left are under them)."""

from __future__ import annotations

import functools

from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.inbox import EventConsumer, Former
from servicekit.personal_data import DataKeys
from servicekit.runtime import Runtime
from services.customers import handlers, notifications
from services.customers.notifications.settings import NotificationSettings
from services.customers.settings import follow_up_days

ORDERS_STREAM = "ORDERS"
ORDERS_CONSUMER = "customers-orders"
# Every order event of every branch and store; a branch-level deployment would narrow it to
# orders.v1.<branch>.*.*
ORDER_EVENTS_SUBJECT = "orders.v1.*.*.*"
ORDER_RECEIVED_CONSUMER = "customers-order-received"
ORDER_RECEIVED_SUBJECT = "orders.v1.*.*.order_received"
ORDER_HISTORY_CONSUMER = "customers-order-history"
ORDER_HISTORY_SUBJECT = ORDER_EVENTS_SUBJECT


def order_received(personal_keys: DataKeys) -> Former:
    """The customer (with consent and language) and device upserted, the order counted once;
    `personal_keys` open the name and phone the events carry sealed."""
    return Former(
        ORDER_RECEIVED_CONSUMER,
        {
            events_pb2.OrderReceived.DESCRIPTOR.full_name: (
                events_pb2.OrderReceived,
                functools.partial(handlers.record_order_received, personal_keys=personal_keys),
            )
        },
    )


def order_history(days_after_pickup: int | None = None) -> Former:
    """Where each order stands (the customer's service history, who holds an open order) and
    the follow-up due after each pickup."""
    days = follow_up_days() if days_after_pickup is None else days_after_pickup
    return Former(
        ORDER_HISTORY_CONSUMER,
        {
            order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name: (
                order_events_pb2.OrderStatusChanged,
                functools.partial(handlers.record_order_status, days_after_pickup=days),
            )
        },
    )


def order_received_consumer(
    runtime: Runtime,
    personal_keys: DataKeys,
    name: str = ORDER_RECEIVED_CONSUMER,
    subject: str = ORDER_RECEIVED_SUBJECT,
) -> EventConsumer:
    """The order-received handlers alone (tests of them)."""
    return runtime.consumer(name, ORDERS_STREAM, [subject], order_received(personal_keys).handlers)


def order_history_consumer(
    runtime: Runtime,
    name: str = ORDER_HISTORY_CONSUMER,
    subject: str = ORDER_HISTORY_SUBJECT,
    days_after_pickup: int | None = None,
) -> EventConsumer:
    """The order-history handlers alone (tests of them)."""
    return runtime.consumer(
        name, ORDERS_STREAM, [subject], order_history(days_after_pickup).handlers
    )


def orders_consumer(
    runtime: Runtime, personal_keys: DataKeys, settings: NotificationSettings
) -> EventConsumer:
    """Each order event fetched, decoded and committed once for all three: separate durables
    cost each event a fetch, a decode, an inbox row and a commit apiece, for an isolation
    (one failing handler holding back the others' event) that buys little in one service."""
    return runtime.consumer(
        ORDERS_CONSUMER,
        ORDERS_STREAM,
        [ORDER_EVENTS_SUBJECT],
        {},
        formers=[
            order_received(personal_keys),
            order_history(),
            notifications.order_notices(settings),
        ],
    )


def consumers(runtime: Runtime, personal_keys: DataKeys) -> list[EventConsumer]:
    return [orders_consumer(runtime, personal_keys, NotificationSettings.from_env())]
