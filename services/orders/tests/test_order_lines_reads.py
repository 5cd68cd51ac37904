"""An order's part lines and payments live in their own tables, read in a second statement: a
change committed between the order's row and that statement is caught by the version the
statement reads with them, and the order is read again; one that never settles is a 503."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from servicekit import migrations
from servicekit.db import Database
from servicekit.errors import ServiceUnavailable
from servicekit.testing import DatabaseTarget
from services.orders.adapters import repository
from services.orders.adapters.orm import repair_orders
from services.orders.service import SPEC
from services.orders.tests.test_settlement import order

pytestmark = pytest.mark.service("orders")


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    database = Database(db_target.url, db_target.schema)
    await migrations.upgrade(database, SPEC.migrations_dir)
    yield database
    await database.dispose()


async def test_a_change_between_the_two_reads_is_read_again(db: Database) -> None:
    made = replace(order(), id=str(uuid.uuid4()))
    async with db.session() as session:
        await repository.add(session, made, "k")
        await session.commit()
    calls = 0

    async with db.session() as session:

        async def rows() -> Sequence[Any]:
            nonlocal calls
            calls += 1
            found = (
                await session.execute(select(repair_orders).where(repair_orders.c.id == made.id))
            ).all()
            if calls == 1:  # another step lands right after the order's row was read
                await session.execute(
                    update(repair_orders)
                    .where(repair_orders.c.id == made.id)
                    .values(version=repair_orders.c.version + 1)
                )
            return found

        [found], _ = await repository.read_orders(session, rows)
    assert calls == 2
    assert found.version == 2
    assert [x.line_id for x in found.work.lines] == ["l-1", "l-2", "l-3"]


async def test_an_order_that_never_settles_is_a_503(db: Database) -> None:
    made = replace(order(), id=str(uuid.uuid4()))
    async with db.session() as session:
        await repository.add(session, made, "k")
        stale = (
            await session.execute(select(repair_orders).where(repair_orders.c.id == made.id))
        ).all()
        await session.execute(
            update(repair_orders).where(repair_orders.c.id == made.id).values(version=9)
        )

        async def rows() -> Sequence[Any]:
            return stale

        with pytest.raises(ServiceUnavailable):
            await repository.read_orders(session, rows)
