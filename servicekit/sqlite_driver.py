"""SQLite for SQLAlchemy's asyncio engine, called straight from the event loop's thread.

aiosqlite runs each call on a worker thread and hands the result back through the loop: three
or four hand-offs per statement, each costing more CPU than the statement itself, since a
statement on a local WAL file takes microseconds and commits don't wait for the disk
(`synchronous=NORMAL`). Here each call runs in place, shaped like aiosqlite's API so that
SQLAlchemy's aiosqlite dialect drives it unchanged.

A statement that waited here would hold up the whole loop. SQLite makes a statement wait only
for another connection's write lock, and our transactions take that lock up front (`BEGIN
IMMEDIATE`, outside any transaction). So SQLite's own busy wait is kept to a few milliseconds,
and a statement refused for a lock while no transaction is open is retried after an `await`ed
pause until `timeout`: the loop goes on serving while another process (a `make migrate`, a
second engine on the same file) holds the lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

# SQLite's own wait for a lock, blocking the loop: kept short, the rest is waited for politely.
BUSY_WAIT_SECONDS = 0.005
_FIRST_PAUSE_SECONDS = 0.002
_LONGEST_PAUSE_SECONDS = 0.05


class Cursor:
    __slots__ = ("_cursor", "_lock_timeout")

    def __init__(self, cursor: sqlite3.Cursor, lock_timeout: float) -> None:
        self._cursor = cursor
        self._lock_timeout = lock_timeout

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        deadline = time.monotonic() + self._lock_timeout
        pause = _FIRST_PAUSE_SECONDS
        while True:
            try:
                self._cursor.execute(sql, parameters)
                return self
            except sqlite3.OperationalError as error:
                # Only a statement outside a transaction is safe to run again: it changed nothing.
                if not _is_locked(error) or self._cursor.connection.in_transaction:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _InPlaceQueue:
    """SQLAlchemy sets `isolation_level` by putting (future, function) on aiosqlite's queue
    for its worker thread; here the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[None], Callable[[], None]]) -> None:
        future, function = item
        try:
            function()
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(None)


def _is_locked(error: sqlite3.OperationalError) -> bool:
    # The low byte is the primary code; extended codes (SQLITE_BUSY_SNAPSHOT, ...) share it.
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Connection:
    def __init__(self, connection: sqlite3.Connection, lock_timeout: float) -> None:
        self._conn = connection
        self._lock_timeout = lock_timeout
        # SQLAlchemy's dialect checks this to tell an open connection from a closed one.
        self._connection: sqlite3.Connection | None = connection
        self._tx = _InPlaceQueue()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self._conn.cursor(), self._lock_timeout)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate); closing twice is harmless."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connector(path: str, timeout: float) -> Callable[[], Awaitable[Connection]]:
    """What `create_async_engine(async_creator=...)` calls for each new connection; `timeout`
    is how long a statement may wait for another connection's lock before it fails."""

    async def connect() -> Connection:
        # No driver-managed transactions: SQLAlchemy begins them itself (BEGIN IMMEDIATE).
        # Any thread may close it: the pool can drop a connection from a finalizer.
        connection = sqlite3.connect(
            path, timeout=BUSY_WAIT_SECONDS, isolation_level=None, check_same_thread=False
        )
        return Connection(connection, timeout)

    return connect
