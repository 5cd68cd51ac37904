"""Async SQLAlchemy: one database per service (a SQLite file locally, PostgreSQL through
DATABASE_URL, optionally in a schema of its own through DB_SCHEMA)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Integer, MetaData, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    create_async_engine,
)

# How long a PostgreSQL connection attempt, or a wait for a free pooled connection, may take
# before the caller is told the database is unavailable: never a hang while it is down.
CONNECT_TIMEOUT_SECONDS = 5.0
POOL_TIMEOUT_SECONDS = 5.0
# How long a SQLite statement waits for another connection's write lock (on aiosqlite's
# worker thread, so the event loop goes on meanwhile).
SQLITE_LOCK_TIMEOUT_SECONDS = 30.0

# Autoincrementing 64-bit keys on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING)


def async_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, schema: str | None = None, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.schema = schema
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = make_url(self.url).database
            if not path or path == ":memory:":
                raise ValueError("a SQLite database here is a file: give its path")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # aiosqlite runs each statement on a worker thread of its own: a long read or a
            # wait for the write lock never holds up the loop. No driver-managed transactions:
            # SQLAlchemy begins them itself (BEGIN IMMEDIATE, see _tune_sqlite).
            kwargs["connect_args"] = {
                "timeout": SQLITE_LOCK_TIMEOUT_SECONDS,
                "isolation_level": None,
            }
        else:
            kwargs["pool_size"] = pool_size
            kwargs["pool_timeout"] = POOL_TIMEOUT_SECONDS
            # No ping before each checkout: it is a round trip per transaction. A connection
            # found dead fails its statement, the pool drops them all, and the caller gets a
            # 503 to retry (see grpc_server); idle ones are replaced before servers drop them.
            kwargs["pool_recycle"] = 1800
            connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_SECONDS}
            if schema:
                connect_args["server_settings"] = {"search_path": schema}
            kwargs["connect_args"] = connect_args
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._lock = asyncio.Lock() if self.is_sqlite else None

    async def prepare(self) -> None:
        """Create the service's schema on PostgreSQL when it has one of its own."""
        async with self.engine.begin() as conn:
            await self.create_schema(conn)

    async def create_schema(self, conn: AsyncConnection) -> None:
        """In the caller's transaction: the service's own PostgreSQL schema, if it has one."""
        if self.schema and not self.is_sqlite:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    def _turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        # SQLite has one writer at a time. Taking turns here, in the process that owns the
        # file, costs nothing; leaving it to SQLite's busy handler means sleeping in steps of
        # up to 100 ms while another transaction holds the lock. PostgreSQL needs no turns.
        return self._lock if self._lock is not None else contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one transaction, begun on first use and committed only when told
        to. Core statements only: there is no ORM identity map to pay for. On SQLite it holds
        the process's write turn until it closes: never open a second one inside it."""
        async with self._turn(), self.engine.connect() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction committed on success (Core statements)."""
        async with self._turn(), self.engine.begin() as connection:
            yield connection

    async def ping(self) -> None:
        async with self.begin() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


# SQLSTATEs that say the server is not there to serve: connection exceptions (class 08), too
# many connections, and a server shutting down, crashed or still starting up.
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")
# A deadlock broken by the server, a serialisation failure.
_LOST_RACE_SQLSTATES = ("40P01", "40001")
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EADDRNOTAVAIL,
}


def lost_connection(error: BaseException) -> bool:
    """The database is unavailable: down, restarting, failing over, refusing connections, out
    of connections, or too slow to connect or hand out a pooled connection. Nothing was
    committed, the pool drops dead connections and the next transaction opens fresh ones, so
    the caller should answer 503 or retry later, never treat it as a bug or a bad message.

    The driver's error may arrive bare or wrapped (SQLAlchemy's `orig`, `__cause__`, an
    exception group), so the whole chain is looked at."""
    return _anywhere_in(error, _unavailable)


def lost_race(error: BaseException) -> bool:
    """The database rolled the transaction back to break a deadlock with another one, or to
    keep a serialisable order: nothing of it stands and the same work tried again succeeds.
    Not a bug and not the request's fault."""
    return _anywhere_in(error, _rolled_back_for_another)


def _rolled_back_for_another(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) in _LOST_RACE_SQLSTATES


def _anywhere_in(error: BaseException, test: Callable[[BaseException], bool]) -> bool:
    pending = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if test(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for inner in (getattr(current, "orig", None), current.__cause__):
            if isinstance(inner, BaseException):
                pending.append(inner)
    return False


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (PoolTimeout, TimeoutError, ConnectionError, socket.gaierror)):
        return True
    if type(error) is OSError:
        # asyncio's "Multiple exceptions" (one per address tried) carries no errno.
        return error.errno is None or error.errno in _NETWORK_ERRNOS
    if isinstance(error, asyncpg.InterfaceError):
        return "closed" in str(error)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    # SQLite busy past the lock timeout: another process held the write lock all along.
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", 0)
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return False


def upsert(session: AsyncConnection, table: Table) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for whichever database the session is on
    (both dialects spell it the same way)."""
    return upsert_on(session.dialect.name, table)


def upsert_on(dialect_name: str, table: Table) -> Any:
    """`upsert` for a dialect named up front. A hot path builds its statement once per dialect
    (`functools.cache`) and passes values as bound parameters: building a statement costs
    more CPU than running it, and a kept one computes its cache key once."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can
        # fail with SQLITE_BUSY without waiting when another writer got in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
