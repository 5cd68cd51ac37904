"""Sign-in's defences: a throttle on failed sign-ins, kept in the gateway's database so every
replica sees the same counts, and a small limit on password checks running at once, so a burst
of sign-ins cannot take the gateway past its memory.

Failures are counted per (username, client address), per address and per username. After
`limit` failures within an hour, a (username, address) pair, or an address (many shops behind
one NAT get a higher limit), is locked for 30 s, and each further failure doubles that, up to 15
minutes. A username alone is never locked: usernames follow a pattern, and a lock anyone can
set from anywhere would shut its owner out for good. Past the limit it is slowed down instead:
every sign-in of it, from anywhere, waits 0.5 s doubling to 8 s before its password is checked,
which makes guessing slow and leaves the owner, from their own address, a few seconds' wait.

While locked, the password is not checked at all: the answer (429 with Retry-After) and the work
behind it are the same whether the password was right or wrong, so the time it takes tells
nothing. A success clears the pair's and the username's counts; an address's count only ages
out, or one good account would reset it for an attacker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, or_, select, update

from servicekit.db import Database, upsert_on
from servicekit.errors import TooManyRequests
from servicekit.timeutil import as_utc, utc_now
from services.gateway.orm import login_failures as failures_table
from services.gateway.security import verify_password, verify_unknown_user

FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
# Failures older than this are forgotten: longer than the longest lock, so waiting a lock out
# does not wipe the count.
FORGET_AFTER = timedelta(hours=1)
# Sign-ins that may wait for a password check per check running; more are turned away.
WAITING_PER_CHECK = 16


FIRST_SLOW_DOWN = timedelta(milliseconds=500)
LONGEST_SLOW_DOWN = timedelta(seconds=8)


def lock_for(failures: int, limit: int) -> timedelta | None:
    """How long `failures` in a row lock a (username, address) pair or an address whose limit
    is `limit`."""
    if failures < limit:
        return None
    return min(LONGEST_LOCK, FIRST_LOCK * 2 ** min(failures - limit, 16))


def slow_down_for(failures: int, limit: int) -> timedelta | None:
    """How long a sign-in of a username that failed `failures` times, from anywhere, waits."""
    if failures < limit:
        return None
    return min(LONGEST_SLOW_DOWN, FIRST_SLOW_DOWN * 2 ** min(failures - limit, 16))


def _pair(username: str, address: str) -> str:
    # A newline cannot be in an address: no (username, address) reads as another.
    return f"{address}\n{username}"


def _key(kind: str, subject: str) -> str:
    return hashlib.sha256(f"{kind}:{subject}".encode()).hexdigest()


@functools.cache
def _count_failure(dialect_name: str) -> Any:
    c = failures_table.c
    statement = upsert_on(dialect_name, failures_table).values(
        key=bindparam("key"), failures=1, last_failed_at=bindparam("now")
    )
    return statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            # A count last added to before `forget_before` starts over.
            "failures": case(
                (c.last_failed_at < bindparam("forget_before"), 1), else_=c.failures + 1
            ),
            "last_failed_at": statement.excluded.last_failed_at,
        },
    ).returning(c.failures)


class LoginThrottle:
    def __init__(
        self,
        db: Database,
        failures_per_user: int,
        failures_per_address: int,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        # The username's own count never locks: it slows down (slow_down_for).
        self.limits = {"pair": failures_per_user, "address": failures_per_address}
        self.slow_down_after = failures_per_user
        self.clock = clock
        self.sleep = sleep

    async def refuse_if_locked(self, username: str, address: str) -> None:
        """429 with Retry-After while this username from this address, or the address, is
        locked."""
        now = self.clock()
        keys = [_key("pair", _pair(username, address)), _key("address", address)]
        async with self.db.session() as session:
            until = await session.scalar(
                select(failures_table.c.locked_until)
                .where(failures_table.c.key.in_(keys), failures_table.c.locked_until > now)
                .order_by(failures_table.c.locked_until.desc())
                .limit(1)
            )
        if until is not None:
            error = TooManyRequests("too many failed sign-ins; try again later")
            error.retry_after_seconds = max(1, math.ceil((as_utc(until) - now).total_seconds()))
            raise error

    async def slow_down(self, username: str) -> None:
        """Wait before a sign-in of a username that failed too often lately, from anywhere."""
        now = self.clock()
        async with self.db.session() as session:
            failures = await session.scalar(
                select(failures_table.c.failures).where(
                    failures_table.c.key == _key("username", username),
                    failures_table.c.last_failed_at >= now - FORGET_AFTER,
                )
            )
        wait = slow_down_for(int(failures or 0), self.slow_down_after)
        if wait is not None:
            await self.sleep(wait.total_seconds())

    async def failed(self, username: str, address: str) -> None:
        now = self.clock()
        counted = (
            ("pair", _pair(username, address)),
            ("address", address),
            ("username", username),
        )
        async with self.db.begin() as conn:
            for kind, subject in counted:
                key = _key(kind, subject)
                count = await conn.scalar(
                    _count_failure(conn.dialect.name),
                    {"key": key, "now": now, "forget_before": now - FORGET_AFTER},
                )
                lock = lock_for(int(count), self.limits[kind]) if kind in self.limits else None
                if lock is not None:
                    await conn.execute(
                        update(failures_table)
                        .where(failures_table.c.key == key)
                        .values(locked_until=now + lock)
                    )

    async def succeeded(self, username: str, address: str) -> None:
        keys = [_key("pair", _pair(username, address)), _key("username", username)]
        async with self.db.begin() as conn:
            await conn.execute(delete(failures_table).where(failures_table.c.key.in_(keys)))

    async def prune(self) -> int:
        """Forget counts that have aged out and are no longer locked."""
        now = self.clock()
        async with self.db.begin() as conn:
            result = await conn.execute(
                delete(failures_table).where(
                    failures_table.c.last_failed_at < now - FORGET_AFTER,
                    or_(
                        failures_table.c.locked_until.is_(None),
                        failures_table.c.locked_until < now,
                    ),
                )
            )
        return int(result.rowcount)


class PasswordChecks:
    """argon2 checks (64 MiB each) on a few threads of their own, `at_once` at a time."""

    def __init__(self, at_once: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="password")
        self.turns = asyncio.Semaphore(at_once)
        self.max_waiting = WAITING_PER_CHECK * at_once
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for a free check; a queue already long answers 429 at once."""
        if self.waiting >= self.max_waiting:
            error = TooManyRequests("too many sign-ins at once; try again shortly")
            error.retry_after_seconds = 1
            raise error
        self.waiting += 1
        try:
            await self.turns.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.turns.release()

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """The password against the hash; with no hash (no such user), as long a check that
        fails, so the answer time does not tell which usernames exist."""
        loop = asyncio.get_running_loop()
        if password_hash is None:
            return await loop.run_in_executor(self.executor, verify_unknown_user, password)
        return await loop.run_in_executor(self.executor, verify_password, password_hash, password)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
