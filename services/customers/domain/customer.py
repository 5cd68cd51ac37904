"""Customers (客户) and their devices, shared chain-wide, as they become known through work
orders: every intake (受理) is a visit that tells us who brought which device to which store.

Events may arrive late or out of order (a redelivery, a relay catching up after a crash), so
what a visit may change depends on whether it is newer than what we already know: an older
visit still counts as an order, but never rolls a name, an owner or the last store back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from servicekit.errors import FieldError, InvalidInput
from servicekit.identifiers import imei_problem, mobile_problem
from services.customers.domain.events import CustomerEvent

LANGUAGES = ("zh-CN", "en")
NAME_MAX = 50
# Plain enough to catch typos, loose enough for every real address (RFC 5322 is not a form rule).
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


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
    message_consent: bool = False  # the customer agreed at this intake to service messages
    language: str = ""  # zh-CN or en; empty: not said
    number: str = ""
    service_type: str = ""


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
    message_consent: bool = False  # service notices (SMS) only with consent
    language: str = "zh-CN"
    version: int = 1
    merged_into: str | None = None
    erased_at: datetime | None = None
    # Raised by the changes made since it was read; sent when they commit.
    pending_events: tuple[CustomerEvent, ...] = field(default=(), compare=False, repr=False)

    @property
    def erased(self) -> bool:
        return self.erased_at is not None


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
            message_consent=visit.message_consent,
            language=visit.language or "zh-CN",
        )
    counted = replace(
        customer,
        order_count=customer.order_count + 1,
        first_seen_at=min(customer.first_seen_at, visit.received_at),
        # Consent given at any intake turns it on; only the customer's own word (an edit by
        # staff on their request) turns it off, never an intake that did not ask.
        message_consent=customer.message_consent or visit.message_consent,
    )
    if visit.received_at < customer.last_seen_at:
        return counted
    # The latest name given wins (a nickname replaced by the full name, a typo fixed); an
    # empty one tells us nothing new.
    return replace(
        counted,
        name=visit.customer_name.strip() or customer.name,
        language=visit.language or customer.language,
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


@dataclass(frozen=True)
class CustomerEdit:
    """What staff may change on a record, at the customer's word; None leaves a field as is."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None  # "" removes it
    message_consent: bool | None = None
    language: str | None = None


def email_problem(email: str) -> str | None:
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        return "must be an email address like name@example.com"
    return None


def check_edit(edit: CustomerEdit) -> None:
    """Every field at fault at once, each by name."""
    errors = []
    if edit.name is not None and not (0 < len(edit.name.strip()) <= NAME_MAX):
        errors.append(FieldError("name", f"must be 1 to {NAME_MAX} characters"))
    if edit.phone is not None and (problem := mobile_problem(edit.phone)):
        errors.append(FieldError("phone", problem))
    if edit.email and (problem := email_problem(edit.email)):
        errors.append(FieldError("email", problem))
    if edit.language is not None and edit.language not in LANGUAGES:
        errors.append(FieldError("language", f"must be one of {', '.join(LANGUAGES)}"))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)


def customer_after_edit(customer: Customer, edit: CustomerEdit) -> Customer:
    """The record once an edit is applied (checked first with check_edit); a new version."""
    email = customer.email if edit.email is None else (edit.email or None)
    return replace(
        customer,
        name=customer.name if edit.name is None else edit.name.strip(),
        phone=edit.phone or customer.phone,
        email=email,
        message_consent=(
            customer.message_consent if edit.message_consent is None else edit.message_consent
        ),
        language=edit.language or customer.language,
        version=customer.version + 1,
    )
