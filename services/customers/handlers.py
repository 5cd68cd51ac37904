"""Use cases of the customers service: plain async functions over a unit of work."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from google.protobuf.message import DecodeError
from sqlalchemy.ext.asyncio import AsyncConnection

from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit import paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, FieldError, NotFound, PreconditionFailed, invalid
from servicekit.identifiers import imei_problem, mobile_problem
from servicekit.inbox import UnprocessableEvent
from servicekit.personal_data import DataKeys, KeyShredded
from servicekit.timeutil import from_timestamp, utc_now
from servicekit.uow import UnitOfWork
from services.customers import events
from services.customers.adapters import repository
from services.customers.domain import complaint as complaints
from services.customers.domain import follow_up as follow_ups
from services.customers.domain import privacy
from services.customers.domain.complaint import Complaint, Note
from services.customers.domain.customer import (
    LANGUAGES,
    Customer,
    CustomerEdit,
    Device,
    UnusableVisit,
    Visit,
    check_edit,
    check_visit,
    customer_after_edit,
    customer_after_visit,
    device_after_visit,
)
from services.customers.domain.follow_up import Attempt, FollowUp
from services.customers.domain.history import (
    OrderState,
    ServiceRecord,
    is_open,
    is_pickup,
    state_after,
)
from services.customers.notifications import store as notification_store

# Hops from a merged record to the one it was merged into (a merged record may itself have been
# kept once and merged later): a bound, so a loop in bad data cannot hang a consumer.
MAX_MERGE_HOPS = 5

log = logging.getLogger(__name__)

NewUow = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class CustomerProfile:
    """A customer with the devices they own now, and the stores holding an open order of
    theirs."""

    customer: Customer
    devices: list[Device]
    open_store_ids: list[str]


def visit_from_order_received(
    event: events_pb2.OrderReceived, person: events_pb2.PersonalData
) -> Visit:
    # An event without its own intake time falls back to when it occurred.
    received = event.received_at if event.HasField("received_at") else event.meta.occurred_at
    return Visit(
        order_id=event.order_id,
        branch_id=event.meta.branch_id,
        store_id=event.meta.store_id,
        customer_name=person.name,
        phone=person.phone,
        imei=event.device.imei,
        brand=event.device.brand,
        model=event.device.model,
        received_at=from_timestamp(received),
        message_consent=event.customer.message_consent,
        # A language we do not write templates in is as good as none said.
        language=event.customer.language if event.customer.language in LANGUAGES else "",
        number=event.number,
        service_type=event.service_type,
    )


async def follow_merges(uow: UnitOfWork, customer: Customer | None) -> Customer | None:
    """The record a merged one now lives on."""
    for _ in range(MAX_MERGE_HOPS):
        if customer is None or not customer.merged_into:
            return customer
        customer = await repository.customer_by_id(
            uow.session, customer.merged_into, for_update=True
        )
    return customer


async def open_person(
    personal_keys: DataKeys, event: events_pb2.OrderReceived
) -> events_pb2.PersonalData:
    """The name and phone the event carries sealed (KeyShredded once the customer is erased)."""
    try:
        key = await personal_keys.key_by_id(event.customer.key_id)
        return events_pb2.PersonalData.FromString(key.open(event.customer.sealed, event.order_id))
    except (ValueError, DecodeError) as error:
        raise UnprocessableEvent(f"customer: {error}") from error


async def record_order_received(
    uow: UnitOfWork, event: events_pb2.OrderReceived, personal_keys: DataKeys
) -> None:
    """A work order was taken in: the customer and their device become known (or are brought
    up to date) and the order joins the customer's history. The consumer commits.

    An order whose customer was erased before it got here has nothing left to record: its
    key is destroyed, and orders cleared the order's copy when it heard of the erasure."""
    try:
        person = await open_person(personal_keys, event)
    except KeyShredded as gone:
        log.info("order %s: its customer is erased (%s)", event.order_id, gone)
        return
    visit = visit_from_order_received(event, person)
    try:
        check_visit(visit)
    except UnusableVisit as error:
        raise UnprocessableEvent(str(error)) from error
    session = uow.session
    if await repository.order_known(session, visit.order_id):
        return  # the same order announced again under another event id: counted already
    new = customer_after_visit(None, visit, new_id=str(uuid.uuid4()))
    known = await follow_merges(uow, await repository.customer_by_phone_or_add(session, new))
    customer = new if known is None else customer_after_visit(known, visit, new_id=new.id)
    if known is not None:
        await repository.update_customer(session, customer)
    if visit.message_consent and not (known and known.message_consent):
        # Given to the clerk who took the order in.
        await repository.add_consent_change(
            session,
            customer.id,
            True,
            "intake",
            event.meta.actor_user_id or "intake",
            visit.received_at,
            visit.order_id,
        )
    first_seen = device_after_visit(None, visit, customer.id)
    seen = await repository.device_by_imei_or_add(session, first_seen)
    if seen is not None:
        await repository.update_device(session, device_after_visit(seen, visit, customer.id))
    await repository.add_order(session, customer.id, visit, event.customer.key_id)


