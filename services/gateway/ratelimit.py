"""Per-user token buckets: a steady rate with bursts up to twice that rate."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_second
        self.burst = 2 * per_second
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, when counted)

    def acquire(self, user_id: str) -> float:
        """Take one token: 0 when allowed, else the seconds until a token is there."""
        now = self.clock()
        tokens, last = self.buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[user_id] = (tokens - 1, now)
            return 0.0
        self.buckets[user_id] = (tokens, now)
        return (1 - tokens) / self.rate
