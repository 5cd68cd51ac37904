"""Settings of the inventory service beyond servicekit's, from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from services.inventory.domain.holds import DEFAULT_GRACE

DEFAULT_HOLD_CHECK = timedelta(minutes=1)


def _seconds(name: str, default: timedelta) -> timedelta:
    raw = os.environ.get(name, str(int(default.total_seconds())))
    if not raw.isdigit() or int(raw) <= 0:
        raise SystemExit(f"{name} must be a positive whole number of seconds, not {raw!r}")
    return timedelta(seconds=int(raw))


@dataclass(frozen=True)
class HoldSettings:
    # HOLD_GRACE_SECONDS: how long a step's attempt at an order's parts may take to be written
    # (its calls here and its commit). What only it claims is let go once an orders event
    # created that long after the claim is heard without naming it; a stalled orders outbox
    # or broker delays that, however long it lasts.
    grace: timedelta
    # HOLD_CHECK_SECONDS: how often each replica looks for such holds.
    check_every: timedelta

    @classmethod
    def from_env(cls) -> HoldSettings:
        return cls(
            grace=_seconds("HOLD_GRACE_SECONDS", DEFAULT_GRACE),
            check_every=_seconds("HOLD_CHECK_SECONDS", DEFAULT_HOLD_CHECK),
        )