async def find_customer(new_uow: NewUow, phone: str, imei: str) -> CustomerProfile:
    """A returning customer by exact phone, or by the IMEI of a device they own now."""
    if phone:
        if problem := mobile_problem(phone):
            raise invalid("phone", problem)
    elif imei:
        if problem := imei_problem(imei):
            raise invalid("imei", problem)
    else:
        raise invalid("phone", "give phone or imei")
    async with new_uow() as uow:
        session = uow.session
        if phone:
            customer = await repository.customer_by_phone(session, phone)
        else:
            device = await repository.device_by_imei(session, imei)
            customer = await repository.customer_by_id(session, device.owner_id) if device else None
        customer = await follow_merges(uow, customer)
        if customer is None:
            # The number or IMEI stays out of the message: it ends up in logs.
            raise NotFound("no customer with this phone" if phone else "no device with this IMEI")
        return await profile_of(session, customer)


async def profile_of(session: AsyncConnection, customer: Customer) -> CustomerProfile:
    owned = await repository.devices_of(session, customer.id)
    stores = await repository.open_stores(session, [customer.id])
    return CustomerProfile(customer, owned, stores.get(customer.id, []))


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

FOLLOW_UP_ROLES = ("followup_agent", "branch_manager", "hq_admin")
"""Who works the follow-up queue: agents, and managers standing in for them."""
EDIT_ROLES = ("clerk", "followup_agent", "branch_manager", "hq_admin")
AUDIT_ROLES = ("hq_admin",)


def _decode_after(token: str) -> tuple[datetime, str]:
    at, key = paging.decode_page_token(token, 2)
    try:
        return datetime.fromisoformat(at), key
    except ValueError as error:
        raise invalid("cursor", "is not a cursor this service issued") from error


# Order history and follow-ups from order events ------------------------------------------


def order_state_from_event(event: order_events_pb2.OrderStatusChanged) -> OrderState:
    occurred = from_timestamp(event.meta.occurred_at)
    return OrderState(
        order_id=event.order_id,
        number=event.number,
        branch_id=event.meta.branch_id,
        store_id=event.meta.store_id,
        status=event.to_status,
        version=event.version,
        paid_fen=event.paid_fen,
        updated_at=occurred,
        closed_at=occurred if event.to_status == "closed" else None,
    )


async def record_order_status(
    uow: UnitOfWork, event: order_events_pb2.OrderStatusChanged, days_after_pickup: int
) -> None:
    """An order moved: its place in the customer's history follows (only forward, events may
    come late), and a pickup puts a follow-up call in the queue of the store and its branch."""
    if not event.order_id or not event.to_status:
        raise UnprocessableEvent(f"order {event.order_id or '?'}: no order id or status")
    session = uow.session
    news = order_state_from_event(event)
    known = await repository.order_state(session, news.order_id)
    if (newer := state_after(known, news)) is not None:
        await repository.put_order_state(session, newer, known is not None)
    if not is_pickup(event.step, event.to_status):
        return
    if await repository.follow_up_of_order(session, event.order_id) is not None:
        return  # the same pickup announced again
    follow_up = follow_ups.new_follow_up(
        str(uuid.uuid4()),
        event.order_id,
        event.number,
        news.branch_id,
        news.store_id,
        news.updated_at,
        days_after_pickup,
    )
    await repository.add_follow_up(session, follow_up, utc_now())


