"""Whether a token still speaks for its user, on every gateway replica at once.

A token names the user's `token_version` it was issued for. Every change of a user's role, unit,
password or active flag raises that version and the identity epoch (one row) in the same
transaction (`identity_changed`). A request is let in only when its token's version is the
user's current one and the user is active.

"At once" across replicas, cheaply: each request waits for a read of the epoch that *started
after it arrived*, so any change committed before the request was sent is seen, on whichever
replica it was made. Requests arriving together share one such read (one read in flight at a
time; the ones arriving meanwhile share the next), so under load a replica reads one row per
round trip, not per request. Users' versions are cached and the whole cache dropped whenever
the epoch moves (changes are rare); a cached entry is never trusted past an epoch it has not
seen. The price: an authenticated request needs the gateway's database (503 while it is away).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import Database
from services.gateway.orm import identity_epoch, users

_EPOCH = select(identity_epoch.c.epoch).where(identity_epoch.c.id == 1)
_USER = select(users.c.active, users.c.token_version).where(users.c.id == bindparam("user_id"))


async def identity_changed(conn: AsyncConnection, user_id: str) -> None:
    """Refuse the user's tokens issued so far, on every replica: call in the transaction that
    changes their role, unit, password or active flag."""
    await conn.execute(
        update(users).where(users.c.id == user_id).values(token_version=users.c.token_version + 1)
    )
    await conn.execute(
        update(identity_epoch)
        .where(identity_epoch.c.id == 1)
        .values(epoch=identity_epoch.c.epoch + 1)
    )


class FreshReads:
    """Single flight for a value that must be read after the caller asked: a caller joins the
    read that has not started yet, or starts one; a read already running began too early for a
    newcomer, so newcomers share the next one, which starts when it ends."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        self._read = read
        self._next: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def value(self) -> int:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_while_asked(), name="identity-epoch")
        # Shielded: a caller that gives up must not cancel the read the others wait for.
        return await asyncio.shield(waiting)

    async def _read_while_asked(self) -> None:
        try:
            while self._next is not None:
                asked, self._next = self._next, None
                try:
                    asked.set_result(await self._read())
                except Exception as error:
                    asked.set_exception(error)
                except BaseException:
                    asked.cancel()
                    raise
        finally:
            self._reader = None


@dataclass(frozen=True)
class Identity:
    active: bool
    token_version: int


_GONE = Identity(active=False, token_version=-1)


class Identities:
    def __init__(self, db: Database) -> None:
        self.db = db
        # A single-statement read needs no transaction: on PostgreSQL, autocommit saves the
        # BEGIN and ROLLBACK round trips (about 40 % of the check's CPU). SQLite keeps its
        # turns (Database.session).
        self._autocommit = (
            db.engine.execution_options(isolation_level="AUTOCOMMIT")
            if db.engine.dialect.name == "postgresql"
            else None
        )
        self._epochs = FreshReads(self._read_epoch)
        self._epoch = -1  # the epoch the cached identities are known to be current for
        self._known: dict[str, Identity] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        if self._autocommit is None:
            async with self.db.session() as conn:
                yield conn
        else:
            async with self._autocommit.connect() as conn:
                yield conn

    async def _read_epoch(self) -> int:
        async with self._reading() as conn:
            return int(await conn.scalar(_EPOCH) or 0)

    async def is_current(self, user_id: str, token_version: int) -> bool:
        """Whether a token issued for `token_version` of the user is still theirs to use."""
        epoch = await self._epochs.value()
        known = self._known.get(user_id) if epoch <= self._epoch else None
        if known is None:
            known = await self._look_up(user_id, epoch)
        return known.active and known.token_version == token_version

    async def _look_up(self, user_id: str, epoch: int) -> Identity:
        # One at a time: an entry read before the epoch moved must not land after the cache
        # was dropped for it.
        async with self._lock:
            if epoch > self._epoch:
                self._known.clear()
                self._epoch = epoch
            known = self._known.get(user_id)
            if known is None:
                # Read after the epoch was: at least as new as it.
                async with self._reading() as conn:
                    row = (await conn.execute(_USER, {"user_id": user_id})).first()
                known = Identity(bool(row.active), int(row.token_version)) if row else _GONE
                self._known[user_id] = known
            return known
