"""Shared by the repository's modules."""

from __future__ import annotations

from datetime import datetime

from servicekit.timeutil import as_utc


def utc_or_none(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None