# Customer records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerDetail:
    profile: CustomerProfile
    history: list[ServiceRecord]


def _reachable(auth: AuthContext, paths: list[tuple[str, str]]) -> bool:
    return privacy.may_act_on(auth, paths)


async def _customer_in_reach(
    uow: UnitOfWork, auth: AuthContext, customer_id: str, field: str = "customer_id"
) -> Customer:
    """A customer the caller may change: one with an order in their scope (HQ: any). Others
    are not found, as if they did not exist."""
    customer = await repository.customer_by_id(uow.session, customer_id, for_update=True)
    if customer is None or not _reachable(
        auth, await repository.order_paths(uow.session, customer_id)
    ):
        raise NotFound(f"no customer {customer_id}", [FieldError(field, "no such customer")])
    return customer


async def list_customers(
    new_uow: NewUow, auth: AuthContext, branch_id: str, store_id: str, size: int, token: str
) -> tuple[list[CustomerProfile], str]:
    """Customers with an order in the caller's unit (or the unit below it they name)."""
    branch, store = auth.narrow(branch_id or None, store_id or None)
    limit = paging.page_size(size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _decode_after(token) if token else None
    async with new_uow() as uow:
        found = await repository.list_customers(uow.session, branch, store, limit + 1, after)
        page = found[:limit]
        stores = await repository.open_stores(uow.session, [c.id for c in page])
        profiles = [CustomerProfile(c, [], stores.get(c.id, [])) for c in page]
    if len(found) > limit:
        last = page[-1]
        return profiles, paging.encode_page_token(last.last_seen_at.isoformat(), last.id)
    return profiles, ""


async def get_customer(new_uow: NewUow, customer_id: str) -> CustomerDetail:
    """A customer by id with their history across the chain: the record is shared chain-wide,
    like a look-up by phone."""
    async with new_uow() as uow:
        customer = await follow_merges(
            uow, await repository.customer_by_id(uow.session, customer_id)
        )
        if customer is None:
            raise NotFound(f"no customer {customer_id}")
        profile = await profile_of(uow.session, customer)
        history = await repository.history_of(uow.session, customer.id)
    return CustomerDetail(profile, history)


async def update_customer(
    new_uow: NewUow, auth: AuthContext, customer_id: str, expected_version: int, edit: CustomerEdit
) -> CustomerProfile:
    """Staff correct a record at the customer's word; a consent given or withdrawn is kept
    with who recorded it."""
    require_role(auth, EDIT_ROLES)
    check_edit(edit)
    async with new_uow() as uow:
        session = uow.session
        customer = await _customer_in_reach(uow, auth, customer_id)
        if customer.erased or customer.merged_into:
            raise Conflict("this record is erased or merged: it can no longer be changed")
        if expected_version and expected_version != customer.version:
            raise PreconditionFailed(
                f"the customer changed (version {customer.version}): read it again"
            )
        if (
            edit.phone
            and edit.phone != customer.phone
            and await repository.phone_taken(session, edit.phone, customer.id)
        ):
            raise Conflict(
                "another customer has this phone: merge the two records instead",
                [FieldError("phone", "another customer has this phone")],
            )
        after = customer_after_edit(customer, edit)
        await repository.update_customer(session, after)
        if after.message_consent != customer.message_consent:
            await repository.add_consent_change(
                session, customer.id, after.message_consent, "edit", auth.user_id, utc_now()
            )
        profile = await profile_of(session, after)
        await uow.commit()
    return profile


async def merge_customers(
    new_uow: NewUow, auth: AuthContext, keep_id: str, merge_id: str, reason: str
) -> CustomerProfile:
    """Two records of one person become one (audited)."""
    require_role(auth, privacy.PRIVACY_ROLES)
    why = privacy.check_reason(reason)
    async with new_uow() as uow:
        session = uow.session
        # Locked in id order, whatever the order asked: merge(A, B) beside merge(B, A) then
        # waits its turn instead of deadlocking.
        reached = {
            customer_id: await _customer_in_reach(uow, auth, customer_id, field)
            for customer_id, field in sorted({keep_id: "keep_id", merge_id: "merge_id"}.items())
        }
        keep, other = reached[keep_id], reached[merge_id]
        kept, merged = privacy.merged(keep, other)
        await repository.merge_into(session, kept.id, merged.id)
        await repository.update_customer(session, kept)
        await repository.update_customer(session, merged)
        await repository.add_audit(
            session,
            kept.id,
            privacy.MERGE,
            auth.user_id,
            auth.role,
            utc_now(),
            why,
            f"customer {merged.id} merged into {kept.id}",
        )
        profile = await profile_of(session, kept)
        await uow.commit()
    return profile


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "message_consent": customer.message_consent,
        "marketing_consent": customer.marketing_consent,
        "language": customer.language,
        "order_count": customer.order_count,
        "first_seen_at": _when(customer.first_seen_at),
        "last_seen_at": _when(customer.last_seen_at),
        "last_store_id": customer.last_store_id,
        "erased_at": _when(customer.erased_at),
    }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "reached": attempt.reached,
        "score": attempt.score,
        "comments": attempt.comments,
        "agent_id": attempt.agent_id,
        "at": _when(attempt.at),
    }


