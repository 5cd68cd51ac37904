"""Use cases of the reporting service: event handlers that update the read models (each runs
in the consumer's unit of work, with the inbox row) and the KPI queries, scoped to the caller."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from aftersales.events.v1 import events_pb2
from servicekit.auth import AuthContext
from servicekit.inbox import Handler, UnprocessableEvent
from servicekit.timeutil import from_timestamp, shanghai_day, utc_now
from servicekit.uow import UnitOfWork
from services.reporting.adapters import repository
from services.reporting.domain.kpis import Kpis, daily_key, summarise
from services.reporting.domain.period import report_period

NewUow = Callable[[], UnitOfWork]


async def order_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
    """受理: one more order received at the store on its business day, by service type."""
    # Intake time is what the KPI means; an event without it still counts when it occurred.
    happened = event.received_at if event.HasField("received_at") else event.meta.occurred_at
    try:
        key = daily_key(
            from_timestamp(happened), event.meta.branch_id, event.meta.store_id, event.service_type
        )
    except ValueError as error:
        raise UnprocessableEvent(str(error)) from error
    await repository.add_to_daily_counts(uow.session, key, {"orders_received": 1})


ORDER_EVENTS: dict[str, tuple[type[Message], Handler]] = {
    events_pb2.OrderReceived.DESCRIPTOR.full_name: (events_pb2.OrderReceived, order_received),
}
"""Handlers of the order events, by event full name; other order events are acked unread."""


async def get_kpis(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    date_from: str,
    date_to: str,
) -> Kpis:
    """KPIs for the caller's unit, or a unit below it they name, over a period of Shanghai days.
    A unit outside their scope is NotFound, never another's figures."""
    branch, store = auth.narrow(branch_id or None, store_id or None)
    period = report_period(date_from, date_to, today=shanghai_day(utc_now()))
    async with new_uow() as uow:
        counts = await repository.orders_received_counts(uow.session, branch, store, period)
    by_store, by_service_type = summarise(counts)
    return Kpis(branch, store, period, by_store, by_service_type)
