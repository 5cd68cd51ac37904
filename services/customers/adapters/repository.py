"""Reading and writing customers, devices, their orders, follow-ups, complaints, consents and
the privacy audit. SQL lives here; rules live in domain/."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from servicekit.db import upsert_on
from servicekit.timeutil import as_utc
from services.customers.adapters.orm import (
    complaint_notes,
    complaints,
    consent_changes,
    customer_orders,
    customers,
    devices,
    follow_up_attempts,
    follow_ups,
    order_states,
    privacy_audit,
)
from services.customers.domain.complaint import Complaint, Note
from services.customers.domain.customer import Customer, Device, Visit
from services.customers.domain.follow_up import Attempt, FollowUp
from services.customers.domain.history import FINAL_STATUSES, OrderState, ServiceRecord


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def _customer_from_row(row: Row[tuple[object, ...]]) -> Customer:
    m = row._mapping
    return Customer(
        id=m["id"],
        phone=m["phone"],
        name=m["name"],
        order_count=m["order_count"],
        first_seen_at=as_utc(m["first_seen_at"]),
        last_seen_at=as_utc(m["last_seen_at"]),
        last_store_id=m["last_store_id"],
        email=m["email"],
        marketing_consent=m["marketing_consent"],
        message_consent=m["message_consent"],
        language=m["language"],
        version=m["version"],
        merged_into=m["merged_into"],
        erased_at=_utc_or_none(m["erased_at"]),
    )


def _device_from_row(row: Row[tuple[object, ...]]) -> Device:
    m = row._mapping
    return Device(
        imei=m["imei"],
        owner_id=m["customer_id"],
        brand=m["brand"],
        model=m["model"],
        first_seen_at=as_utc(m["first_seen_at"]),
        last_seen_at=as_utc(m["last_seen_at"]),
    )


# Built once, values bound per call: the consumer runs these for every order taken in.
_CUSTOMER_BY_PHONE = select(customers).where(customers.c.phone == bindparam("phone"))
# `for_update` locks the row on PostgreSQL until the transaction ends, so two replicas counting
# orders of one customer at once cannot lose a count (SQLite has one writer anyway).
_CUSTOMER_BY_PHONE_FOR_UPDATE = _CUSTOMER_BY_PHONE.with_for_update()
_DEVICE_BY_IMEI = select(devices).where(devices.c.imei == bindparam("imei"))
_DEVICE_BY_IMEI_FOR_UPDATE = _DEVICE_BY_IMEI.with_for_update()
_ORDER_KNOWN = select(customer_orders.c.order_id).where(
    customer_orders.c.order_id == bindparam("order_id")
)
_UPDATE_CUSTOMER = customers.update().where(customers.c.id == bindparam("customer_id"))
_UPDATE_DEVICE = devices.update().where(devices.c.imei == bindparam("device_imei"))


async def customer_by_phone(
    session: AsyncConnection, phone: str, for_update: bool = False
) -> Customer | None:
    query = _CUSTOMER_BY_PHONE_FOR_UPDATE if for_update else _CUSTOMER_BY_PHONE
    row = (await session.execute(query, {"phone": phone})).first()
    return _customer_from_row(row) if row else None


@functools.cache
def _add_customer_unless_phone_known(dialect_name: str) -> Any:
    return (
        upsert_on(dialect_name, customers)
        .on_conflict_do_nothing(index_elements=[customers.c.phone])
        .returning(customers.c.id)
    )


async def customer_by_phone_or_add(session: AsyncConnection, new: Customer) -> Customer | None:
    """The customer with `new`'s phone, locked until the transaction ends; None when there was
    none and `new` is added. An upsert, since a phone nobody has has no row to lock: when
    another replica adds the same phone at this moment, the insert waits for its transaction
    and then yields to the row it made. The insert goes first: a new customer costs one
    statement, a known one two."""
    # Values as parameters, not .values(): the statement is built once (a consumer hot path).
    added = await session.execute(
        _add_customer_unless_phone_known(session.dialect.name),
        {"id": new.id, **_customer_values(new)},
    )
    if added.first() is not None:
        return None
    return await customer_by_phone(session, new.phone, for_update=True)


async def customer_by_id(
    session: AsyncConnection, customer_id: str, for_update: bool = False
) -> Customer | None:
    query = select(customers).where(customers.c.id == customer_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _customer_from_row(row) if row else None


async def device_by_imei(
    session: AsyncConnection, imei: str, for_update: bool = False
) -> Device | None:
    query = _DEVICE_BY_IMEI_FOR_UPDATE if for_update else _DEVICE_BY_IMEI
    row = (await session.execute(query, {"imei": imei})).first()
    return _device_from_row(row) if row else None


@functools.cache
def _add_device_unless_imei_known(dialect_name: str) -> Any:
    return (
        upsert_on(dialect_name, devices)
        .on_conflict_do_nothing(index_elements=[devices.c.imei])
        .returning(devices.c.imei)
    )


async def device_by_imei_or_add(session: AsyncConnection, new: Device) -> Device | None:
    """The device with `new`'s IMEI, locked until the transaction ends; None when there was
    none and `new` is added. An upsert, like customer_by_phone_or_add: when another replica
    brings the same new IMEI in at this moment (under another phone), the insert waits for its
    transaction and then yields to the row it made. The insert goes first, as there: most
    devices come in once."""
    added = await session.execute(
        _add_device_unless_imei_known(session.dialect.name),
        {"imei": new.imei, **_device_values(new)},
    )
    if added.first() is not None:
        return None
    return await device_by_imei(session, new.imei, for_update=True)


async def devices_of(session: AsyncConnection, customer_id: str) -> list[Device]:
    rows = await session.execute(
        select(devices)
        .where(devices.c.customer_id == customer_id)
        .order_by(devices.c.first_seen_at, devices.c.imei)
    )
    return [_device_from_row(row) for row in rows]


async def order_known(session: AsyncConnection, order_id: str) -> bool:
    return await session.scalar(_ORDER_KNOWN, {"order_id": order_id}) is not None


def _customer_values(customer: Customer) -> dict[str, object]:
    return {
        "phone": customer.phone,
        "name": customer.name,
        "email": customer.email,
        "marketing_consent": customer.marketing_consent,
        "message_consent": customer.message_consent,
        "language": customer.language,
        "version": customer.version,
        "merged_into": customer.merged_into,
        "erased_at": customer.erased_at,
        "order_count": customer.order_count,
        "first_seen_at": customer.first_seen_at,
        "last_seen_at": customer.last_seen_at,
        "last_store_id": customer.last_store_id,
    }


async def update_customer(session: AsyncConnection, customer: Customer) -> None:
    await session.execute(
        _UPDATE_CUSTOMER, {"customer_id": customer.id, **_customer_values(customer)}
    )


def _device_values(device: Device) -> dict[str, object]:
    return {
        "customer_id": device.owner_id,
        "brand": device.brand,
        "model": device.model,
        "first_seen_at": device.first_seen_at,
        "last_seen_at": device.last_seen_at,
    }


async def update_device(session: AsyncConnection, device: Device) -> None:
    await session.execute(_UPDATE_DEVICE, {"device_imei": device.imei, **_device_values(device)})


_ADD_ORDER = customer_orders.insert()


async def add_order(
    session: AsyncConnection, customer_id: str, visit: Visit, personal_key_id: str
) -> None:
    await session.execute(
        _ADD_ORDER,
        {
            "order_id": visit.order_id,
            "customer_id": customer_id,
            "branch_id": visit.branch_id,
            "store_id": visit.store_id,
            "received_at": visit.received_at,
            "number": visit.number or None,
            "imei": visit.imei,
            "service_type": visit.service_type or None,
            "personal_key_id": personal_key_id or None,
        },
    )


async def personal_keys_of(session: AsyncConnection, customer_id: str) -> list[str]:
    """The data keys of the customer's orders (merged records' orders included)."""
    found = await session.execute(
        select(customer_orders.c.personal_key_id)
        .where(
            customer_orders.c.customer_id == customer_id,
            customer_orders.c.personal_key_id.is_not(None),
        )
        .distinct()
    )
    return sorted(str(key_id) for key_id in found.scalars())


async def add_consent_change(
    session: AsyncConnection,
    customer_id: str,
    consent: bool,
    source: str,
    actor_user_id: str,
    at: datetime,
    order_id: str | None = None,
) -> None:
    await session.execute(
        consent_changes.insert(),
        {
            "customer_id": customer_id,
            "message_consent": consent,
            "source": source,
            "order_id": order_id,
            "actor_user_id": actor_user_id,
            "at": at,
        },
    )


async def consents_of(session: AsyncConnection, customer_id: str) -> list[dict[str, object]]:
    rows = await session.execute(
        select(consent_changes)
        .where(consent_changes.c.customer_id == customer_id)
        .order_by(consent_changes.c.at, consent_changes.c.id)
    )
    return [
        {
            "message_consent": r.message_consent,
            "source": r.source,
            "order_id": r.order_id,
            "actor_user_id": r.actor_user_id,
            "at": as_utc(r.at),
        }
        for r in rows
    ]


# Orders still open: no status event yet (just received), or a status not final.
_OPEN = or_(order_states.c.status.is_(None), order_states.c.status.not_in(FINAL_STATUSES))


async def open_stores(
    session: AsyncConnection, customer_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The stores holding an open order of each customer (they see the phone in clear)."""
    if not customer_ids:
        return {}
    rows = await session.execute(
        select(customer_orders.c.customer_id, customer_orders.c.store_id)
        .select_from(
            customer_orders.outerjoin(
                order_states, order_states.c.order_id == customer_orders.c.order_id
            )
        )
        .where(customer_orders.c.customer_id.in_(customer_ids), _OPEN)
        .distinct()
    )
    found: dict[str, list[str]] = {}
    for customer_id, store_id in rows:
        found.setdefault(customer_id, []).append(store_id)
    return {key: sorted(stores) for key, stores in found.items()}


