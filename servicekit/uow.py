"""Unit of work: one business transaction in which state changes and the events they cause
(outbox rows) commit together or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType

from google.protobuf.message import Message
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import outbox
from servicekit.db import Database


class UnitOfWork:
    def __init__(self, db: Database, outbox_table: Table, on_commit: Callable[[], None]) -> None:
        self.db = db
        self.outbox_table = outbox_table
        self.on_commit = on_commit
        self._emitted = False

    async def __aenter__(self) -> UnitOfWork:
        self._stack = contextlib.AsyncExitStack()
        self.session: AsyncConnection = await self._stack.enter_async_context(self.db.session())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Whatever was not committed is undone: an error changes nothing.
        await self.session.rollback()
        await self._stack.aclose()

    async def emit(self, subject: str, event: Message) -> None:
        await outbox.record(self.session, self.outbox_table, subject, event)
        self._emitted = True

    async def commit(self) -> None:
        await self.session.commit()
        if self._emitted:
            self._emitted = False
            self.on_commit()
