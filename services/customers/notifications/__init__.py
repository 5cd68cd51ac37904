"""Customer notices (通知) driven by order events, and the tracking link (进度查询).

- RPCs: aftersales.customers.v1.NotificationsService
  (protos/aftersales/customers/v1/notifications.proto): templates (HQ), the delivery log
  (scoped), an order's tracking link (scoped), and what a link shows (any verified caller)
- Events in: orders.v1.<branch>.<store>.order_received (OrderReceived) and .order_<status>
  (OrderStatusChanged), through customers' one consumer of the ORDERS stream
  (services/customers/consumers.py; `customers-notifications` is the name of the durable this
  once had of its own): the tracking read model, and one notice per real change the customer
  cares about in the delivery log
- Background: the sender, which sends due notices through the SMS provider (SMS_PROVIDER)
- Tables: services/customers/notifications/tables.py
"""

from __future__ import annotations

import functools

import grpc

from aftersales.customers.v1 import notifications_pb2_grpc
from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.inbox import EventConsumer, Former
from servicekit.runtime import BackgroundWork, Runtime
from services.customers.notifications import handlers
from services.customers.notifications.grpc_api import NotificationsService
from services.customers.notifications.providers import provider_from
from services.customers.notifications.sender import NotificationSender
from services.customers.notifications.settings import NotificationSettings

ORDERS_STREAM = "ORDERS"
NOTIFICATIONS_CONSUMER = "customers-notifications"
# Every order event of every branch and store.
ORDER_EVENTS_SUBJECT = "orders.v1.*.*.*"


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Add the notification and tracking RPCs to the customers server."""
    notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(
        NotificationsService(runtime.uow, NotificationSettings.from_env()), server
    )


def order_notices(settings: NotificationSettings) -> Former:
    """The tracking read model and the notices, from order events."""
    return Former(
        NOTIFICATIONS_CONSUMER,
        {
            events_pb2.OrderReceived.DESCRIPTOR.full_name: (
                events_pb2.OrderReceived,
                functools.partial(handlers.order_received, settings=settings),
            ),
            order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name: (
                order_events_pb2.OrderStatusChanged,
                functools.partial(handlers.status_changed, settings=settings),
            ),
        },
    )


def notifications_consumer(
    runtime: Runtime,
    settings: NotificationSettings,
    name: str = NOTIFICATIONS_CONSUMER,
    subject: str = ORDER_EVENTS_SUBJECT,
) -> EventConsumer:
    """The notification handlers alone (tests of them)."""
    return runtime.consumer(name, ORDERS_STREAM, [subject], order_notices(settings).handlers)


def background(runtime: Runtime) -> list[BackgroundWork]:
    settings = NotificationSettings.from_env()
    return [NotificationSender(runtime.db, settings, provider_from(settings))]
