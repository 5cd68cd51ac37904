"""The bulletins' tables (on customers' metadata) and their SQL: the bulletin, the stores of a
stores scope, and one read receipt per reader (the first read)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from servicekit.auth import AuthContext
from servicekit.db import upsert
from servicekit.timeutil import as_utc
from services.customers.adapters.orm import metadata
from services.customers.domain.bulletins import Attachment, Bulletin, Scope

bulletins = Table(
    "bulletins",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    # [{"title", "url"}, ...] as JSON: read with the bulletin, never queried by.
    Column("attachments", Text, nullable=False),
    Column("publisher_id", String(64), nullable=False),
    Column("publisher_branch_id", String(30), nullable=True),
    Column("scope_kind", String(10), nullable=False),
    Column("scope_branch_id", String(30), nullable=True),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    # The gateway's request id (<user>:<Idempotency-Key>) and the request's hash: a retry whose
    # reply was lost finds the bulletin its first try published.
    Column("request_id", String(255), nullable=True, unique=True),
    Column("request_hash", String(64), nullable=True),
    Index("ix_bulletins_published", "published_at", "id"),
    Index("ix_bulletins_scope", "scope_kind", "scope_branch_id"),
)

bulletin_stores = Table(
    "bulletin_stores",
    metadata,
    Column("bulletin_id", String(36), ForeignKey("bulletins.id"), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("branch_id", String(30), nullable=False),
    Column("position", Integer, nullable=False),
    Index("ix_bulletin_stores_store", "store_id", "bulletin_id"),
    Index("ix_bulletin_stores_branch", "branch_id", "bulletin_id"),
)

bulletin_reads = Table(
    "bulletin_reads",
    metadata,
    Column("bulletin_id", String(36), ForeignKey("bulletins.id"), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("read_at", DateTime(timezone=True), nullable=False),
    Index("ix_bulletin_reads_user", "user_id", "bulletin_id"),
)


async def add(
    session: AsyncConnection,
    bulletin: Bulletin,
    request_id: str | None = None,
    request_hash: str | None = None,
) -> None:
    scope = bulletin.scope
    await session.execute(
        bulletins.insert().values(
            id=bulletin.id,
            kind=bulletin.kind,
            title=bulletin.title,
            body=bulletin.body,
            attachments=json.dumps(
                [{"title": a.title, "url": a.url} for a in bulletin.attachments],
                ensure_ascii=False,
            ),
            publisher_id=bulletin.publisher_id,
            publisher_branch_id=bulletin.publisher_branch_id,
            scope_kind=scope.kind,
            scope_branch_id=scope.branch_id,
            published_at=bulletin.published_at,
            expires_at=bulletin.expires_at,
            request_id=request_id,
            request_hash=request_hash,
        )
    )
    if scope.stores:
        await session.execute(
            bulletin_stores.insert(),
            [
                {"bulletin_id": bulletin.id, "store_id": store, "branch_id": branch, "position": i}
                for i, (branch, store) in enumerate(scope.stores)
            ],
        )


async def published_for_request(session: AsyncConnection, request_id: str) -> Any:
    """(id, request_hash) of the bulletin this request id published, or None."""
    query = select(bulletins.c.id, bulletins.c.request_hash).where(
        bulletins.c.request_id == request_id
    )
    return (await session.execute(query)).first()


def _bulletin(row: Any, stores: Sequence[tuple[str, str]]) -> Bulletin:
    return Bulletin(
        id=row.id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        attachments=tuple(Attachment(a["title"], a["url"]) for a in json.loads(row.attachments)),
        publisher_id=row.publisher_id,
        publisher_branch_id=row.publisher_branch_id,
        scope=Scope(row.scope_kind, row.scope_branch_id, tuple(stores)),
        published_at=as_utc(row.published_at),
        expires_at=as_utc(row.expires_at) if row.expires_at is not None else None,
    )


async def _stores_of(session: AsyncConnection, ids: Sequence[str]) -> dict[str, list[Any]]:
    """The stores of the stores-scoped ones among these bulletins, in the order named."""
    if not ids:
        return {}
    query = (
        select(bulletin_stores)
        .where(bulletin_stores.c.bulletin_id.in_(ids))
        .order_by(bulletin_stores.c.bulletin_id, bulletin_stores.c.position)
    )
    found: dict[str, list[Any]] = {}
    for row in await session.execute(query):
        found.setdefault(row.bulletin_id, []).append((row.branch_id, row.store_id))
    return found


async def get(session: AsyncConnection, bulletin_id: str) -> Bulletin | None:
    row = (await session.execute(select(bulletins).where(bulletins.c.id == bulletin_id))).first()
    if row is None:
        return None
    stores = await _stores_of(session, [row.id]) if row.scope_kind == "stores" else {}
    return _bulletin(row, stores.get(row.id, []))


async def read_at(session: AsyncConnection, bulletin_id: str, user_id: str) -> datetime | None:
    query = select(bulletin_reads.c.read_at).where(
        bulletin_reads.c.bulletin_id == bulletin_id, bulletin_reads.c.user_id == user_id
    )
    found = await session.scalar(query)
    return as_utc(found) if found is not None else None


async def mark_read(
    session: AsyncConnection, bulletin_id: str, user_id: str, now: datetime
) -> None:
    """The first read is kept: a second (or a concurrent) one changes nothing."""
    statement = upsert(session, bulletin_reads).values(
        bulletin_id=bulletin_id, user_id=user_id, read_at=now
    )
    await session.execute(
        statement.on_conflict_do_nothing(index_elements=["bulletin_id", "user_id"])
    )


async def reads_of(session: AsyncConnection, bulletin_id: str) -> dict[str, datetime]:
    query = select(bulletin_reads.c.user_id, bulletin_reads.c.read_at).where(
        bulletin_reads.c.bulletin_id == bulletin_id
    )
    return {row.user_id: as_utc(row.read_at) for row in await session.execute(query)}


def _visible_to(auth: AuthContext) -> ColumnElement[bool]:
    """domain.bulletins.sees, in SQL: what the caller's unit is addressed or oversees."""
    if auth.level == "hq":
        return literal(True)
    mine = bulletins.c.publisher_id == auth.user_id
    chain = bulletins.c.scope_kind == "chain"
    branch = and_(bulletins.c.scope_kind == "branch", bulletins.c.scope_branch_id == auth.branch_id)
    if auth.level == "branch":
        stores = exists().where(
            bulletin_stores.c.bulletin_id == bulletins.c.id,
            bulletin_stores.c.branch_id == auth.branch_id,
        )
    else:
        stores = exists().where(
            bulletin_stores.c.bulletin_id == bulletins.c.id,
            bulletin_stores.c.store_id == auth.store_id,
            bulletin_stores.c.branch_id == auth.branch_id,
        )
    return or_(mine, chain, branch, and_(bulletins.c.scope_kind == "stores", stores))


