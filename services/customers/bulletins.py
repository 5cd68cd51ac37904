"""Use cases of bulletins (内部通知 / 技术公告 / 培训): publish to a scope, list one's own (unread
first), read one, mark it read, and see its receipts. The rules are in domain/bulletins.py, the
SQL in adapters/bulletins.py; users live in the gateway, which names the scope's users when it
asks for receipts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, NotFound, invalid
from servicekit.idempotency import KEY_LIFETIME, ReceivedRequest
from servicekit.paging import decode_page_token, encode_page_token, page_size
from servicekit.uow import UnitOfWork
from services.customers.adapters import bulletins as store
from services.customers.domain import bulletins as rules
from services.customers.domain.bulletins import Bulletin, Member

NewUow = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]

DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True)
class Seen:
    """A bulletin as one caller sees it: with their first read, if any."""

    bulletin: Bulletin
    read_at: datetime | None


@dataclass(frozen=True)
class Page:
    items: list[Seen]
    next_token: str
    unread_count: int


@dataclass(frozen=True)
class Receipts:
    bulletin_id: str
    read: list[tuple[str, datetime]]  # (user id, first read), first reader first
    not_read: list[str]
    audience: int


@dataclass(frozen=True)
class Draft:
    """What the publisher sent, before the rules looked at it."""

    kind: str
    title: str
    body: str
    attachments: Sequence[tuple[str, str]]
    scope_kind: str
    scope_branch_id: str
    scope_stores: Sequence[tuple[str, str]]
    expires_at: datetime | None


async def publish(
    new_uow: NewUow,
    auth: AuthContext,
    draft: Draft,
    now: datetime,
    request: ReceivedRequest | None = None,
) -> Seen:
    """Publish, once per request id: a retry whose reply was lost gets the first bulletin."""
    scope = rules.scope_from(draft.scope_kind, draft.scope_branch_id, draft.scope_stores)
    bulletin = rules.new_bulletin(
        bulletin_id=str(uuid.uuid4()),
        auth=auth,
        kind=draft.kind,
        title=draft.title,
        body=draft.body,
        attachments=draft.attachments,
        scope=scope,
        now=now,
        expires_at=draft.expires_at,
    )
    async with new_uow() as uow:
        request_id = request.request_id if request is not None else None
        if request is not None:
            earlier = await store.published_for_request(uow.session, request.request_id)
            if earlier is not None:
                if earlier.request_hash != request.request_hash:
                    raise invalid("Idempotency-Key", "already used with a different request")
                found = await store.get(uow.session, earlier.id)
                if found is not None and found.published_at > now - KEY_LIFETIME:
                    return Seen(found, await store.read_at(uow.session, found.id, auth.user_id))
                # An expired key is free again; the old bulletin keeps it, this one goes without.
                request_id = None
        try:
            await store.add(
                uow.session,
                bulletin,
                request_id,
                request.request_hash if request_id is not None and request else None,
            )
            await uow.commit()
        except IntegrityError as error:
            raise Conflict("this request is being handled by another try; retry shortly") from error
    return Seen(bulletin, None)


async def _visible(uow: UnitOfWork, auth: AuthContext, bulletin_id: str) -> Bulletin:
    bulletin = await store.get(uow.session, bulletin_id) if _is_id(bulletin_id) else None
    if bulletin is None:
        raise NotFound(f"no bulletin {bulletin_id} in your scope")
    rules.check_sees(auth, bulletin)
    return bulletin


def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def get(new_uow: NewUow, auth: AuthContext, bulletin_id: str) -> Seen:
    async with new_uow() as uow:
        bulletin = await _visible(uow, auth, bulletin_id)
        return Seen(bulletin, await store.read_at(uow.session, bulletin.id, auth.user_id))


async def mark_read(new_uow: NewUow, auth: AuthContext, bulletin_id: str, now: datetime) -> Seen:
    """Idempotent: the first read time stays."""
    async with new_uow() as uow:
        bulletin = await _visible(uow, auth, bulletin_id)
        await store.mark_read(uow.session, bulletin.id, auth.user_id, now)
        first = await store.read_at(uow.session, bulletin.id, auth.user_id)
        await uow.commit()
    return Seen(bulletin, rules.first_read(first, now))


def _cursor(seen: Seen) -> str:
    flag = "1" if seen.read_at is not None else "0"
    return encode_page_token(flag, seen.bulletin.published_at.isoformat(), seen.bulletin.id)


def _after(token: str) -> tuple[int, datetime, str] | None:
    if not token:
        return None
    flag, published_at, last_id = decode_page_token(token, 3)
    try:
        moment = datetime.fromisoformat(published_at)
    except ValueError as error:
        raise invalid("cursor", "is not a cursor this service issued") from error
    if flag not in ("0", "1") or moment.tzinfo is None:
        raise invalid("cursor", "is not a cursor this service issued")
    return int(flag), moment, last_id


async def list_mine(
    new_uow: NewUow,
    auth: AuthContext,
    now: datetime,
    unread_only: bool,
    requested_size: int,
    token: str,
) -> Page:
    """The caller's unexpired bulletins, unread first, then newest first; and how many unread."""
    size = page_size(requested_size, DEFAULT_PAGE, MAX_PAGE)
    after = _after(token)
    async with new_uow() as uow:
        rows = await store.list_for(uow.session, auth, now, unread_only, after, size + 1)
        unread = await store.unread_count(uow.session, auth, now)
    items = [Seen(bulletin, read_at) for bulletin, read_at in rows[:size]]
    next_token = _cursor(items[-1]) if len(rows) > size else ""
    return Page(items, next_token, unread)


async def receipts(
    new_uow: NewUow, auth: AuthContext, bulletin_id: str, members: Sequence[Member]
) -> Receipts:
    """Who of the scope's users (as the gateway names them) has read it, and who not."""
    async with new_uow() as uow:
        bulletin = await _visible(uow, auth, bulletin_id)
        rules.check_may_see_receipts(auth, bulletin)
        reads = await store.reads_of(uow.session, bulletin.id)
    audience = rules.audience(bulletin, members)
    read = sorted(
        ((m.user_id, reads[m.user_id]) for m in audience if m.user_id in reads),
        key=lambda pair: (pair[1], pair[0]),
    )
    not_read = [m.user_id for m in audience if m.user_id not in reads]
    return Receipts(bulletin.id, read, not_read, len(audience))
