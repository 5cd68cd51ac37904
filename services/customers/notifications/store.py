"""The SQL of notifications and tracking: templates, the delivery log, the tracking read model,
and the one look-up into the customer records (who an order's customer is, and their consent)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert, upsert_on
from services.customers.adapters.orm import customer_orders, customers
from services.customers.notifications.delivery import FAILED, QUEUED, Recipient
from services.customers.notifications.tables import (
    notification_deliveries,
    notification_templates,
    tracking_orders,
    tracking_steps,
)

# --- templates ---------------------------------------------------------------------------------


async def kept_templates(session: AsyncConnection) -> dict[tuple[str, str], Any]:
    rows = await session.execute(select(notification_templates))
    return {(row.kind, row.language): row for row in rows}


async def kept_bodies(session: AsyncConnection) -> dict[tuple[str, str], str]:
    """The templates HQ changed, by (kind, language): a handful of rows, read once a round."""
    t = notification_templates.c
    return {
        (row.kind, row.language): row.body
        for row in await session.execute(select(t.kind, t.language, t.body))
    }


async def put_template(
    session: AsyncConnection, kind: str, language: str, body: str, by: str, at: datetime
) -> None:
    statement = upsert(session, notification_templates).values(
        kind=kind, language=language, body=body, updated_at=at, updated_by=by
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["kind", "language"],
            set_={"body": body, "updated_at": at, "updated_by": by},
        )
    )


# --- tracking ----------------------------------------------------------------------------------


# The statements every order event runs, built once (building costs more than running).
_TRACKING_OF_ORDER = select(tracking_orders).where(
    tracking_orders.c.order_id == bindparam("order_id")
)
_TRACKING_OF_ORDER_FOR_UPDATE = _TRACKING_OF_ORDER.with_for_update()
_ADD_TRACKING = tracking_orders.insert()
_UPDATE_TRACKING = update(tracking_orders).where(
    tracking_orders.c.order_id == bindparam("tracked_order_id")
)


async def tracking_of_order(
    session: AsyncConnection, order_id: str, for_update: bool = False
) -> Any:
    query = _TRACKING_OF_ORDER_FOR_UPDATE if for_update else _TRACKING_OF_ORDER
    return (await session.execute(query, {"order_id": order_id})).first()


async def tracking_by_token(session: AsyncConnection, token: str) -> Any:
    query = select(tracking_orders).where(tracking_orders.c.token == token)
    return (await session.execute(query)).first()


async def add_tracking(session: AsyncConnection, row: Mapping[str, Any]) -> None:
    await session.execute(_ADD_TRACKING, dict(row))


async def update_tracking(session: AsyncConnection, order_id: str, **changes: Any) -> None:
    await session.execute(_UPDATE_TRACKING, {"tracked_order_id": order_id, **changes})


@functools.cache
def _add_step(dialect_name: str) -> Any:
    return upsert_on(dialect_name, tracking_steps).on_conflict_do_nothing()


async def add_step(
    session: AsyncConnection, event_id: str, order_id: str, status: str, at: datetime
) -> None:
    await session.execute(
        _add_step(session.dialect.name),
        {"event_id": event_id, "order_id": order_id, "status": status, "at": at},
    )


async def steps_of(session: AsyncConnection, order_id: str) -> list[Any]:
    rows = await session.execute(
        select(tracking_steps.c.status, tracking_steps.c.at)
        .where(tracking_steps.c.order_id == order_id)
        .order_by(tracking_steps.c.at, tracking_steps.c.event_id)
    )
    return list(rows)


# --- the delivery log --------------------------------------------------------------------------


_NOTICE_OF_KIND = select(notification_deliveries.c.id).where(
    notification_deliveries.c.order_id == bindparam("order_id"),
    notification_deliveries.c.kind == bindparam("kind"),
)


async def notice_of_kind(session: AsyncConnection, order_id: str, kind: str) -> bool:
    found = await session.scalar(_NOTICE_OF_KIND, {"order_id": order_id, "kind": kind})
    return found is not None


@functools.cache
def _queue_notice(dialect_name: str) -> Any:
    return upsert_on(dialect_name, notification_deliveries).on_conflict_do_nothing()


async def queue_notice(
    session: AsyncConnection,
    *,
    id: str,
    order_id: str,
    order_number: str,
    event_id: str,
    kind: str,
    branch_id: str,
    store_id: str,
    values: Mapping[str, str],
    at: datetime,
) -> None:
    """One notice per (order, kind, event): a second try to queue the same is ignored."""
    await session.execute(
        _queue_notice(session.dialect.name),
        {
            "id": id,
            "order_id": order_id,
            "order_number": order_number,
            "event_id": event_id,
            "kind": kind,
            "branch_id": branch_id,
            "store_id": store_id,
            "template_values": json.dumps(dict(values), ensure_ascii=False),
            "status": QUEUED,
            "attempts": 0,
            "created_at": at,
            "next_attempt_at": at,
            "updated_at": at,
        },
    )


async def claim_due(
    session: AsyncConnection, now: datetime, until: datetime, limit: int
) -> list[str]:
    """Take up to `limit` notices due now for sending, in one statement, by moving their due
    time on to `until`: a notice another sender took meanwhile is no longer due, so replicas
    never send one notice twice (both databases; PostgreSQL skips rows another sender is
    taking instead of waiting for it)."""
    c = notification_deliveries.c
    due = (
        select(c.id)
        .where(c.status == QUEUED, c.next_attempt_at <= now)
        .order_by(c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(notification_deliveries)
        .where(c.id.in_(due.scalar_subquery()), c.status == QUEUED, c.next_attempt_at <= now)
        .values(next_attempt_at=until)
        .returning(c.id)
    )
    return sorted(result.scalars())


async def settle(session: AsyncConnection, delivery_id: str, **changes: Any) -> None:
    await session.execute(
        update(notification_deliveries)
        .where(notification_deliveries.c.id == delivery_id)
        .values(**changes)
    )


async def notices_of_orders(session: AsyncConnection, order_ids: list[str]) -> list[Any]:
    """What was sent (or meant) about these orders: for a personal-data export."""
    c = notification_deliveries.c
    query = (
        select(c.order_id, c.kind, c.language, c.status, c.text, c.created_at, c.sent_at)
        .where(c.order_id.in_(order_ids))
        .order_by(c.created_at, c.id)
    )
    return list(await session.execute(query)) if order_ids else []


async def forget_notices_of_orders(session: AsyncConnection, order_ids: list[str]) -> None:
    """Erasure: the notices of these orders keep their status for the record, but no longer
    who they went to or what they said; queued ones are never sent."""
    if not order_ids:
        return
    c = notification_deliveries.c
    await session.execute(
        update(notification_deliveries)
        .where(c.order_id.in_(order_ids))
        .values(customer_id=None, text=None)
    )
    await session.execute(
        update(notification_deliveries)
        .where(c.order_id.in_(order_ids), c.status == QUEUED)
        .values(status=FAILED, last_error="the customer's data was erased")
    )


_DELIVERY_AND_RECIPIENT = (
    select(
        notification_deliveries,
        customers.c.id.label("recipient_id"),
        customers.c.phone.label("recipient_phone"),
        customers.c.message_consent.label("recipient_consent"),
        customers.c.language.label("recipient_language"),
    )
    .select_from(
        notification_deliveries.outerjoin(
            customer_orders, customer_orders.c.order_id == notification_deliveries.c.order_id
        ).outerjoin(customers, customers.c.id == customer_orders.c.customer_id)
    )
    .where(notification_deliveries.c.id.in_(bindparam("delivery_ids", expanding=True)))
)


async def deliveries_and_recipients(
    session: AsyncConnection, delivery_ids: list[str]
) -> list[tuple[Any, Recipient | None]]:
    """Notices, each with its order's customer as the customer records know them now (None
    when not yet), in one round trip for the whole batch."""
    rows = await session.execute(_DELIVERY_AND_RECIPIENT, {"delivery_ids": delivery_ids})
    found = []
    for row in rows:
        recipient = (
            None
            if row.recipient_id is None
            else Recipient(
                row.recipient_id,
                row.recipient_phone,
                bool(row.recipient_consent),
                row.recipient_language,
            )
        )
        found.append((row, recipient))
    return found


@dataclass(frozen=True)
class DeliveryFilter:
    branch_id: str | None
    store_id: str | None
    order_id: str
    status: str
    after: tuple[datetime, str] | None
    limit: int


async def deliveries(session: AsyncConnection, wanted: DeliveryFilter) -> list[Any]:
    """Newest first, keyset paged on (created_at, id)."""
    table = notification_deliveries
    query = select(table)
    if wanted.branch_id:
        query = query.where(table.c.branch_id == wanted.branch_id)
    if wanted.store_id:
        query = query.where(table.c.store_id == wanted.store_id)
    if wanted.order_id:
        query = query.where(table.c.order_id == wanted.order_id)
    if wanted.status:
        query = query.where(table.c.status == wanted.status)
    if wanted.after is not None:
        at, last_id = wanted.after
        query = query.where(
            or_(table.c.created_at < at, and_(table.c.created_at == at, table.c.id < last_id))
        )
    query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(wanted.limit)
    return list(await session.execute(query))
