"""The database layer on whichever database the suite runs against (SQLite through aiosqlite,
or PostgreSQL): transactions commit or change nothing, constraint errors keep their type,
results stream, SQLite writers in one process take turns, no statement holds up the event
loop, and a database that is unavailable (lost under the pool, refusing connections, silent)
fails promptly with an error `lost_connection` recognises."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy import Column, Integer, String, Table, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from servicekit import db as db_module
from servicekit.db import Database, lost_connection, lost_race, new_metadata, upsert
from servicekit.testing import DatabaseTarget, database_with, free_port

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


async def test_a_postgresql_deadlock_victim_is_told_apart_as_a_lost_race(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite has one writer at a time and no deadlocks")
    async with db.session() as session:
        await session.execute(notes.insert(), [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}])
        await session.commit()
    both_hold_one = asyncio.Barrier(2)

    async def lock(first: int, then: int) -> None:
        async with db.session() as session:
            await session.execute(
                text("SELECT 1 FROM notes WHERE id = :id FOR UPDATE"), {"id": first}
            )
            await both_hold_one.wait()
            await session.execute(
                text("SELECT 1 FROM notes WHERE id = :id FOR UPDATE"), {"id": then}
            )
            await session.commit()

    outcomes = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
    [victim] = [x for x in outcomes if isinstance(x, BaseException)]
    assert lost_race(victim), repr(victim)
    assert not lost_connection(victim)
    assert not lost_race(OperationalError("SELECT 1", {}, ValueError("syntax")))


async def test_a_sqlite_writer_waits_for_another_connections_lock_without_blocking_the_loop(
    db: Database, db_target: DatabaseTarget
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only: one writer per file, the others wait for its lock")
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


async def test_a_long_sqlite_read_does_not_block_the_loop(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL statements wait on a socket, never in the loop")
    # Millions of rows counted by SQLite alone: long on any machine.
    long_read = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c"
    )

    async def read() -> int:
        async with db.session() as session:
            return int(await session.scalar(long_read) or 0)

    reading = asyncio.create_task(read())
    turns_while_reading = 0
    while not reading.done():
        await asyncio.sleep(0.005)
        if not reading.done():
            turns_while_reading += 1
    # A read run in the loop's thread would finish within the first turn.
    assert turns_while_reading >= 5
    assert await reading == 3_000_000


def sqlite_busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
        OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."),
        socket.gaierror(-2, "Name or service not known"),
        TimeoutError(),
        PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        OperationalError("SELECT 1", {}, ConnectionResetError(), connection_invalidated=True),
        OperationalError("INSERT", {}, sqlite_busy()),
    ],
    ids=repr,
)
def test_every_form_of_an_unavailable_database_is_recognised(error: Exception) -> None:
    assert lost_connection(error)
    # However the layers above wrap it.
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("handler failed") from inner
    except RuntimeError as outer:
        assert lost_connection(outer)
    assert lost_connection(ExceptionGroup("task group", [ValueError(), error]))


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad input"),
        FileNotFoundError(2, "No such file"),
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x")),
        asyncpg.UniqueViolationError("duplicate key value"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
    ids=repr,
)
def test_a_bug_or_a_bad_statement_is_not_taken_for_an_outage(error: Exception) -> None:
    assert not lost_connection(error)


async def test_a_sqlite_lock_held_past_the_timeout_is_unavailable(
    db: Database, db_target: DatabaseTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only: its write lock is one per file")
    monkeypatch.setattr(db_module, "SQLITE_LOCK_TIMEOUT_SECONDS", 0.2)
    impatient = Database(db_target.url)
    try:
        async with db.begin() as conn:
            await conn.execute(notes.insert(), {"id": 1, "text": "holding the lock"})
            with pytest.raises(OperationalError) as raised:
                await impatient.ping()
    finally:
        await impatient.dispose()
    assert lost_connection(raised.value), repr(raised.value)


async def test_a_postgresql_port_where_nothing_listens_fails_at_once_as_unavailable() -> None:
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    started = time.monotonic()
    try:
        with pytest.raises(Exception) as raised:
            await database.ping()
    finally:
        await database.dispose()
    assert lost_connection(raised.value), repr(raised.value)
    assert time.monotonic() - started < 2


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word, like a host that went away."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


async def test_a_postgresql_server_that_never_answers_fails_within_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "CONNECT_TIMEOUT_SECONDS", 0.5)
    database = Database(f"postgresql://postgres@127.0.0.1:{silent_server}/postgres")
    started = time.monotonic()
    try:
        with pytest.raises(Exception) as raised:
            await database.ping()
    finally:
        await database.dispose()
    assert lost_connection(raised.value), repr(raised.value)
    assert time.monotonic() - started < 5
