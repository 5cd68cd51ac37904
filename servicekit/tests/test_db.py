"""The database layer on whichever database the suite runs against (SQLite through the
in-loop driver, or PostgreSQL): transactions commit or change nothing, constraint errors keep
their type, results stream, SQLite writers in one process take turns, and a PostgreSQL
connection lost under the pool costs one failed transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, String, Table, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from servicekit.db import Database, lost_connection, new_metadata, upsert
from servicekit.testing import DatabaseTarget, database_with

metadata = new_metadata()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("text", String(50), nullable=False),
    Column("hits", Integer, nullable=False, default=0),
)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


async def count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(notes)) or 0)


async def test_a_session_commits_only_when_told(db: Database) -> None:
    async with db.session() as session:
        await session.execute(notes.insert(), {"id": 1, "text": "kept"})
        await session.commit()
    async with db.session() as session:
        await session.execute(notes.insert(), {"id": 2, "text": "never committed"})
    assert await count(db) == 1


async def test_a_failed_statement_keeps_its_type_and_the_transaction_changes_nothing(
    db: Database,
) -> None:
    async with db.session() as session:
        await session.execute(notes.insert(), {"id": 1, "text": "first"})
        await session.commit()
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(notes.insert(), {"id": 2, "text": "second"})
            await conn.execute(notes.insert(), {"id": 1, "text": "clash"})
    assert await count(db) == 1


async def test_upsert_returning_and_streamed_results(db: Database) -> None:
    async with db.begin() as conn:
        statement = upsert(conn, notes).values(id=7, text="x", hits=1)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={"hits": notes.c.hits + 1}
        ).returning(notes.c.hits)
        assert (await conn.execute(statement)).scalar_one() == 1
        assert (await conn.execute(statement)).scalar_one() == 2
        await conn.execute(notes.insert(), [{"id": i, "text": f"n{i}"} for i in range(100, 150)])
    async with db.session() as session:
        streamed = await session.stream(select(notes.c.id).where(notes.c.id >= 100))
        ids = [row.id async for row in streamed]
    assert sorted(ids) == list(range(100, 150))


async def test_concurrent_writers_in_one_process_take_turns(db: Database) -> None:
    async def writer(first: int) -> None:
        for i in range(first, first + 20):
            async with db.begin() as conn:
                await conn.execute(notes.insert(), {"id": i, "text": "w"})
                await asyncio.sleep(0)  # let the other writers try to get in meanwhile

    await asyncio.gather(*(writer(n * 100) for n in range(5)))
    assert await count(db) == 100


async def test_a_dead_postgresql_connection_fails_once_as_lost_then_the_pool_recovers(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: a SQLite file has no server to lose")
    async with db.session() as session:
        backend = await session.scalar(text("SELECT pg_backend_pid()"))
    admin = create_async_engine(db.url, poolclass=NullPool)
    async with admin.begin() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    await admin.dispose()

    with pytest.raises(DBAPIError) as raised:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
    assert lost_connection(raised.value)
    assert await count(db) == 0  # the next transaction connects afresh


async def test_a_sqlite_writer_waits_for_another_connections_lock_without_blocking_the_loop(
    db: Database, db_target: DatabaseTarget
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only: its statements run in the event loop's thread")
    other = Database(db_target.url)  # a second engine on the same file, like a `make migrate`
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def hold_the_lock(opened: asyncio.Event) -> None:
        async with other.begin() as conn:
            await conn.execute(notes.insert(), {"id": 1, "text": "first"})
            opened.set()
            await asyncio.sleep(0.3)

    opened = asyncio.Event()
    ticking = asyncio.create_task(ticker())
    holder = asyncio.create_task(hold_the_lock(opened))
    try:
        await opened.wait()
        before = ticks
        async with db.begin() as conn:  # waits for the holder's commit
            await conn.execute(notes.insert(), {"id": 2, "text": "second"})
        assert ticks - before >= 10  # the loop went on meanwhile (0.3 s of 10 ms ticks)
        await holder
    finally:
        ticking.cancel()
        await other.dispose()
    assert await count(db) == 2
