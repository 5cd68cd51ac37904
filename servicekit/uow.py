"""Unit of work: one business transaction in which state changes and the events they cause
(outbox rows) commit together or not at all."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import TracebackType

from google.protobuf.message import Message
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import idempotency, outbox
from servicekit.db import Database
from servicekit.timeutil import utc_now


class UnitOfWork:
    def __init__(
        self,
        db: Database,
        outbox_table: Table,
        on_commit: Callable[[], None],
        handled_requests: Table | None = None,
    ) -> None:
        self.db = db
        self.outbox_table = outbox_table
        self.on_commit = on_commit
        self.handled_requests = handled_requests
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

    async def earlier_result(self) -> str | None:
        """What an earlier, committed try of the request being served made (its reply was
        lost), or None. Only for services that keep the handled-requests log, and only for
        requests that came with a request id."""
        request = idempotency.received_request()
        if request is None or self.handled_requests is None:
            return None
        return await idempotency.earlier_result(
            self.session, self.handled_requests, request, utc_now()
        )

    async def commit(self, result_id: str | None = None) -> None:
        """Commit; `result_id` names what the request made, so a retry of it finds it."""
        request = idempotency.received_request()
        if result_id is not None and request is not None and self.handled_requests is not None:
            await idempotency.remember(
                self.session, self.handled_requests, request, result_id, utc_now()
            )
        await self.session.commit()
        if self._emitted:
            self._emitted = False
            self.on_commit()
