"""Reading and writing whose an order line's hold is (domain/holds.py), and each order's
newest version and status as its events told. Claims are read and written under the locks of
the order's lines (order_parts.order_lines(lock=True)): one lock order for everyone. And how
far orders' events have flowed in (events_heard)."""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert, upsert_on
from servicekit.inbox import failures_table
from servicekit.timeutil import as_utc
from services.inventory.adapters.orm import (
    events_heard,
    inbox,
    order_part_claims,
    order_part_lines,
    order_states,
)
from services.inventory.domain.holds import Claim, HeardUntil, order_root

consumer_failures = failures_table(inbox.metadata)


def _claim_from_row(row: Row[tuple[object, ...]]) -> Claim:
    m = row._mapping
    return Claim(
        order_id=m["order_id"],
        line_id=m["line_id"],
        attempt_id=m["attempt_id"],
        order_version=m["order_version"],
        claimed_at=as_utc(m["claimed_at"]),
        committed=m["committed"],
    )


async def claims_of(session: AsyncConnection, order_id: str) -> list[Claim]:
    """The claims on one order's (one store's) lines."""
    c = order_part_claims.c
    query = select(order_part_claims).where(c.order_id == order_id)
    return [_claim_from_row(row) for row in await session.execute(query)]


async def claims_of_order(session: AsyncConnection, root: str) -> list[Claim]:
    """The claims on every store's lines of an order."""
    c = order_part_claims.c
    query = select(order_part_claims).where(c.order_root == root)
    return [_claim_from_row(row) for row in await session.execute(query)]


async def add_claims(session: AsyncConnection, claims: Collection[Claim]) -> None:
    if not claims:
        return
    await session.execute(
        order_part_claims.insert(),
        [
            {
                "order_id": x.order_id,
                "line_id": x.line_id,
                "attempt_id": x.attempt_id,
                "order_root": order_root(x.order_id),
                "order_version": x.order_version,
                "claimed_at": x.claimed_at,
                "committed": x.committed,
            }
            for x in claims
        ],
    )


async def commit_claims(session: AsyncConnection, claims: Collection[Claim]) -> None:
    c = order_part_claims.c
    for x in claims:
        await session.execute(
            update(order_part_claims)
            .where(c.order_id == x.order_id, c.line_id == x.line_id, c.attempt_id == x.attempt_id)
            .values(committed=True)
        )


async def drop_claims(session: AsyncConnection, claims: Collection[Claim]) -> None:
    c = order_part_claims.c
    for x in claims:
        await session.execute(
            delete(order_part_claims).where(
                c.order_id == x.order_id, c.line_id == x.line_id, c.attempt_id == x.attempt_id
            )
        )


async def drop_line_claims(
    session: AsyncConnection, order_id: str, line_ids: Collection[str]
) -> None:
    """Every claim on these lines: the order let them go itself."""
    if not line_ids:
        return
    c = order_part_claims.c
    await session.execute(
        delete(order_part_claims).where(c.order_id == order_id, c.line_id.in_(list(line_ids)))
    )


async def parts_names_of(session: AsyncConnection, root: str) -> list[str]:
    """Inventory's names for an order's parts: the order's own, and `<order>/<store>` for each
    partner store's."""
    o = order_part_lines.c
    query = (
        select(o.order_id)
        .where(or_(o.order_id == root, o.order_id.like(f"{root}/%")))
        .distinct()
        .order_by(o.order_id)
    )
    return [str(x) for x in (await session.scalars(query))]


async def orders_with_stale_claims(session: AsyncConnection, before: datetime) -> list[str]:
    """Names of orders' parts with a claim of an attempt not known to be written since
    before `before`."""
    c = order_part_claims.c
    query = (
        select(c.order_id)
        .where(and_(c.committed.is_(False), c.claimed_at <= before))
        .distinct()
        .order_by(c.order_id)
    )
    return [str(x) for x in (await session.scalars(query))]


async def orders_holding(session: AsyncConnection) -> list[str]:
    """Names of orders' parts with an open line (held, or waiting for parts)."""
    o = order_part_lines.c
    query = (
        select(o.order_id)
        .where(o.status.in_(("reserved", "short")))
        .distinct()
        .order_by(o.order_id)
    )
    return [str(x) for x in (await session.scalars(query))]


async def order_state(session: AsyncConnection, root: str) -> tuple[int, str] | None:
    s = order_states.c
    row = (
        await session.execute(select(s.version, s.status).where(s.order_id == root))
    ).one_or_none()
    return None if row is None else (int(row.version), str(row.status))


async def save_order_state(
    session: AsyncConnection, root: str, version: int, status: str, now: datetime
) -> None:
    """The order's newest version and status; an older event (redelivered late) changes
    nothing."""
    known = await order_state(session, root)
    if known is not None and known[0] >= version:
        return
    values = {"version": version, "status": status, "updated_at": now}
    await session.execute(
        upsert(session, order_states)
        .values(order_id=root, **values)
        .on_conflict_do_update(index_elements=["order_id"], set_=values)
    )


async def heard_until(session: AsyncConnection, stream: str) -> HeardUntil | None:
    """How far `stream`'s events have flowed in; None: none handled yet."""
    h = events_heard.c
    row = (
        await session.execute(
            select(h.heard_until, h.noted_at, h.settled_until).where(h.stream == stream)
        )
    ).one_or_none()
    if row is None:
        return None
    settled = None if row.settled_until is None else as_utc(row.settled_until)
    return HeardUntil(as_utc(row.heard_until), as_utc(row.noted_at), settled)


async def save_heard(
    session: AsyncConnection, stream: str, created_at: datetime, settle: timedelta, now: datetime
) -> None:
    """An event of `stream` created at `created_at` was handled at `now`; an older one
    (redelivered, or handled by another replica at once) moves nothing back. The mark that
    stood for `settle` already is kept as the settled one. One statement, so replicas handling
    events at once never lose an advance."""
    await session.execute(
        _save_heard(session.dialect.name),
        {"stream": stream, "heard_until": created_at, "now": now, "settled_before": now - settle},
    )


@functools.cache
def _save_heard(dialect_name: str) -> Any:
    """Built once per dialect: every order event runs it (building costs more than running)."""
    h = events_heard.c
    now = bindparam("now", type_=h.noted_at.type)
    statement = upsert_on(dialect_name, events_heard).values(
        stream=bindparam("stream"),
        heard_until=bindparam("heard_until"),
        noted_at=now,
        settled_until=None,
    )
    newer = statement.excluded.heard_until
    advances = newer > h.heard_until
    settled_before = bindparam("settled_before", type_=h.noted_at.type)
    return statement.on_conflict_do_update(
        index_elements=["stream"],
        set_={
            "settled_until": case(
                (h.noted_at <= settled_before, h.heard_until), else_=h.settled_until
            ),
            "heard_until": case((advances, newer), else_=h.heard_until),
            "noted_at": case((advances, now), else_=h.noted_at),
        },
    )


async def failing_events(session: AsyncConnection, consumer: str) -> int:
    """How many of `consumer`'s events failed and are still to be retried (neither handled
    since nor given up on: a dead letter forgets its failures)."""
    f, i = consumer_failures.c, inbox.c
    handled = select(i.event_id).where(i.consumer == consumer, i.event_id == f.event_id)
    query = (
        select(func.count())
        .select_from(consumer_failures)
        .where(f.consumer == consumer, ~handled.exists())
    )
    return int(await session.scalar(query) or 0)
