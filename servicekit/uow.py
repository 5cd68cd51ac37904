"""Unit of work: one business transaction in which state changes and the events they cause
(outbox rows) commit together or not at all.

Aggregates record plain domain events in their `pending_events` as their changes happen; a
handler tracks the aggregates it changed (`track`), and at commit the unit of work drains
them, turns each event into a subject and a message with the service's translator, and writes
them to the outbox in the same transaction. Handlers build no subjects or messages themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import idempotency, outbox
from servicekit.db import Database
from servicekit.timeutil import utc_now


class RecordsEvents(Protocol):
    """An aggregate that keeps the domain events its changes raised until they are sent: a
    list (a mutable aggregate, drained at commit) or a tuple (an immutable value, each change
    a new value carrying the events so far)."""

    @property
    def pending_events(self) -> Sequence[Any]: ...


Aggregate = TypeVar("Aggregate", bound=RecordsEvents)
Translate = Callable[[Any, Any], tuple[str, Message]]
"""A service's translator: (the aggregate as written, one of its events) -> (subject, message)."""


def collect(tracked: Sequence[tuple[RecordsEvents, Translate]]) -> list[tuple[str, Message]]:
    """The outbox rows of the tracked aggregates' pending events: aggregates in the order they
    were tracked, each one's events in the order it recorded them. An aggregate tracked twice
    is drained once; a mutable one's pending list is emptied, so nothing goes out twice."""
    rows: list[tuple[str, Message]] = []
    seen: set[int] = set()
    for aggregate, translate in tracked:
        if id(aggregate) in seen:
            continue
        seen.add(id(aggregate))
        pending = aggregate.pending_events
        rows.extend(translate(aggregate, event) for event in pending)
        if isinstance(pending, list):
            pending.clear()
    return rows


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
        self._tracked: list[tuple[RecordsEvents, Translate]] = []
        self._at_commit: dict[str, Callable[[], Awaitable[None]]] = {}

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

    def track(self, aggregate: Aggregate, translate: Translate) -> Aggregate:
        """Send the events `aggregate` records (before the commit) when this unit commits,
        each made a subject and a message by `translate`."""
        self._tracked.append((aggregate, translate))
        return aggregate

    def at_commit(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` in this unit just before it commits, once per `key`: a later one under the
        same key replaces the earlier. A consumer's batch of events writes a mark once, not
        once per event."""
        self._at_commit[key] = work

    async def emit(self, subject: str, event: Message) -> None:
        """Write one event to the outbox by hand (tests, and events no aggregate raises)."""
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
        for subject, message in collect(self._tracked):
            await self.emit(subject, message)
        self._tracked.clear()
        works, self._at_commit = list(self._at_commit.values()), {}
        for work in works:
            await work()
        request = idempotency.received_request()
        if result_id is not None and request is not None and self.handled_requests is not None:
            await idempotency.remember(
                self.session, self.handled_requests, request, result_id, utc_now()
            )
        await self.session.commit()
        if self._emitted:
            self._emitted = False
            self.on_commit()
