"""Whether a token still speaks for its user, on every gateway replica.

A token names the user's `token_version` it was issued for. Every change of a user's role, unit,
password or active flag raises that version and the identity epoch (one row) in the same
transaction (`identity_changed`). A request is let in only when its token's version is the
user's current one and the user is active.

Every request checks against an identity epoch read at most `fresh_for` seconds (setting
IDENTITY_FRESH_SECONDS, 0 by default) before it arrived: above 0, one read of one row per
replica per that time, not one per request. So a change is seen:
- at once on the replica that made it (it forgets what it read, `changed`);
- within `fresh_for` seconds on every other replica: that long, at most, a token revoked
  through another replica is still let in there.
With `fresh_for` 0, each request waits for a read of the epoch that *started after it
arrived*, so a change committed anywhere before the request was sent is seen everywhere;
requests arriving together share one such read (one read in flight at a time; the ones
arriving meanwhile share the next).
Users' versions are cached and the whole cache dropped whenever the epoch moves (changes are
rare); a cached entry is never trusted past an epoch it has not seen, and a token newer than
the version cached for its user (signed in again since a change) makes the replica read afresh.
The price: an authenticated request needs the gateway's database now and then (503 while it
is away and the epoch read is due).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    """Single flight for a value that must be read recently enough: one read at most
    `fresh_for` seconds before the caller asked is taken as it is; else (and always with
    `fresh_for` 0) a caller joins the read that has not started yet, or starts one. A read
    already running began too early for a newcomer, so newcomers share the next one, which
    starts when it ends."""

    def __init__(
        self,
        read: Callable[[], Awaitable[int]],
        fresh_for: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._fresh_for = fresh_for
        self._clock = clock
        self._next: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None
        # When the last read began, and what it read.
        self._last: tuple[float, int] | None = None
        # Bumped by `expire`: a read begun before it is not kept.
        self._generation = 0

    async def value(self) -> int:
        last = self._last
        if last is not None and self._clock() - last[0] < self._fresh_for:
            return last[1]
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_while_asked(), name="identity-epoch")
        # Shielded: a caller that gives up must not cancel the read the others wait for.
        return await asyncio.shield(waiting)

    def expire(self) -> None:
        """What was read so far is stale: callers from now on wait for a read begun later."""
        self._last = None
        self._generation += 1

    async def _read_while_asked(self) -> None:
        try:
            while self._next is not None:
                asked, self._next = self._next, None
                began, generation = self._clock(), self._generation
                try:
                    value = await self._read()
                except Exception as error:
                    asked.set_exception(error)
                    continue
                except BaseException:
                    asked.cancel()
                    raise
                if generation == self._generation:
                    self._last = (began, value)
                asked.set_result(value)
        finally:
            self._reader = None


@dataclass(frozen=True)
class Identity:
    active: bool
    token_version: int


_GONE = Identity(active=False, token_version=-1)


class Identities:
    def __init__(
        self, db: Database, fresh_for: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.fresh_for = fresh_for
        # A single-statement read needs no transaction: on PostgreSQL, autocommit saves the
        # BEGIN and ROLLBACK round trips (about 40 % of the check's CPU). SQLite keeps its
        # turns (Database.session).
        self._autocommit = (
            db.engine.execution_options(isolation_level="AUTOCOMMIT")
            if db.engine.dialect.name == "postgresql"
            else None
        )
        self._epochs = FreshReads(self._read_epoch, fresh_for, clock)
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

    def changed(self) -> None:
        """A user's identity changed through this replica (committed): refuse their older
        tokens here from now on, not once the epoch read is due."""
        self._epochs.expire()

    async def is_current(self, user_id: str, token_version: int) -> bool:
        """Whether a token issued for `token_version` of the user is still theirs to use."""
        known = await self._known_at(user_id, await self._epochs.value())
        if known.token_version < token_version:
            # Issued after a change this replica has not read yet (the user signed in again
            # since, maybe on another replica): read afresh rather than refuse it.
            self._epochs.expire()
            known = await self._known_at(user_id, await self._epochs.value())
        return known.active and known.token_version == token_version

    async def _known_at(self, user_id: str, epoch: int) -> Identity:
        known = self._known.get(user_id) if epoch <= self._epoch else None
        return known if known is not None else await self._look_up(user_id, epoch)

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