async def export_customer(new_uow: NewUow, auth: AuthContext, customer_id: str, reason: str) -> str:
    """PIPL: everything held about the customer, as JSON; the read-out is audited."""
    require_role(auth, privacy.PRIVACY_ROLES)
    why = privacy.check_reason(reason)
    now = utc_now()
    async with new_uow() as uow:
        session = uow.session
        customer = await _customer_in_reach(uow, auth, customer_id)
        owned = await repository.devices_of(session, customer.id)
        history = await repository.history_of(session, customer.id)
        order_ids = [record.order_id for record in history]
        calls = await repository.follow_ups_of_orders(session, order_ids)
        attempts = await repository.attempts_of(session, [f.id for f in calls])
        cases = await repository.complaints_of_orders(session, order_ids)
        notes = await repository.notes_of(session, [c.id for c in cases])
        consents = await repository.consents_of(session, customer.id)
        notices = await notification_store.notices_of_orders(session, order_ids)
        document = {
            "exported_at": now.isoformat(),
            "customer": _customer_json(customer),
            "devices": [
                {
                    "imei": d.imei,
                    "brand": d.brand,
                    "model": d.model,
                    "first_seen_at": _when(d.first_seen_at),
                    "last_seen_at": _when(d.last_seen_at),
                }
                for d in owned
            ],
            "history": [
                {
                    "order_id": r.order_id,
                    "number": r.number,
                    "branch_id": r.branch_id,
                    "store_id": r.store_id,
                    "imei": r.imei,
                    "service_type": r.service_type,
                    "status": r.status,
                    "paid_fen": r.paid_fen,
                    "received_at": _when(r.received_at),
                    "closed_at": _when(r.closed_at),
                }
                for r in history
            ],
            "follow_ups": [
                {
                    "id": f.id,
                    "order_id": f.order_id,
                    "state": f.state,
                    "due_at": _when(f.due_at),
                    "score": f.score,
                    "comments": f.comments,
                    "attempts": [_attempt_json(a) for a in attempts.get(f.id, [])],
                }
                for f in calls
            ],
            "complaints": [
                {
                    "id": c.id,
                    "order_id": c.order_id,
                    "score": c.score,
                    "state": c.state,
                    "outcome": c.outcome,
                    "opened_at": _when(c.opened_at),
                    "closed_at": _when(c.closed_at),
                    "notes": [
                        {"author_id": n.author_id, "note": n.note, "at": _when(n.at)}
                        for n in notes.get(c.id, [])
                    ],
                }
                for c in cases
            ],
            "consents": [{**c, "at": _when(c["at"])} for c in consents],  # type: ignore[arg-type]
            "notices": [
                {
                    "order_id": n.order_id,
                    "kind": n.kind,
                    "language": n.language,
                    "status": n.status,
                    "text": n.text,
                    "created_at": _when(n.created_at),
                    "sent_at": _when(n.sent_at),
                }
                for n in notices
            ],
        }
        await repository.add_audit(
            session,
            customer.id,
            privacy.EXPORT,
            auth.user_id,
            auth.role,
            now,
            why,
            f"{len(owned)} devices, {len(history)} orders, {len(calls)} follow-ups, "
            f"{len(cases)} complaints",
        )
        await uow.commit()
    return json.dumps(document, ensure_ascii=False)