async def order_paths(session: AsyncConnection, customer_id: str) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(customer_orders.c.branch_id, customer_orders.c.store_id)
        .where(customer_orders.c.customer_id == customer_id)
        .distinct()
    )
    return [(branch, store) for branch, store in rows]


def _in_unit(
    table_c: object, branch_id: str | None, store_id: str | None
) -> list[ColumnElement[bool]]:
    conditions = []
    if branch_id:
        conditions.append(table_c.branch_id == branch_id)  # type: ignore[attr-defined]
    if store_id:
        conditions.append(table_c.store_id == store_id)  # type: ignore[attr-defined]
    return conditions


async def list_customers(
    session: AsyncConnection,
    branch_id: str | None,
    store_id: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[Customer]:
    """Customers with an order in the unit, latest seen first; merged records left out."""
    has_order = exists().where(
        customer_orders.c.customer_id == customers.c.id,
        *_in_unit(customer_orders.c, branch_id, store_id),
    )
    conditions: list[ColumnElement[bool]] = [customers.c.merged_into.is_(None)]
    if branch_id or store_id:
        conditions.append(has_order)
    if after:
        at, last_id = after
        conditions.append(
            or_(
                customers.c.last_seen_at < at,
                and_(customers.c.last_seen_at == at, customers.c.id < last_id),
            )
        )
    rows = await session.execute(
        select(customers)
        .where(*conditions)
        .order_by(customers.c.last_seen_at.desc(), customers.c.id.desc())
        .limit(limit)
    )
    return [_customer_from_row(row) for row in rows]


async def history_of(session: AsyncConnection, customer_id: str) -> list[ServiceRecord]:
    """Every order of the customer, newest first, with where it stands."""
    o, s = customer_orders.c, order_states.c
    rows = await session.execute(
        select(
            o.order_id,
            o.number,
            o.branch_id,
            o.store_id,
            o.imei,
            o.service_type,
            o.received_at,
            s.number.label("state_number"),
            s.status,
            s.paid_fen,
            s.updated_at,
            s.closed_at,
        )
        .select_from(customer_orders.outerjoin(order_states, s.order_id == o.order_id))
        .where(o.customer_id == customer_id)
        .order_by(o.received_at.desc(), o.order_id)
    )
    return [
        ServiceRecord(
            order_id=r.order_id,
            number=r.number or r.state_number or "",
            branch_id=r.branch_id,
            store_id=r.store_id,
            imei=r.imei or "",
            service_type=r.service_type or "",
            received_at=as_utc(r.received_at),
            status=r.status or "received",
            paid_fen=r.paid_fen or 0,
            updated_at=_utc_or_none(r.updated_at),
            closed_at=_utc_or_none(r.closed_at),
        )
        for r in rows
    ]


def _order_state_from_row(row: Row[tuple[object, ...]]) -> OrderState:
    m = row._mapping
    return OrderState(
        order_id=m["order_id"],
        number=m["number"],
        branch_id=m["branch_id"],
        store_id=m["store_id"],
        status=m["status"],
        version=m["version"],
        paid_fen=m["paid_fen"],
        updated_at=as_utc(m["updated_at"]),
        closed_at=_utc_or_none(m["closed_at"]),
    )


async def order_state(session: AsyncConnection, order_id: str) -> OrderState | None:
    query = select(order_states).where(order_states.c.order_id == order_id).with_for_update()
    row = (await session.execute(query)).first()
    return _order_state_from_row(row) if row else None


async def put_order_state(session: AsyncConnection, state: OrderState, known: bool) -> None:
    values = {
        "number": state.number,
        "branch_id": state.branch_id,
        "store_id": state.store_id,
        "status": state.status,
        "version": state.version,
        "paid_fen": state.paid_fen,
        "updated_at": state.updated_at,
        "closed_at": state.closed_at,
    }
    if known:
        await session.execute(
            order_states.update().where(order_states.c.order_id == state.order_id), values
        )
    else:
        await session.execute(order_states.insert(), {"order_id": state.order_id, **values})


async def merge_into(session: AsyncConnection, keep_id: str, other_id: str) -> None:
    """The other record's devices, orders (and so history and follow-ups) and consents move to
    the kept one."""
    for table in (devices, customer_orders, consent_changes):
        await session.execute(
            update(table).where(table.c.customer_id == other_id).values(customer_id=keep_id)
        )


async def forget_person(session: AsyncConnection, customer_id: str) -> None:
    """Erasure: the devices' link to the person goes (each order keeps its IMEI), and what the
    customer said on follow-up calls is removed; scores stay for the statistics."""
    await session.execute(delete(devices).where(devices.c.customer_id == customer_id))
    their_orders = select(customer_orders.c.order_id).where(
        customer_orders.c.customer_id == customer_id
    )
    await session.execute(
        update(follow_ups).where(follow_ups.c.order_id.in_(their_orders)).values(comments=None)
    )
    their_follow_ups = select(follow_ups.c.id).where(follow_ups.c.order_id.in_(their_orders))
    await session.execute(
        update(follow_up_attempts)
        .where(follow_up_attempts.c.follow_up_id.in_(their_follow_ups))
        .values(comments=None)
    )


# Follow-ups -------------------------------------------------------------------------------


def _follow_up_from_row(row: Row[tuple[object, ...]]) -> FollowUp:
    m = row._mapping
    return FollowUp(
        id=m["id"],
        order_id=m["order_id"],
        number=m["number"],
        branch_id=m["branch_id"],
        store_id=m["store_id"],
        picked_up_at=as_utc(m["picked_up_at"]),
        due_at=as_utc(m["due_at"]),
        state=m["state"],
        assigned_to=m["assigned_to"],
        attempts=m["attempts"],
        score=m["score"],
        comments=m["comments"],
    )


def _follow_up_values(follow_up: FollowUp) -> dict[str, object]:
    return {
        "order_id": follow_up.order_id,
        "number": follow_up.number,
        "branch_id": follow_up.branch_id,
        "store_id": follow_up.store_id,
        "picked_up_at": follow_up.picked_up_at,
        "due_at": follow_up.due_at,
        "state": follow_up.state,
        "assigned_to": follow_up.assigned_to,
        "attempts": follow_up.attempts,
        "score": follow_up.score,
        "comments": follow_up.comments,
    }


async def follow_up_of_order(session: AsyncConnection, order_id: str) -> FollowUp | None:
    row = (
        await session.execute(select(follow_ups).where(follow_ups.c.order_id == order_id))
    ).first()
    return _follow_up_from_row(row) if row else None


async def follow_up_by_id(
    session: AsyncConnection, follow_up_id: str, for_update: bool = False
) -> FollowUp | None:
    query = select(follow_ups).where(follow_ups.c.id == follow_up_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _follow_up_from_row(row) if row else None


async def add_follow_up(session: AsyncConnection, follow_up: FollowUp, now: datetime) -> None:
    await session.execute(
        follow_ups.insert(),
        {"id": follow_up.id, "created_at": now, **_follow_up_values(follow_up)},
    )


async def update_follow_up(session: AsyncConnection, follow_up: FollowUp) -> None:
    await session.execute(
        follow_ups.update().where(follow_ups.c.id == follow_up.id), _follow_up_values(follow_up)
    )


async def add_attempt(session: AsyncConnection, follow_up_id: str, attempt: Attempt) -> None:
    await session.execute(
        follow_up_attempts.insert(),
        {
            "follow_up_id": follow_up_id,
            "number": attempt.number,
            "reached": attempt.reached,
            "score": attempt.score,
            "comments": attempt.comments,
            "agent_id": attempt.agent_id,
            "at": attempt.at,
        },
    )


async def attempts_of(
    session: AsyncConnection, follow_up_ids: Sequence[str]
) -> dict[str, list[Attempt]]:
    if not follow_up_ids:
        return {}
    rows = await session.execute(
        select(follow_up_attempts)
        .where(follow_up_attempts.c.follow_up_id.in_(follow_up_ids))
        .order_by(follow_up_attempts.c.follow_up_id, follow_up_attempts.c.number)
    )
    found: dict[str, list[Attempt]] = {}
    for r in rows:
        found.setdefault(r.follow_up_id, []).append(
            Attempt(r.number, r.reached, r.score, r.comments, r.agent_id, as_utc(r.at))
        )
    return found


@dataclass(frozen=True)
class Listing:
    """Which rows of a unit a list shows: state, overdue as of `now`, a page after a key."""

    branch_id: str | None
    store_id: str | None
    state: str | None
    overdue_at: datetime | None
    limit: int
    after: tuple[datetime, str] | None


async def list_follow_ups(session: AsyncConnection, listing: Listing) -> list[FollowUp]:
    """Earliest due first: the order an agent works the queue in."""
    c = follow_ups.c
    conditions = _in_unit(c, listing.branch_id, listing.store_id)
    if listing.state:
        conditions.append(c.state == listing.state)
    if listing.overdue_at:
        conditions += [c.state == "open", c.due_at < listing.overdue_at]
    if listing.after:
        at, last_id = listing.after
        conditions.append(or_(c.due_at > at, and_(c.due_at == at, c.id > last_id)))
    rows = await session.execute(
        select(follow_ups).where(*conditions).order_by(c.due_at, c.id).limit(listing.limit)
    )
    return [_follow_up_from_row(row) for row in rows]


async def customers_of_orders(
    session: AsyncConnection, order_ids: Sequence[str]
) -> dict[str, Customer]:
    """Who brought each order in (once their OrderReceived is handled)."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(customer_orders.c.order_id, customers)
        .join(customers, customers.c.id == customer_orders.c.customer_id)
        .where(customer_orders.c.order_id.in_(order_ids))
    )
    return {row.order_id: _customer_from_row(row) for row in rows}


# Complaints -------------------------------------------------------------------------------


def _complaint_from_row(row: Row[tuple[object, ...]]) -> Complaint:
    m = row._mapping
    return Complaint(
        id=m["id"],
        follow_up_id=m["follow_up_id"],
        order_id=m["order_id"],
        branch_id=m["branch_id"],
        store_id=m["store_id"],
        score=m["score"],
        owner_id=m["owner_id"],
        opened_at=as_utc(m["opened_at"]),
        due_at=as_utc(m["due_at"]),
        state=m["state"],
        outcome=m["outcome"],
        closed_at=_utc_or_none(m["closed_at"]),
        closed_by=m["closed_by"],
    )


def _complaint_values(complaint: Complaint) -> dict[str, object]:
    return {
        "follow_up_id": complaint.follow_up_id,
        "order_id": complaint.order_id,
        "branch_id": complaint.branch_id,
        "store_id": complaint.store_id,
        "score": complaint.score,
        "owner_id": complaint.owner_id,
        "state": complaint.state,
        "outcome": complaint.outcome,
        "opened_at": complaint.opened_at,
        "due_at": complaint.due_at,
        "closed_at": complaint.closed_at,
        "closed_by": complaint.closed_by,
    }


async def add_complaint(session: AsyncConnection, complaint: Complaint) -> None:
    await session.execute(complaints.insert(), {"id": complaint.id, **_complaint_values(complaint)})


async def update_complaint(session: AsyncConnection, complaint: Complaint) -> None:
    await session.execute(
        complaints.update().where(complaints.c.id == complaint.id), _complaint_values(complaint)
    )


async def complaint_by_id(
    session: AsyncConnection, complaint_id: str, for_update: bool = False
) -> Complaint | None:
    query = select(complaints).where(complaints.c.id == complaint_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _complaint_from_row(row) if row else None


async def complaint_ids_of(
    session: AsyncConnection, follow_up_ids: Sequence[str]
) -> dict[str, str]:
    if not follow_up_ids:
        return {}
    rows = await session.execute(
        select(complaints.c.follow_up_id, complaints.c.id).where(
            complaints.c.follow_up_id.in_(follow_up_ids)
        )
    )
    return {follow_up_id: complaint_id for follow_up_id, complaint_id in rows}


async def complaints_of_orders(
    session: AsyncConnection, order_ids: Sequence[str]
) -> list[Complaint]:
    if not order_ids:
        return []
    rows = await session.execute(
        select(complaints).where(complaints.c.order_id.in_(order_ids)).order_by(complaints.c.id)
    )
    return [_complaint_from_row(row) for row in rows]


async def follow_ups_of_orders(
    session: AsyncConnection, order_ids: Sequence[str]
) -> list[FollowUp]:
    if not order_ids:
        return []
    rows = await session.execute(
        select(follow_ups).where(follow_ups.c.order_id.in_(order_ids)).order_by(follow_ups.c.id)
    )
    return [_follow_up_from_row(row) for row in rows]


async def list_complaints(
    session: AsyncConnection, listing: Listing, owner_id: str | None
) -> list[Complaint]:
    """Complaints of the unit (or only those `owner_id` owns), earliest due first."""
    c = complaints.c
    conditions = _in_unit(c, listing.branch_id, listing.store_id)
    if owner_id is not None:
        conditions.append(c.owner_id == owner_id)
    if listing.state:
        conditions.append(c.state == listing.state)
    if listing.overdue_at:
        conditions += [c.state == "open", c.due_at < listing.overdue_at]
    if listing.after:
        at, last_id = listing.after
        conditions.append(or_(c.due_at > at, and_(c.due_at == at, c.id > last_id)))
    rows = await session.execute(
        select(complaints).where(*conditions).order_by(c.due_at, c.id).limit(listing.limit)
    )
    return [_complaint_from_row(row) for row in rows]


async def add_note(session: AsyncConnection, complaint_id: str, note: Note) -> None:
    await session.execute(
        complaint_notes.insert(),
        {
            "complaint_id": complaint_id,
            "author_id": note.author_id,
            "note": note.note,
            "at": note.at,
        },
    )


async def notes_of(session: AsyncConnection, complaint_ids: Sequence[str]) -> dict[str, list[Note]]:
    if not complaint_ids:
        return {}
    rows = await session.execute(
        select(complaint_notes)
        .where(complaint_notes.c.complaint_id.in_(complaint_ids))
        .order_by(complaint_notes.c.id)
    )
    found: dict[str, list[Note]] = {}
    for r in rows:
        found.setdefault(r.complaint_id, []).append(Note(r.author_id, r.note, as_utc(r.at)))
    return found


# Privacy audit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    id: int
    customer_id: str
    action: str
    actor_user_id: str
    actor_role: str
    at: datetime
    reason: str
    detail: str


async def add_audit(
    session: AsyncConnection,
    customer_id: str,
    action: str,
    actor_user_id: str,
    actor_role: str,
    at: datetime,
    reason: str,
    detail: str,
) -> None:
    await session.execute(
        privacy_audit.insert(),
        {
            "customer_id": customer_id,
            "action": action,
            "actor_user_id": actor_user_id,
            "actor_role": actor_role,
            "at": at,
            "reason": reason,
            "detail": detail,
        },
    )


async def list_audit(
    session: AsyncConnection, customer_id: str | None, limit: int, before_id: int | None
) -> list[AuditEntry]:
    """Newest first."""
    c = privacy_audit.c
    conditions: list[ColumnElement[bool]] = []
    if customer_id:
        conditions.append(c.customer_id == customer_id)
    if before_id is not None:
        conditions.append(c.id < before_id)
    rows = await session.execute(
        select(privacy_audit).where(*conditions).order_by(c.id.desc()).limit(limit)
    )
    return [
        AuditEntry(
            r.id,
            r.customer_id,
            r.action,
            r.actor_user_id,
            r.actor_role,
            as_utc(r.at),
            r.reason,
            r.detail,
        )
        for r in rows
    ]


async def phone_taken(session: AsyncConnection, phone: str, other_than: str) -> bool:
    count = await session.scalar(
        select(func.count()).where(customers.c.phone == phone, customers.c.id != other_than)
    )
    return bool(count)
