"""Customers (客户) and their devices, shared chain-wide, as they become known through work
orders: every intake (受理) is a visit that tells us who brought which device to which store.

Events may arrive late or out of order (a redelivery, a relay catching up after a crash), so
what a visit may change depends on whether it is newer than what we already know: an older
visit still counts as an order, but never rolls a name, an owner or the last store back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.identifiers import imei_problem, mobile_problem


@dataclass(frozen=True)
class Visit:
    """A customer bringing a device in for a work order, as the orders service announced it."""

    order_id: str
    branch_id: str
    store_id: str
    customer_name: str
    phone: str
    imei: str
    brand: str
    model: str
    received_at: datetime  # UTC


@dataclass(frozen=True)
class Customer:
    id: str
    phone: str
    name: str
    order_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    last_store_id: str
    email: str | None = None
    marketing_consent: bool = False  # no messages beyond service notices unless they agreed


@dataclass(frozen=True)
class Device:
    imei: str
    owner_id: str
    brand: str
    model: str
    first_seen_at: datetime
    last_seen_at: datetime


class UnusableVisit(ValueError):
    """A visit that names no valid phone or IMEI: no customer or device can be keyed on it."""


def check_visit(visit: Visit) -> None:
    """Refuse a visit nobody can be found by later. The values stay out of the message: it
    goes to the logs, which hold no personal data."""
    problems = []
    if not visit.order_id:
        problems.append("no order id")
    if problem := mobile_problem(visit.phone):
        problems.append(f"phone {problem}")
    if problem := imei_problem(visit.imei):
        problems.append(f"imei {problem}")
    if problems:
        raise UnusableVisit(f"order {visit.order_id or '?'}: {'; '.join(problems)}")


def customer_after_visit(customer: Customer | None, visit: Visit, new_id: str) -> Customer:
    """The customer record once this visit's order is counted; `new_id` names a first-timer."""
    if customer is None:
        return Customer(
            id=new_id,
            phone=visit.phone,
            name=visit.customer_name.strip(),
            order_count=1,
            first_seen_at=visit.received_at,
            last_seen_at=visit.received_at,
            last_store_id=visit.store_id,
        )
    counted = replace(
        customer,
        order_count=customer.order_count + 1,
        first_seen_at=min(customer.first_seen_at, visit.received_at),
    )
    if visit.received_at < customer.last_seen_at:
        return counted
    # The latest name given wins (a nickname replaced by the full name, a typo fixed); an
    # empty one tells us nothing new.
    return replace(
        counted,
        name=visit.customer_name.strip() or customer.name,
        last_seen_at=visit.received_at,
        last_store_id=visit.store_id,
    )


def device_after_visit(device: Device | None, visit: Visit, customer_id: str) -> Device:
    """The device once this visit is known. A device brought in under another customer's phone
    has changed hands (sold, handed down): it moves to whoever brought it in most recently."""
    if device is None:
        return Device(
            imei=visit.imei,
            owner_id=customer_id,
            brand=visit.brand,
            model=visit.model,
            first_seen_at=visit.received_at,
            last_seen_at=visit.received_at,
        )
    earliest = min(device.first_seen_at, visit.received_at)
    if visit.received_at < device.last_seen_at:
        return replace(device, first_seen_at=earliest)
    return Device(
        imei=device.imei,
        owner_id=customer_id,
        brand=visit.brand or device.brand,
        model=visit.model or device.model,
        first_seen_at=earliest,
        last_seen_at=visit.received_at,
    )