def _unexpired(now: datetime) -> ColumnElement[bool]:
    return or_(bulletins.c.expires_at.is_(None), bulletins.c.expires_at > now)


async def list_for(
    session: AsyncConnection,
    auth: AuthContext,
    now: datetime,
    unread_only: bool,
    after: tuple[int, datetime, str] | None,
    limit: int,
) -> list[tuple[Bulletin, datetime | None]]:
    """The caller's unexpired bulletins with their read time: unread first, then newest first;
    a page of `limit` after the row keyed (read flag, published_at, id)."""
    read = bulletin_reads.c.read_at
    is_read = case((read.is_(None), 0), else_=1)
    joined = bulletins.outerjoin(
        bulletin_reads,
        and_(
            bulletin_reads.c.bulletin_id == bulletins.c.id, bulletin_reads.c.user_id == auth.user_id
        ),
    )
    query = (
        select(bulletins, read.label("read_at"), is_read.label("is_read"))
        .select_from(joined)
        .where(_visible_to(auth), _unexpired(now))
    )
    if unread_only:
        query = query.where(read.is_(None))
    if after is not None:
        flag, published_at, last_id = after
        query = query.where(
            or_(
                is_read > flag,
                and_(
                    is_read == flag,
                    or_(
                        bulletins.c.published_at < published_at,
                        and_(bulletins.c.published_at == published_at, bulletins.c.id < last_id),
                    ),
                ),
            )
        )
    query = query.order_by(is_read, bulletins.c.published_at.desc(), bulletins.c.id.desc()).limit(
        limit
    )
    rows = (await session.execute(query)).all()
    stores = await _stores_of(session, [r.id for r in rows if r.scope_kind == "stores"])
    return [
        (
            _bulletin(row, stores.get(row.id, [])),
            as_utc(row.read_at) if row.read_at is not None else None,
        )
        for row in rows
    ]


async def unread_count(session: AsyncConnection, auth: AuthContext, now: datetime) -> int:
    read = exists().where(
        bulletin_reads.c.bulletin_id == bulletins.c.id, bulletin_reads.c.user_id == auth.user_id
    )
    query = (
        select(func.count()).select_from(bulletins).where(_visible_to(auth), _unexpired(now), ~read)
    )
    return int(await session.scalar(query) or 0)
