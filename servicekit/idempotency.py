"""One lifetime for an idempotency key from the gateway down to the services, the hash of a
request that tells a retry (same request) from a reused key (another request), and the
handled-requests log (已处理请求) with which a service answers a retry with what the first try
did rather than doing it again.

The gateway turns a client's Idempotency-Key into a request id (`<user>:<key>`) that travels
as gRPC metadata on the calls it makes for that request. A service that keeps the log records
the request id with the id of what it created in the same transaction as the change, so a try
whose reply was lost (the service or the gateway died after the commit) is found again."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.protobuf.message import Message
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.errors import Conflict, invalid
from servicekit.timeutil import as_utc

KEY_LIFETIME = timedelta(hours=24)
"""How long a key is honoured: a retry within it gets the first answer; after it the key is
free again."""

REQUEST_ID_METADATA = "x-request-id"
MAX_REQUEST_ID = 255

# The key and the hash themselves are not part of what is hashed.
_NOT_HASHED = ("request_id", "request_hash")


def request_hash(message: Message) -> str:
    """sha256 (hex) of the request's deterministic protobuf encoding, without its request id."""
    canonical = type(message)()
    canonical.CopyFrom(message)
    for name in _NOT_HASHED:
        if name in canonical.DESCRIPTOR.fields_by_name:
            canonical.ClearField(name)
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()


@dataclass(frozen=True)
class ReceivedRequest:
    """A request id that came with the call being served, for the method it named, and the
    hash of the request message it came with."""

    request_id: str
    method: str
    request_hash: str


_to_pass: ContextVar[str | None] = ContextVar("request_id_to_pass", default=None)
_received: ContextVar[ReceivedRequest | None] = ContextVar("received_request", default=None)


@contextlib.contextmanager
def passing_request_id(request_id: str) -> Iterator[None]:
    """gRPC calls made inside carry `request_id` (the gateway, while serving one keyed POST)."""
    reset = _to_pass.set(request_id)
    try:
        yield
    finally:
        _to_pass.reset(reset)


def request_id_to_pass() -> str | None:
    return _to_pass.get()


def hold_received(request: ReceivedRequest | None) -> object:
    return _received.set(request)


def release_received(token: object) -> None:
    _received.reset(token)  # type: ignore[arg-type]


def received_request() -> ReceivedRequest | None:
    return _received.get()


def check_request_id(request_id: str) -> None:
    if not 0 < len(request_id) <= MAX_REQUEST_ID:
        raise invalid(REQUEST_ID_METADATA, f"must be 1 to {MAX_REQUEST_ID} characters")


def handled_requests_table(metadata: MetaData) -> Table:
    return Table(
        "handled_requests",
        metadata,
        Column("request_id", String(MAX_REQUEST_ID), nullable=False),
        Column("method", String(100), nullable=False),
        Column("request_hash", String(64), nullable=False),
        # What the first try made or changed (a document id): a retry answers with its state.
        Column("result_id", String(100), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("request_id", "method"),
        Index("ix_handled_requests_handled_at", "handled_at"),
    )


async def earlier_result(
    session: AsyncConnection, table: Table, request: ReceivedRequest, now: datetime
) -> str | None:
    """What a committed try of this request made; None for a first try or an expired key.
    The same request id with another request is refused."""
    where = (table.c.request_id == request.request_id, table.c.method == request.method)
    row = (await session.execute(select(table).where(*where))).first()
    if row is None:
        return None
    if as_utc(row.handled_at) < now - KEY_LIFETIME:
        await session.execute(delete(table).where(*where))
        return None
    if row.request_hash != request.request_hash:
        raise invalid("Idempotency-Key", "already used with a different request")
    return str(row.result_id)


async def remember(
    session: AsyncConnection,
    table: Table,
    request: ReceivedRequest,
    result_id: str,
    now: datetime,
) -> None:
    """Record in the request's own transaction what it made. Another try of it that committed
    meanwhile makes this one a Conflict, and the transaction rolls back."""
    try:
        await session.execute(
            insert(table).values(
                request_id=request.request_id,
                method=request.method,
                request_hash=request.request_hash,
                result_id=result_id,
                handled_at=now,
            )
        )
    except IntegrityError as error:
        raise Conflict("this request is being handled by another try; retry shortly") from error


async def prune(session: AsyncConnection, table: Table, before: datetime) -> int:
    result = await session.execute(delete(table).where(table.c.handled_at < before))
    return int(result.rowcount or 0)
