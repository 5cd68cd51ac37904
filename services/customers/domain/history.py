"""A customer's service history (服务记录) across the chain, from the orders' events: where each
order stands, and which stores hold an open order of the customer (they see the phone in clear).

Status events may arrive twice or out of order: an event applies only when it is newer (a higher
order version) than what is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

FINAL_STATUSES = frozenset({"closed", "cancelled"})
"""An order in one of these is done with: the store no longer holds the customer's device (a
declined order still does, until the customer picks it up unrepaired)."""


@dataclass(frozen=True)
class OrderState:
    order_id: str
    number: str
    branch_id: str
    store_id: str
    status: str
    version: int
    paid_fen: int
    updated_at: datetime
    closed_at: datetime | None = None


def is_open(status: str | None) -> bool:
    """An order with no status event yet was just received: open."""
    return status is None or status not in FINAL_STATUSES


def state_after(known: OrderState | None, news: OrderState) -> OrderState | None:
    """The state to store, or None when the news is not newer than what is known."""
    if known is not None and news.version <= known.version:
        return None
    return news


def is_pickup(step: str, to_status: str) -> bool:
    """The customer took the device back (取机): the moment a follow-up is counted from."""
    return step == "pickup" and to_status == "closed"


@dataclass(frozen=True)
class ServiceRecord:
    """One order in a customer's history: as taken in, and where it stands now."""

    order_id: str
    number: str
    branch_id: str
    store_id: str
    imei: str
    service_type: str
    received_at: datetime
    status: str
    paid_fen: int
    updated_at: datetime | None
    closed_at: datetime | None
