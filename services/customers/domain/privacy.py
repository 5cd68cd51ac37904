"""Personal data (个人信息, PIPL): who may read out or erase a customer's data, and what an
erased record looks like. Erasure keeps the orders (accounting needs them) but nothing that
names or reaches the person: the name becomes 已删除, the phone a random placeholder that no
number can be worked back from, the email and consents go. Pure rules.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, invalid
from services.customers.domain.customer import Customer
from services.customers.domain.events import CustomerErased

ERASED_NAME = "已删除"
ERASED_PHONE_PREFIX = "ERASED-"
PRIVACY_ROLES = ("hq_admin", "branch_manager")
"""Who may export, erase or merge customer records."""
REASON_MAX = 500

EXPORT = "export"
ERASURE = "erasure"
MERGE = "merge"


def check_reason(reason: str) -> str:
    cleaned = reason.strip()
    if not cleaned:
        raise invalid("reason", "say why (the customer's request, its reference)")
    if len(cleaned) > REASON_MAX:
        raise invalid("reason", f"at most {REASON_MAX} characters")
    return cleaned


def erased_phone() -> str:
    """Random, so unrelated to the number it replaces; unique like any phone on record."""
    return ERASED_PHONE_PREFIX + secrets.token_hex(6)


def erased(
    customer: Customer,
    now: datetime,
    placeholder: str,
    *,
    order_ids: Sequence[str] = (),
    key_ids: Sequence[str] = (),
    by: AuthContext | None = None,
) -> Customer:
    """The record once the person is anonymised, its erasure recorded to announce: the
    orders kept and their data keys (destroyed), erased by `by` (None or HQ: no unit)."""
    if customer.erased:
        raise Conflict("this customer's personal data is erased already")
    if customer.merged_into:
        raise Conflict("this record was merged: erase the record it was merged into")
    return replace(
        customer,
        name=ERASED_NAME,
        phone=placeholder,
        email=None,
        marketing_consent=False,
        message_consent=False,
        erased_at=now,
        version=customer.version + 1,
        pending_events=(
            *customer.pending_events,
            CustomerErased(
                tuple(order_ids),
                tuple(key_ids),
                by.branch_id if by else None,
                by.store_id if by else None,
            ),
        ),
    )


def may_act_on(auth: AuthContext, order_paths: list[tuple[str, str]]) -> bool:
    """A customer is within reach of a caller when one of their orders is in the caller's
    scope (HQ reaches all, also a record with no order left)."""
    if auth.branch_id is None:
        return True
    return any(auth.covers(branch, store) for branch, store in order_paths)


def merged(keep: Customer, other: Customer) -> tuple[Customer, Customer]:
    """Two records of one person: the kept one takes the other's orders (and with them its
    history and follow-ups); the other points to it. Refused for one record twice, an erased
    or an already merged record."""
    if keep.id == other.id:
        raise invalid("merge_id", "must be another customer than the one kept")
    for field, customer in (("keep_id", keep), ("merge_id", other)):
        if customer.erased:
            raise Conflict(f"{field}: this customer's personal data is erased")
        if customer.merged_into:
            raise Conflict(f"{field}: this record was merged into another already")
    latest = other if other.last_seen_at > keep.last_seen_at else keep
    # Consent stays the kept record's: a merge never grants what the person did not give it.
    kept = replace(
        keep,
        order_count=keep.order_count + other.order_count,
        first_seen_at=min(keep.first_seen_at, other.first_seen_at),
        last_seen_at=latest.last_seen_at,
        last_store_id=latest.last_store_id,
        email=keep.email or other.email,
        version=keep.version + 1,
    )
    return kept, replace(other, merged_into=keep.id, version=other.version + 1)
