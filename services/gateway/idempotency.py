"""Idempotency-Key on POST: a retried request gets the first answer instead of a second effect.

Entries are kept per (user, key) with a hash of the request: its method, path, body and the
If-Match it is conditional on (a step retried after reading the new ETag is another request,
not a replay of the old 412). Same key and same request: the stored response is replayed.
Same key, other request: 422 naming the key. First request still running: 409, unless it has
been in flight so long that its process is presumed dead (then it is taken over).
Answers of 500 and above are not kept, so the client may retry. The services' calls carry the
request id `<user>:<key>`: orders dedupes intake by it, inventory its stock documents (the
handled-requests log, servicekit.idempotency), so a retry after a lost reply does not book
twice. Entries live as long as a key is honoured
(servicekit.idempotency.KEY_LIFETIME, the lifetime orders keeps its request ids for too).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from servicekit.db import Database, upsert_on
from servicekit.errors import Conflict, DomainError, FieldError, InvalidInput, invalid
from servicekit.idempotency import KEY_LIFETIME, passing_request_id
from servicekit.timeutil import as_utc, utc_now
from services.gateway.orm import idempotency_keys as keys
from services.gateway.problems import domain_problem

HEADER = "Idempotency-Key"
KEEP_FOR = KEY_LIFETIME
TAKEOVER_AFTER = timedelta(seconds=60)
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,200}")
# Response headers worth replaying; the rest are recomputed per response.
_KEPT_HEADERS = ("content-type", "location")


def check_key(key: str) -> None:
    if not _VALID_KEY.fullmatch(key):
        raise invalid(HEADER, "must be 1 to 200 printable ASCII characters")


def body_hash(body: bytes, if_match: str | None = None) -> str:
    """The fingerprint of a request's body and of the If-Match it is conditional on; without
    If-Match, the body's hash alone (what entries made before If-Match counted hold)."""
    digest = hashlib.sha256(body).hexdigest()
    if if_match is None:
        return digest
    # Over the body's digest, so no body can pass for another body with an If-Match.
    return hashlib.sha256(f"{digest}\nIf-Match: {if_match}".encode("latin-1")).hexdigest()