async def erase_customer(
    new_uow: NewUow, auth: AuthContext, customer_id: str, reason: str, personal_keys: DataKeys
) -> CustomerProfile:
    """PIPL: the person anonymised, their orders kept for accounting (audited). Refused while
    a store still holds one of their devices: it must be able to reach them.

    The data keys of their orders are destroyed before the commit (a failed commit leaves
    them destroyed, and the erasure can be asked again; never the other way round), so every
    event that carried their name and phone, in any stream or dead letter, is unreadable;
    CustomerErased then tells orders to clear its copy."""
    require_role(auth, privacy.PRIVACY_ROLES)
    why = privacy.check_reason(reason)
    now = utc_now()
    async with new_uow() as uow:
        session = uow.session
        customer = await _customer_in_reach(uow, auth, customer_id)
        history = await repository.history_of(session, customer.id)
        if any(is_open(record.status) for record in history):
            raise Conflict("an order of this customer is still open: erase after it is closed")
        key_ids = await repository.personal_keys_of(session, customer.id)
        after = privacy.erased(
            customer,
            now,
            privacy.erased_phone(),
            order_ids=[record.order_id for record in history],
            key_ids=key_ids,
            by=auth,
        )
        await personal_keys.shred(key_ids)
        await repository.forget_person(session, customer.id)
        await notification_store.forget_notices_of_orders(
            session, [record.order_id for record in history]
        )
        await repository.update_customer(session, after)
        await repository.add_audit(
            session,
            customer.id,
            privacy.ERASURE,
            auth.user_id,
            auth.role,
            now,
            why,
            f"anonymised; {len(history)} orders kept for accounting",
        )
        uow.track(after, events.of_customer)
        profile = await profile_of(session, after)
        await uow.commit()
    return profile


