"""Reading and writing the read models. SQL lives here; rules live in domain/."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert_on
from services.reporting.adapters.orm import daily_store_counts
from services.reporting.domain.kpis import CountRow, DailyKey
from services.reporting.domain.period import Period


async def add_to_daily_counts(
    session: AsyncConnection, key: DailyKey, counts: Mapping[str, int]
) -> None:
    """Add to a day's counters (column → amount), creating the row on first use; one atomic
    upsert on both databases, so concurrent consumers never lose an increment."""
    statement = _add_counts(session.dialect.name, tuple(sorted(counts)))
    await session.execute(
        statement,
        {
            "day": key.day,
            "branch_id": key.branch_id,
            "store_id": key.store_id,
            "service_type": key.service_type,
            **counts,
        },
    )


@functools.cache
def _add_counts(dialect_name: str, columns: tuple[str, ...]) -> Any:
    """The upsert adding to these counter columns, built once (a consumer hot path)."""
    keys = ("day", "branch_id", "store_id", "service_type")
    statement = upsert_on(dialect_name, daily_store_counts).values(
        {name: bindparam(name) for name in (*keys, *columns)}
    )
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: daily_store_counts.c[name] + statement.excluded[name] for name in columns},
    )


async def orders_received_counts(
    session: AsyncConnection, branch_id: str | None, store_id: str | None, period: Period
) -> list[CountRow]:
    """Orders received per store and service type in the scope and period."""
    c = daily_store_counts.c
    conditions = [c.day >= period.first, c.day <= period.last]
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if store_id:
        conditions.append(c.store_id == store_id)
    rows = await session.execute(
        select(c.branch_id, c.store_id, c.service_type, func.sum(c.orders_received))
        .where(*conditions)
        .group_by(c.branch_id, c.store_id, c.service_type)
    )
    return [CountRow(branch, store, kind, int(total)) for branch, store, kind, total in rows]
