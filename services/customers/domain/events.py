"""The events customer care's changes raise, as the business names them: plain facts, recorded
by the record that changed (its `pending_events`) and sent when the change commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CustomerErased:
    """The person's data was erased: their orders and the data keys of those orders, and the
    unit of whoever erased it (None: HQ)."""

    order_ids: tuple[str, ...]
    key_ids: tuple[str, ...]
    branch_id: str | None
    store_id: str | None


@dataclass(frozen=True)
class FollowUpRecorded:
    """A call of a follow-up was recorded; `due_at` is when that call was due."""

    attempt: int
    reached: bool
    score: int | None
    due_at: datetime


@dataclass(frozen=True)
class ComplaintOpened:
    """A low score opened a complaint for the branch."""


@dataclass(frozen=True)
class ComplaintClosed:
    """The complaint was closed with its outcome."""


CustomerEvent = CustomerErased
FollowUpEvent = FollowUpRecorded
ComplaintEvent = ComplaintOpened | ComplaintClosed
