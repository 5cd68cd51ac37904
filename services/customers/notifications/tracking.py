"""The tracking link (进度查询): what a customer sees of their order without signing in (status,
steps, store, promised date; nothing personal), and how long the link lives. Pure: no I/O and
no clock (the caller passes `now`)."""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_DAYS_AFTER_PICKUP = 30

# Statuses after which nothing more happens to the order: the link's last days begin.
FINAL_STATUSES = frozenset({"closed", "cancelled", "declined"})


def expiry(status: str, final_at: datetime | None, days_after: int) -> datetime | None:
    """When the link stops working: `days_after` days after the order ended (picked up,
    cancelled or declined); None while it is still open."""
    if status not in FINAL_STATUSES or final_at is None:
        return None
    return final_at + timedelta(days=days_after)


def expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


def newer(version: int, known_version: int) -> bool:
    """An order status event moves the shown status only when it is newer than the one shown:
    events of one order can arrive out of order after a redelivery."""
    return version > known_version
