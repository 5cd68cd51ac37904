"""Reading and writing the read models. SQL lives here; rules live in domain/."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from services.reporting.adapters.orm import daily_store_counts
from services.reporting.domain.kpis import CountRow, DailyKey
from services.reporting.domain.period import Period


async def add_to_daily_counts(
    session: AsyncConnection, key: DailyKey, counts: Mapping[str, int]
) -> None:
    """Add to a day's counters (column → amount), creating the row on first use; one atomic
    upsert on both databases, so concurrent consumers never lose an increment."""
    statement = upsert(session, daily_store_counts).values(
        day=key.day,
        branch_id=key.branch_id,
        store_id=key.store_id,
        service_type=key.service_type,
        **counts,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["day", "branch_id", "store_id", "service_type"],
        set_={
            column: daily_store_counts.c[column] + statement.excluded[column] for column in counts
        },
    )
    await session.execute(statement)


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
