"""The events inventory listens to, and the keeper of orders' holds that runs in every replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.inbox import EventConsumer
from servicekit.runtime import BackgroundWork, Runtime
from services.inventory.handlers import holds
from services.inventory.handlers.common import NewUow
from services.inventory.settings import HoldSettings

log = logging.getLogger(__name__)

ORDERS_STREAM = holds.ORDERS_STREAM
ORDER_HOLDS_CONSUMER = holds.ORDER_HOLDS_CONSUMER
# Every order event: order_received only shows how far orders' events have flowed.
ORDER_HOLDS_SUBJECT = "orders.v1.*.*.*"


def order_holds_consumer(
    runtime: Runtime, name: str = ORDER_HOLDS_CONSUMER, subject: str = ORDER_HOLDS_SUBJECT
) -> EventConsumer:
    """Each order's steps as written: which parts attempt won, and orders that ended; and how
    far orders' events have flowed (every order event)."""
    return runtime.consumer(
        name,
        ORDERS_STREAM,
        [subject],
        {
            order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name: (
                order_events_pb2.OrderStatusChanged,
                holds.order_moved,
            ),
            events_pb2.OrderReceived.DESCRIPTOR.full_name: (
                events_pb2.OrderReceived,
                holds.order_received,
            ),
        },
    )


def consumers(runtime: Runtime) -> list[EventConsumer]:
    return [order_holds_consumer(runtime)]


class HoldKeeper:
    """Every round: attempts orders' events flowed past by the grace, never written, let go
    of what only they claimed (nothing, while orders' events are stalled), an ended
    order's holds left behind go too, and the loose holds left are counted for the metric.
    Replicas share the work under the lines' locks."""

    name = "hold-keeper"

    def __init__(self, new_uow: NewUow, settings: HoldSettings) -> None:
        self.new_uow = new_uow
        self.settings = settings

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await holds.let_go_loose(self.new_uow, self.settings.grace)
            except Exception:
                log.exception("checking orders' holds failed; trying again next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.check_every.total_seconds())


def background(runtime: Runtime) -> list[BackgroundWork]:
    return [HoldKeeper(runtime.uow, HoldSettings.from_env())]
