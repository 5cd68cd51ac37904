"""SQLite for SQLAlchemy's asyncio engine, called straight from the event loop's thread.

aiosqlite runs each call on a worker thread and hands the result back through the loop: three
or four hand-offs per statement, each costing more CPU than the statement itself, since a
statement on a local WAL file takes microseconds and commits don't wait for the disk
(`synchronous=NORMAL`). Here each call runs in place, shaped like aiosqlite's API so that
SQLAlchemy's aiosqlite dialect drives it unchanged.

The price: a statement that waits holds up the loop. SQLite waits only for another writer, and
a service's file has one process writing it, whose writers take turns (`Database._turn`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any


class Cursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

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
        self._cursor.execute(sql, parameters)
        return self

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


class Connection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        # SQLAlchemy's dialect checks this to tell an open connection from a closed one.
        self._connection: sqlite3.Connection | None = connection
        self._tx = _InPlaceQueue()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connector(path: str, timeout: float) -> Callable[[], Awaitable[Connection]]:
    """What `create_async_engine(async_creator=...)` calls for each new connection."""

    async def connect() -> Connection:
        # No driver-managed transactions: SQLAlchemy begins them itself (BEGIN IMMEDIATE).
        # Any thread may close it: the pool can drop a connection from a finalizer.
        connection = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        return Connection(connection)

    return connect
