"""Holds that no live step of their order stands behind (domain/holds.py): let go when the
order's events say so, or when orders' events have flowed an attempt's grace past its claim
without naming it; listed for the operator and the metric."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from aftersales.events.v1.events_pb2 import EventMeta, OrderReceived
from aftersales.events.v1.order_events_pb2 import OrderStatusChanged
from servicekit import metrics
from servicekit.inbox import UnprocessableEvent
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters.repository import holds as held_by
from services.inventory.adapters.repository import order_parts as order_parts_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain import holds
from services.inventory.domain.holds import Claim, LooseHold
from services.inventory.domain.stock import Posting
from services.inventory.handlers.common import NewUow
from services.inventory.handlers.work_order_parts import Claiming, change_held, release_rule, undo

ACTOR = "service:inventory"
ORDERS_STREAM = "ORDERS"
ORDER_HOLDS_CONSUMER = "inventory-order-holds"


def _posting(order_id: str, now: datetime) -> Posting:
    return Posting("order", order_id, now, ACTOR)


async def _let_go(
    uow: UnitOfWork,
    order_id: str,
    dropping: Claiming,
    now: datetime,
) -> bool:
    """Drop the claims `dropping` picks on one store's lines of an order, under its locks; the
    lines that lose their last claim are let go."""
    lines = await order_parts_db.order_lines(uow.session, order_id)
    warehouse = (
        await warehouses_db.get_warehouse(uow.session, lines[0].warehouse_id) if lines else None
    )
    if warehouse is None:
        return False
    return await change_held(
        uow, warehouse, order_id, [], "return", undo, _posting(order_id, now), claiming=dropping
    )


def _note_heard(uow: UnitOfWork, meta: EventMeta, now: datetime) -> None:
    """Mark how far orders' events have flowed, once per batch (at its commit). The batch's
    last event may not be its newest: a mark left lower is safe, it only lets go later."""
    if meta.HasField("occurred_at"):
        created = meta.occurred_at.ToDatetime(tzinfo=UTC)
        session = uow.session
        uow.at_commit(
            ORDERS_STREAM,
            functools.partial(
                held_by.save_heard, session, ORDERS_STREAM, created, holds.EVENT_SETTLE, now
            ),
        )


async def order_received(uow: UnitOfWork, event: OrderReceived) -> None:
    """A new order moves no parts; it only shows how far orders' events have flowed."""
    _note_heard(uow, event.meta, utc_now())


async def order_moved(uow: UnitOfWork, event: OrderStatusChanged) -> None:
    """An order reached a version: the parts attempt that got there is written, any other at
    that version lost its race and lets go of what only it claimed. An order cancelled,
    declined or closed lets go of every hold it still has (an issued part stays issued: orders
    gives it back as a return)."""
    if not event.order_id or event.version <= 0:
        raise UnprocessableEvent(f"order {event.order_id or '?'}: no order id or version")
    session, now = uow.session, utc_now()
    _note_heard(uow, event.meta, now)
    await held_by.save_order_state(session, event.order_id, event.version, event.to_status, now)
    ended = event.to_status in holds.ORDER_ENDED
    for name in await held_by.parts_names_of(session, event.order_id):

        def lost(claims: Sequence[Claim]) -> list[Claim]:
            return holds.decided(claims, event.version, event.parts_attempt)[1]

        await _let_go(uow, name, Claiming(dropping=lost), now)
        won, _ = holds.decided(
            await held_by.claims_of(session, name), event.version, event.parts_attempt
        )
        await held_by.commit_claims(session, won)
        if ended and await _release(uow, name, [], now):
            metrics.HOLDS_LET_GO.labels("order_ended").inc()


async def _release(uow: UnitOfWork, order_id: str, line_ids: Sequence[str], now: datetime) -> bool:
    """The order needs these open lines (all: none named) no more: their holds go, with every
    claim on them."""
    lines = await order_parts_db.order_lines(uow.session, order_id)
    warehouse = await warehouses_db.get_warehouse(uow.session, lines[0].warehouse_id)
    assert warehouse is not None  # a line's warehouse is a foreign key
    return await change_held(
        uow,
        warehouse,
        order_id,
        line_ids,
        "release",
        release_rule,
        _posting(order_id, now),
        claiming=Claiming(clear=True),
    )


async def _orders_heard_until(session: AsyncConnection, now: datetime) -> datetime | None:
    """How far every orders event created before is surely handled here; None while that is
    not known, or while an orders event is failing (it may name an attempt: waited out)."""
    if await held_by.failing_events(session, ORDER_HOLDS_CONSUMER):
        return None
    heard = await held_by.heard_until(session, ORDERS_STREAM)
    return None if heard is None else heard.trusted(now)


async def let_go_stale(new_uow: NewUow, grace: timedelta, now: datetime | None = None) -> int:
    """Attempts that orders' events flowed past by `grace` without naming them let go of what
    only they claimed (the caller died between its call here and its commit, or its undo
    failed). While orders' events are stalled nothing goes. One transaction per order; how many
    orders' parts changed."""
    now = now or utc_now()
    async with new_uow() as uow:
        heard = await _orders_heard_until(uow.session, now)
        if heard is None:
            return 0
        names = await held_by.orders_with_stale_claims(uow.session, heard - grace)

    def stale(claims: Sequence[Claim]) -> list[Claim]:
        return [x for x in claims if x.stale(heard, grace)]

    changed = 0
    for name in names:
        async with new_uow() as uow:
            if await _let_go(uow, name, Claiming(dropping=stale), now):
                await uow.commit()
                changed += 1
                metrics.HOLDS_LET_GO.labels("attempt_never_written").inc()
    return changed


async def loose_holds(
    new_uow: NewUow, grace: timedelta, now: datetime | None = None
) -> list[LooseHold]:
    """Every open hold no live step of its order stands behind: the order ended, or only
    attempts orders' events flowed past by their grace, never written, claim it."""
    now = now or utc_now()
    found: list[LooseHold] = []
    async with new_uow() as uow:
        session = uow.session
        heard = await _orders_heard_until(session, now)
        for name in await held_by.orders_holding(session):
            state = await held_by.order_state(session, holds.order_root(name))
            found += holds.loose_holds(
                await order_parts_db.order_lines(session, name),
                await held_by.claims_of(session, name),
                state[1] if state else None,
                heard,
                grace,
            )
    metrics.LOOSE_HOLDS.set(len(found))
    return found


async def let_go_loose(new_uow: NewUow, grace: timedelta, now: datetime | None = None) -> int:
    """The operator's repair: attempts orders' events flowed past let go, and ended orders'
    holds too."""
    now = now or utc_now()
    changed = await let_go_stale(new_uow, grace, now)
    for hold in await loose_holds(new_uow, grace, now):
        name = hold.line.order_id
        async with new_uow() as uow:
            if await _release(uow, name, [hold.line.line_id], now):
                await uow.commit()
                changed += 1
                metrics.HOLDS_LET_GO.labels("order_ended").inc()
    await loose_holds(new_uow, grace, now)
    return changed
