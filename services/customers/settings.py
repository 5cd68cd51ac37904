"""Settings of the customers service beyond servicekit's, from environment variables (the
notices' and tracking link's are in notifications/settings.py)."""

from __future__ import annotations

import os

from services.customers.domain.follow_up import DEFAULT_DAYS_AFTER_PICKUP


def follow_up_days() -> int:
    """FOLLOW_UP_AFTER_DAYS: days from pickup to the follow-up call (回访), 0 for the same day."""
    raw = os.environ.get("FOLLOW_UP_AFTER_DAYS", str(DEFAULT_DAYS_AFTER_PICKUP))
    if not raw.isdigit():
        raise SystemExit(f"FOLLOW_UP_AFTER_DAYS must be a whole number of days, not {raw!r}")
    return int(raw)
