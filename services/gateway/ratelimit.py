"""Token buckets per user (or client address): a steady rate with bursts up to twice that rate.
Buckets that have filled up again are forgotten once there are many, so a flood of distinct
addresses cannot grow memory without end."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_BUCKETS = 50_000


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.rate = per_second
        self.burst = 2 * per_second
        self.clock = clock
        self.max_buckets = max_buckets
        self.buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, when counted)

    def acquire(self, user_id: str) -> float:
        """Take one token: 0 when allowed, else the seconds until a token is there."""
        now = self.clock()
        if len(self.buckets) >= self.max_buckets and user_id not in self.buckets:
            self._forget_full(now)
        tokens, last = self.buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[user_id] = (tokens - 1, now)
            return 0.0
        self.buckets[user_id] = (tokens, now)
        return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have filled up again: a new bucket is full, so nothing changes
        for their owners."""
        refill = self.burst / self.rate
        self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < refill}