async def list_privacy_audit(
    new_uow: NewUow, auth: AuthContext, customer_id: str, size: int, token: str
) -> tuple[list[repository.AuditEntry], str]:
    require_role(auth, AUDIT_ROLES)
    limit = paging.page_size(size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    before = None
    if token:
        raw = paging.decode_page_token(token, 1)[0]
        if not raw.isdigit():
            raise invalid("cursor", "is not a cursor this service issued")
        before = int(raw)
    async with new_uow() as uow:
        found = await repository.list_audit(uow.session, customer_id or None, limit + 1, before)
    if len(found) > limit:
        return found[:limit], paging.encode_page_token(str(found[limit - 1].id))
    return found, ""


# Follow-ups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpView:
    follow_up: FollowUp
    customer: Customer | None  # None until the order's OrderReceived is handled
    attempts: list[Attempt]
    complaint_id: str | None


async def _follow_up_views(session: AsyncConnection, found: list[FollowUp]) -> list[FollowUpView]:
    owners = await repository.customers_of_orders(session, [f.order_id for f in found])
    attempts = await repository.attempts_of(session, [f.id for f in found])
    cases = await repository.complaint_ids_of(session, [f.id for f in found])
    return [
        FollowUpView(f, owners.get(f.order_id), attempts.get(f.id, []), cases.get(f.id))
        for f in found
    ]


def _listing(
    auth: AuthContext, state: str, states: tuple[str, ...], overdue: bool, size: int, token: str
) -> repository.Listing:
    if state and state not in states:
        raise invalid("state", f"must be one of {', '.join(states)}")
    return repository.Listing(
        branch_id=auth.branch_id,
        store_id=auth.store_id,
        state=state or None,
        overdue_at=follow_ups.overdue_before(utc_now()) if overdue else None,
        limit=paging.page_size(size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) + 1,
        after=_decode_after(token) if token else None,
    )


async def list_follow_ups(
    new_uow: NewUow, auth: AuthContext, state: str, overdue: bool, size: int, token: str
) -> tuple[list[FollowUpView], str]:
    """The follow-up queue of the caller's store or branch (HQ: all), earliest due first."""
    require_role(auth, (*FOLLOW_UP_ROLES, "hq_analyst"))
    listing = _listing(auth, state, follow_ups.STATES, overdue, size, token)
    async with new_uow() as uow:
        found = await repository.list_follow_ups(uow.session, listing)
        limit = listing.limit - 1
        views = await _follow_up_views(uow.session, found[:limit])
    if len(found) > limit:
        last = found[limit - 1]
        return views, paging.encode_page_token(last.due_at.isoformat(), last.id)
    return views, ""


async def _follow_up_in_scope(
    uow: UnitOfWork, auth: AuthContext, follow_up_id: str, for_update: bool = False
) -> FollowUp:
    found = await repository.follow_up_by_id(uow.session, follow_up_id, for_update)
    if found is None or not auth.covers(found.branch_id, found.store_id):
        raise NotFound(f"no follow-up {follow_up_id}")
    return found


async def get_follow_up(new_uow: NewUow, auth: AuthContext, follow_up_id: str) -> FollowUpView:
    require_role(auth, (*FOLLOW_UP_ROLES, "hq_analyst"))
    async with new_uow() as uow:
        found = await _follow_up_in_scope(uow, auth, follow_up_id)
        return (await _follow_up_views(uow.session, [found]))[0]


async def take_follow_up(new_uow: NewUow, auth: AuthContext, follow_up_id: str) -> FollowUpView:
    """An agent takes a task from their queue; from then on it is theirs to call."""
    require_role(auth, FOLLOW_UP_ROLES)
    async with new_uow() as uow:
        found = await _follow_up_in_scope(uow, auth, follow_up_id, for_update=True)
        after = follow_ups.taken(found, auth.user_id)
        if after != found:
            await repository.update_follow_up(uow.session, after)
        view = (await _follow_up_views(uow.session, [after]))[0]
        await uow.commit()
    return view


async def record_follow_up_attempt(
    new_uow: NewUow,
    auth: AuthContext,
    follow_up_id: str,
    reached: bool,
    score: int | None,
    comments: str | None,
) -> FollowUpView:
    """One call recorded; a low score opens a complaint for the branch. Events for both."""
    require_role(auth, FOLLOW_UP_ROLES)
    follow_ups.check_attempt(reached, score, comments)
    now = utc_now()
    async with new_uow() as uow:
        session = uow.session
        found = await _follow_up_in_scope(uow, auth, follow_up_id, for_update=True)
        after, attempt = follow_ups.after_attempt(
            found,
            auth.user_id,
            reached,
            score,
            comments,
            now,
            may_override=auth.role != "followup_agent",
        )
        await repository.update_follow_up(session, after)
        await repository.add_attempt(session, after.id, attempt)
        uow.track(after, events.of_follow_up)
        if reached and complaints.opens_complaint(score):
            opened = complaints.new_complaint(
                str(uuid.uuid4()),
                after.id,
                after.order_id,
                after.branch_id,
                after.store_id,
                score or 0,
                auth.user_id,
                now,
            )
            await repository.add_complaint(session, opened)
            uow.track(opened, events.of_complaint)
        view = (await _follow_up_views(session, [after]))[0]
        await uow.commit()
    return view


# Complaints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplaintView:
    complaint: Complaint
    customer: Customer | None
    notes: list[Note]
    comments: str | None  # what the customer said on the call


async def _complaint_views(session: AsyncConnection, found: list[Complaint]) -> list[ComplaintView]:
    owners = await repository.customers_of_orders(session, [c.order_id for c in found])
    notes = await repository.notes_of(session, [c.id for c in found])
    calls = {
        f.id: f for f in await repository.follow_ups_of_orders(session, [c.order_id for c in found])
    }
    return [
        ComplaintView(
            c,
            owners.get(c.order_id),
            notes.get(c.id, []),
            calls[c.follow_up_id].comments if c.follow_up_id in calls else None,
        )
        for c in found
    ]


async def list_complaints(
    new_uow: NewUow, auth: AuthContext, state: str, overdue: bool, size: int, token: str
) -> tuple[list[ComplaintView], str]:
    """HQ sees all, a branch manager their branch's, anyone else only what they own."""
    listing = _listing(auth, state, complaints.STATES, overdue, size, token)
    owner: str | None = None
    if auth.role in complaints.HQ_ROLES:
        listing = replace(listing, branch_id=None, store_id=None)
    elif auth.role == "branch_manager":
        listing = replace(listing, store_id=None)
    else:
        owner = auth.user_id
        listing = replace(listing, branch_id=None, store_id=None)
    async with new_uow() as uow:
        found = await repository.list_complaints(uow.session, listing, owner)
        limit = listing.limit - 1
        views = await _complaint_views(uow.session, found[:limit])
    if len(found) > limit:
        last = found[limit - 1]
        return views, paging.encode_page_token(last.due_at.isoformat(), last.id)
    return views, ""


async def _complaint_seen(
    uow: UnitOfWork, auth: AuthContext, complaint_id: str, for_update: bool = False
) -> Complaint:
    found = await repository.complaint_by_id(uow.session, complaint_id, for_update)
    if found is None or not complaints.may_see(auth, found):
        raise NotFound(f"no complaint {complaint_id}")
    return found


async def get_complaint(new_uow: NewUow, auth: AuthContext, complaint_id: str) -> ComplaintView:
    async with new_uow() as uow:
        found = await _complaint_seen(uow, auth, complaint_id)
        return (await _complaint_views(uow.session, [found]))[0]


async def add_complaint_note(
    new_uow: NewUow, auth: AuthContext, complaint_id: str, note: str, owner_id: str
) -> ComplaintView:
    """A note on the case; the branch manager (or HQ) may hand it to another owner."""
    async with new_uow() as uow:
        found = await _complaint_seen(uow, auth, complaint_id, for_update=True)
        if not complaints.may_handle(auth, found):
            raise NotFound(f"no complaint {complaint_id}")
        entry = complaints.note_added(found, auth.user_id, note, utc_now())
        after = found
        if owner_id and owner_id != found.owner_id:
            if auth.role not in ("branch_manager", "hq_admin"):
                raise invalid("owner_id", "only the branch manager or HQ hands a complaint on")
            after = complaints.handed_to(found, owner_id)
            await repository.update_complaint(uow.session, after)
        await repository.add_note(uow.session, after.id, entry)
        view = (await _complaint_views(uow.session, [after]))[0]
        await uow.commit()
    return view


async def close_complaint(
    new_uow: NewUow, auth: AuthContext, complaint_id: str, outcome: str
) -> ComplaintView:
    now = utc_now()
    async with new_uow() as uow:
        found = await _complaint_seen(uow, auth, complaint_id, for_update=True)
        if not complaints.may_handle(auth, found):
            raise NotFound(f"no complaint {complaint_id}")
        after = complaints.closed(found, outcome, auth.user_id, now)
        await repository.update_complaint(uow.session, after)
        uow.track(after, events.of_complaint)
        view = (await _complaint_views(uow.session, [after]))[0]
        await uow.commit()
    return view
