"""Sign-in's defences: a throttle on failed sign-ins per username and per client address, kept
in the gateway's database so every replica sees the same counts, and a small limit on password
checks running at once, so a burst of sign-ins cannot take the gateway past its memory.

After `limit` failures within an hour, a username (or address) is locked for 30 s, and each
further failure doubles that, up to 15 minutes. While locked, the password is not checked at
all: the answer (429 with Retry-After) and the work behind it are the same whether the password
was right or wrong, so the time it takes tells nothing. A success clears the username's count;
an address's count only ages out, or one good account would reset it for an attacker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
from collections.abc import AsyncIterator, Callable
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


def lock_for(failures: int, limit: int) -> timedelta | None:
    """How long `failures` in a row lock a username or address whose limit is `limit`."""
    if failures < limit:
        return None
    return min(LONGEST_LOCK, FIRST_LOCK * 2 ** min(failures - limit, 16))


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
    ) -> None:
        self.db = db
        self.limits = {"username": failures_per_user, "address": failures_per_address}
        self.clock = clock

    async def refuse_if_locked(self, username: str, address: str) -> None:
        """429 with Retry-After while the username or the address is locked."""
        now = self.clock()
        keys = [_key("username", username), _key("address", address)]
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

    async def failed(self, username: str, address: str) -> None:
        now = self.clock()
        async with self.db.begin() as conn:
            for kind, subject in (("username", username), ("address", address)):
                key = _key(kind, subject)
                count = await conn.scalar(
                    _count_failure(conn.dialect.name),
                    {"key": key, "now": now, "forget_before": now - FORGET_AFTER},
                )
                lock = lock_for(int(count), self.limits[kind])
                if lock is not None:
                    await conn.execute(
                        update(failures_table)
                        .where(failures_table.c.key == key)
                        .values(locked_until=now + lock)
                    )

    async def succeeded(self, username: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                delete(failures_table).where(failures_table.c.key == _key("username", username))
            )

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
