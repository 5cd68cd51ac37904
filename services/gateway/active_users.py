"""Whether a signed-in user may still use their token: a user deactivated in the users table
(or removed from it) is shut out within `max_age_seconds`, without a database look-up on every
request."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import bindparam, select

from servicekit.db import Database
from services.gateway.orm import users

_ACTIVE = select(users.c.active).where(users.c.id == bindparam("user_id"))


class ActiveUsers:
    def __init__(
        self,
        db: Database,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._known: dict[str, tuple[bool, float]] = {}  # user -> (active, when looked up)

    async def is_active(self, user_id: str) -> bool:
        now = self.clock()
        known = self._known.get(user_id)
        if known is not None and now - known[1] < self.max_age_seconds:
            return known[0]
        async with self.db.session() as session:
            active = bool(await session.scalar(_ACTIVE, {"user_id": user_id}))
        self._known[user_id] = (active, now)
        return active

    def forget(self, user_id: str) -> None:
        """Look the user up afresh on their next request (their record just changed here)."""
        self._known.pop(user_id, None)