async def request_content(request: Request) -> bytes:
    """What a request says, for its fingerprint: the body, or for a multipart form its fields
    and files (a client's retry draws a new boundary, so the raw bytes differ for the same
    form)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return await request.body()
    parts = []
    for name, value in (await request.form()).multi_items():
        if isinstance(value, UploadFile):
            content = await value.read()
            await value.seek(0)
            parts.append(f"{name}\0{value.filename or ''}\0".encode() + content)
        else:
            parts.append(f"{name}\0{value}".encode())
    return b"\0\0".join(sorted(hashlib.sha256(part).digest() for part in parts))


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, response: Response) -> StoredResponse:
        headers = {k: v for k in _KEPT_HEADERS if (v := response.headers.get(k)) is not None}
        return cls(response.status_code, headers, bytes(response.body))

    def replay(self) -> Response:
        headers = {**self.headers, "Idempotent-Replayed": "true"}
        return Response(self.body, status_code=self.status, headers=headers)


class IdempotencyStore:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.clock = clock
        # A single statement is a transaction of its own: on PostgreSQL, autocommit saves the
        # BEGIN and COMMIT round trips. SQLite keeps its turns (Database.begin).
        self._autocommit = (
            db.engine.execution_options(isolation_level="AUTOCOMMIT")
            if db.engine.dialect.name == "postgresql"
            else None
        )
        # Built once, values bound per call: the compiled statement is cached.
        self._claim = (
            upsert_on(db.engine.dialect.name, keys)
            .on_conflict_do_nothing(index_elements=[keys.c.user_id, keys.c.key])
            .returning(keys.c.lease)
        )

    @contextlib.asynccontextmanager
    async def _alone(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one statement, committed when it has run."""
        if self._autocommit is None:
            async with self.db.begin() as conn:
                yield conn
        else:
            async with self._autocommit.connect() as conn:
                yield conn

    async def begin(
        self, user_id: str, key: str, method: str, path: str, request_hash: str
    ) -> str | StoredResponse:
        """Claim the key: a lease to finish or release it with, or the response to replay."""
        lease = secrets.token_hex(16)
        # A few rounds because the entry met may vanish (released or expired) before we read it.
        for _ in range(3):
            now = self.clock()
            if await self._insert(user_id, key, method, path, request_hash, lease, now):
                return lease
            async with self.db.begin() as conn:
                row = (
                    await conn.execute(
                        select(keys).where(keys.c.user_id == user_id, keys.c.key == key)
                    )
                ).first()
                if row is None:
                    continue
                created_at = as_utc(row.created_at)
                if created_at < now - KEEP_FOR:
                    await conn.execute(delete(keys).where(_same_entry(user_id, key, row.lease)))
                    continue
                if (row.method, row.path, row.body_hash) != (method, path, request_hash):
                    raise InvalidInput(
                        "this Idempotency-Key was used for another request",
                        [FieldError(HEADER, "already used with a different request")],
                    )
                if row.state == "done":
                    return StoredResponse(
                        row.status_code, json.loads(row.response_headers), row.response_body
                    )
                if created_at < now - TAKEOVER_AFTER:
                    taken = await conn.execute(
                        update(keys)
                        .where(_same_entry(user_id, key, row.lease), keys.c.state == "in_flight")
                        .values(lease=lease, created_at=now)
                    )
                    if taken.rowcount == 1:
                        return lease
                raise _in_flight()
        raise _in_flight()

    async def _insert(
        self,
        user_id: str,
        key: str,
        method: str,
        path: str,
        request_hash: str,
        lease: str,
        now: datetime,
    ) -> bool:
        """Whether the key was free and is now ours: one statement, no error to catch."""
        async with self._alone() as conn:
            claimed = await conn.execute(
                self._claim,
                {
                    "user_id": user_id,
                    "key": key,
                    "method": method,
                    "path": path,
                    "body_hash": request_hash,
                    "state": "in_flight",
                    "lease": lease,
                    "created_at": now,
                },
            )
            return claimed.first() is not None

    async def finish(self, user_id: str, key: str, lease: str, response: StoredResponse) -> None:
        async with self._alone() as conn:
            await conn.execute(
                _FINISH,
                {
                    "entry_user": user_id,
                    "entry_key": key,
                    "entry_lease": lease,
                    "state": "done",
                    "status_code": response.status,
                    "response_headers": json.dumps(response.headers),
                    "response_body": response.body,
                },
            )

    async def release(self, user_id: str, key: str, lease: str) -> None:
        async with self._alone() as conn:
            await conn.execute(delete(keys).where(_same_entry(user_id, key, lease)))

    async def forget_replies_naming(self, needles: Sequence[str]) -> int:
        """Erasure (PIPL): forget the kept replies that name any of `needles` (the customer's
        phone, their orders' ids), as an intake's reply names its customer. A retry of such a
        request reaches the service again, which knows its request id still."""
        wanted = [needle.encode() for needle in needles if needle]
        if not wanted:
            return 0
        async with self.db.begin() as conn:
            rows = await conn.execute(
                select(keys.c.user_id, keys.c.key, keys.c.response_body).where(
                    keys.c.response_body.is_not(None)
                )
            )
            naming = [(r.user_id, r.key) for r in rows if any(w in r.response_body for w in wanted)]
            for user_id, key in naming:
                await conn.execute(delete(keys).where(keys.c.user_id == user_id, keys.c.key == key))
        return len(naming)

    async def prune(self) -> int:
        """Forget entries older than the lifetime a key is honoured for."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                delete(keys).where(keys.c.created_at < self.clock() - KEEP_FOR)
            )
        return int(result.rowcount)


_FINISH = update(keys).where(
    keys.c.user_id == bindparam("entry_user"),
    keys.c.key == bindparam("entry_key"),
    keys.c.lease == bindparam("entry_lease"),
)


def _same_entry(user_id: str, key: str, lease: str) -> ColumnElement[bool]:
    return and_(keys.c.user_id == user_id, keys.c.key == key, keys.c.lease == lease)


def _in_flight() -> Conflict:
    return Conflict("a request with this Idempotency-Key is still in progress")


async def run_once(
    store: IdempotencyStore,
    user_id: str,
    key: str | None,
    request: Request,
    handle: Callable[[], Awaitable[Response]],
) -> Response:
    """Run a POST handler at most once per (user, Idempotency-Key); without a key, just run it."""
    if key is None:
        return await handle()
    check_key(key)
    fingerprint = body_hash(await request_content(request), request.headers.get("if-match"))
    claim = await store.begin(user_id, key, request.method, request.url.path, fingerprint)
    if isinstance(claim, StoredResponse):
        return claim.replay()
    try:
        # The services that keep a handled-requests log answer a retry of a call whose reply
        # was lost (a 503 here) with what the first try did.
        with passing_request_id(f"{user_id}:{key}"):
            response = await handle()
    except DomainError as error:
        # A refused request is an answer too, replayed like a success; 5xx ones are not.
        response = domain_problem(error, request.url.path)
    except BaseException:
        await store.release(user_id, key, claim)
        raise
    if response.status_code >= 500:
        await store.release(user_id, key, claim)
    else:
        await store.finish(user_id, key, claim, StoredResponse.of(response))
    return response
