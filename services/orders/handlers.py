"""Use cases of the orders service: plain async functions over a unit of work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import metrics, outbox, paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    invalid,
)
from servicekit.idempotency import KEY_LIFETIME
from servicekit.personal_data import DataKeys
from servicekit.timeutil import (
    parse_day,
    shanghai_day,
    shanghai_day_end_utc,
    shanghai_day_start_utc,
    utc_now,
)
from servicekit.uow import UnitOfWork
from services.orders import events
from services.orders.adapters import repository
from services.orders.adapters.inventory import Parts
from services.orders.domain import routes
from services.orders.domain.intake import IntakeForm, validate_intake
from services.orders.domain.order import (
    SERVICE_TYPES,
    STATUSES,
    RepairOrder,
    TimelineEntry,
    is_repeat_repair,
    order_number,
)
from services.orders.domain.warranty import (
    IN_WARRANTY,
    days_since_repair,
    decide_warranty,
    parts_wait_swap_on,
    with_repair_hold,
)
from services.orders.parts_step import PartsAttempt

INTAKE_ROLES = ("clerk", "technician", "branch_manager", "hq_admin")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# The request id is the caller's Idempotency-Key: a clash is named after the header they sent.
IDEMPOTENCY_KEY = "Idempotency-Key"

log = logging.getLogger(__name__)

IMEI_CHANGES = {"repair/finish": "mainboard", "factory-receive": "factory", "swap": "swap"}
"""The steps that change a device's IMEI, and the kind of link each keeps."""

NewUow = Callable[[], UnitOfWork]
Apply = Callable[[RepairOrder, datetime], None]


async def create_repair_order(
    new_uow: NewUow,
    base_data: repository.BaseDataCache,
    auth: AuthContext,
    form: IntakeForm,
    branch_id: str,
    store_id: str,
    request_id: str | None,
    request_hash: str = "",
    clock: Callable[[], datetime] = utc_now,
    *,
    personal_keys: DataKeys,
) -> RepairOrder:
    """Intake (受理): check the form, decide warranty and authorisation, number the order, store
    it and announce it, all in one transaction.

    Within the key's lifetime a retry (same request id and hash) returns the first order, and
    the same request id with another hash is refused; after it, the id is free for a new order.
    """
    require_role(auth, INTAKE_ROLES)
    if not branch_id or not store_id:
        raise invalid("store_id", "is required")
    if not auth.covers(branch_id, store_id):
        raise NotFound("no such store in your scope")
    free_expired_id = False
    while True:
        async with new_uow() as uow:
            session = uow.session
            now = clock()
            order = await _take_in(session, base_data, auth, form, branch_id, store_id, now)
            order.request_id = request_id
            order.request_hash = request_hash or None
            # The customer's data key: their name and phone leave only sealed with it.
            personal_key = await personal_keys.key_for_phone(order.intake.customer_phone)
            try:
                if free_expired_id and request_id:
                    await repository.release_request_id(session, request_id, now - KEY_LIFETIME)
                await repository.add(session, order, personal_key.key_id)
            except IntegrityError:
                # The request id is taken. Finding out here, not by a look-up up front, keeps
                # the usual first attempt one query shorter.
                await session.rollback()
                earlier = (
                    await repository.find_by_request_id(session, request_id) if request_id else None
                )
                if earlier is None:
                    raise
                if earlier.received_at > now - KEY_LIFETIME:
                    return _retried(earlier, request_hash)
                if free_expired_id:
                    raise  # freed in this very transaction, yet taken: not a key clash
                free_expired_id = True
                continue
            if personal_key.entry is not None:
                # Made while the broker was away: the relay stores it before the event.
                subject, value = personal_key.entry
                await outbox.record_entry(
                    session, uow.outbox_table, subject, value, "aftersales.PersonalDataKey"
                )
            uow.track(order, events.translator(personal_key))
            await uow.commit()
        metrics.ORDERS_RECEIVED.labels(branch_id, store_id).inc()
        return order


async def _take_in(
    session: AsyncConnection,
    base_data: repository.BaseDataCache,
    auth: AuthContext,
    form: IntakeForm,
    branch_id: str,
    store_id: str,
    now: datetime,
) -> RepairOrder:
    today = shanghai_day(now)
    # By any IMEI the device had: a board changed since is the same device back. Read with
    # the base data's version, in one round trip, before the form is checked (an invalid
    # IMEI finds nothing).
    reads = await repository.intake_reads(session, form.imei)
    base = await base_data.at_version(session, reads.base_version)
    info = base.brands.get(form.brand)
    intake = validate_intake(form, today, info.model_codes if info else None, base.fault_codes)
    assert info is not None  # validate_intake refuses unknown brands
    authorised = base.is_authorised(store_id, intake.brand, intake.service_type)
    earlier = reads.last_closed
    since = days_since_repair(earlier.closed_at, today) if earlier is not None else None
    repeat = is_repeat_repair(since)
    warranty = decide_warranty(intake.purchase_date, today, info.policy, authorised)
    if earlier is not None and since is not None and intake.service_type == "repair":
        warranty = with_repair_hold(warranty, since, earlier.number, info.policy)
    number = order_number(store_id, today, await repository.next_number(session, store_id, today))
    return RepairOrder(
        id=str(uuid.uuid4()),
        number=number,
        status="received",
        branch_id=branch_id,
        store_id=store_id,
        intake=intake,
        warranty=warranty,
        brand_authorised=authorised,
        repeat_repair=repeat,
        repeat_of=earlier.order_id if earlier is not None and repeat else None,
        parts_wait_swap_on=parts_wait_swap_on(warranty, today, info.policy)
        if intake.service_type == "repair"
        else None,
        received_at=now,
        created_by=auth.user_id,
        timeline=[TimelineEntry("received", now, auth.user_id, store_id, "taken in", "intake")],
    ).taken_in()


def _retried(earlier: RepairOrder, request_hash: str) -> RepairOrder:
    """The first order again, when this is the same request; an order made before hashes were
    kept, or a caller that sends none, cannot tell and gets the first order too."""
    if earlier.request_hash and request_hash and earlier.request_hash != request_hash:
        raise InvalidInput(
            "this Idempotency-Key was used for another request",
            [FieldError(IDEMPOTENCY_KEY, "already used with a different request")],
        )
    return earlier


async def get_repair_order(new_uow: NewUow, auth: AuthContext, order_id: str) -> RepairOrder:
    async with new_uow() as uow:
        order = await repository.get(uow.session, order_id)
    # Another unit's order is indistinguishable from one that does not exist.
    if order is None or not visible(auth, order):
        raise NotFound(f"no repair order {order_id}")
    return order


def visible(auth: AuthContext, order: RepairOrder) -> bool:
    """The intake store's scope sees an order, and so does a partner's it was sent to."""
    work = order.work
    return auth.covers(order.branch_id, order.store_id) or bool(
        work.partner_store_id and auth.covers(work.partner_branch_id, work.partner_store_id)
    )


def decode_after(token: str) -> tuple[datetime, str]:
    """Where a page of orders resumes: after this (received_at, id)."""
    at, order_id = paging.decode_page_token(token, 2)
    try:
        return datetime.fromisoformat(at), order_id
    except ValueError as error:
        raise invalid("cursor", "is not a cursor this service issued") from error


def order_filter(
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    status: str,
    service_type: str,
    imei: str,
    phone: str,
    received_from: str,
    received_to: str,
    swap_due_by: str = "",
) -> repository.OrderFilter:
    branch, store = auth.narrow(branch_id or None, store_id or None)
    errors: list[FieldError] = []
    if status and status not in STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
    if service_type and service_type not in SERVICE_TYPES:
        errors.append(FieldError("service_type", f"must be one of {', '.join(SERVICE_TYPES)}"))
    bounds = {}
    named = (
        ("received_from", received_from),
        ("received_to", received_to),
        ("swap_due_by", swap_due_by),
    )
    for name, text in named:
        if text:
            try:
                bounds[name] = parse_day(text)
            except ValueError as error:
                errors.append(FieldError(name, str(error)))
    if errors:
        raise InvalidInput("the filters have errors", errors)
    return repository.OrderFilter(
        branch_id=branch,
        store_id=store,
        status=status or None,
        service_type=service_type or None,
        imei=imei or None,
        phone=phone or None,
        received_from=shanghai_day_start_utc(bounds["received_from"])
        if "received_from" in bounds
        else None,
        received_before=shanghai_day_end_utc(bounds["received_to"])
        if "received_to" in bounds
        else None,
        swap_due_by=bounds.get("swap_due_by"),
    )


async def list_repair_orders(
    new_uow: NewUow,
    where: repository.OrderFilter,
    page_size: int,
    page_token: str,
) -> tuple[list[RepairOrder], str]:
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = decode_after(page_token) if page_token else None
    async with new_uow() as uow:
        page = await repository.list_page(uow.session, where, size + 1, after)
    if len(page) > size:
        last = page[size - 1]
        return page[:size], paging.encode_page_token(last.received_at.isoformat(), last.id)
    return page, ""


@dataclass(frozen=True)
class StepContext:
    """What a step reads before it runs, in one transaction: the order as the caller sees it,
    HQ's base data, and for a diagnosis the fault codes of the device's earlier repairs closed
    under warranty (the same fault again offers a swap, 三包)."""

    order: RepairOrder
    base: repository.BaseData
    earlier_faults: tuple[str, ...]


async def step_context(
    new_uow: NewUow,
    base_data: repository.BaseDataCache,
    auth: AuthContext,
    order_id: str,
    step: str,
) -> StepContext:
    async with new_uow() as uow:
        order, base_version = await repository.get_with_base_version(uow.session, order_id)
        # Another unit's order is indistinguishable from one that does not exist.
        if order is None or not visible(auth, order):
            raise NotFound(f"no repair order {order_id}")
        base = await base_data.at_version(uow.session, base_version)
        earlier: tuple[str, ...] = ()
        if step == "diagnosis":
            earlier = await _earlier_warranty_faults(uow.session, order)
    return StepContext(order, base, earlier)


async def _earlier_warranty_faults(session: AsyncConnection, order: RepairOrder) -> tuple[str, ...]:
    """One fault code per earlier repair closed under warranty, by any IMEI the device ever
    had, across the chain."""
    imeis, _ = await repository.linked_imeis(session, order.current_imei)
    earlier = await repository.orders_of_devices(session, imeis)
    return tuple(
        o.work.diagnosis.fault_code
        for o in earlier
        if o.id != order.id
        and o.closed_at
        and o.warranty.status == IN_WARRANTY
        and o.work.diagnosis
    )


def partner_store(context: StepContext, branch_id: str, store_id: str) -> routes.Partner:
    """The store a send-out goes to (the gateway names its branch from the org tree), and
    whether it is authorised for the order's brand."""
    if not branch_id or not store_id:
        raise invalid("store_id", "name the store that repairs the device")
    intake = context.order.intake
    return routes.Partner(
        branch_id,
        store_id,
        context.base.is_authorised(store_id, intake.brand, intake.service_type),
    )


@dataclass(frozen=True)
class Passport:
    """A device's history across the chain (设备档案), as far as the caller may see it."""

    imei: str
    imeis: list[str]
    links: list[repository.ImeiLink]
    orders: list[RepairOrder]


async def device_passport(new_uow: NewUow, auth: AuthContext, imei: str) -> Passport:
    """Found by any IMEI the device ever had; the orders of the caller's scope (HQ all),
    newest first. None in scope is NotFound, as if the device were unknown."""
    if not imei.strip():
        raise invalid("imei", "is required")
    async with new_uow() as uow:
        imeis, links = await repository.linked_imeis(uow.session, imei.strip())
        orders = await repository.orders_of_devices(uow.session, imeis)
    mine = [o for o in orders if visible(auth, o)]
    if not mine:
        raise NotFound(f"no device {imei} in your scope")
    seen = {o.id for o in mine}
    return Passport(imei, imeis, [x for x in links if x.order_id in seen], mine)


async def take_step(
    new_uow: NewUow,
    parts: Parts,
    auth: AuthContext,
    order: RepairOrder,
    expected_version: int,
    step: str,
    apply: Apply,
    clock: Callable[[], datetime] = utc_now,
) -> RepairOrder:
    """One step of the lifecycle on the order as the caller read it (`expected_version`);
    `order` is as step_context read it.

    The rules run on the order read, then inventory is called with no transaction of ours
    open (one attempt of the step: parts_step.PartsAttempt), then the change is written only
    if nobody changed the order meanwhile, announcing which attempt it was. When the write
    fails, the attempt is undone: inventory lets go of what only it claimed, so a racing step
    that won keeps its parts.
    """
    if order.version != expected_version:
        raise PreconditionFailed(
            f"the order is at version {order.version}, not {expected_version}: read it again"
        )
    from_status, entries, imei = order.status, len(order.timeline), order.current_imei
    held = {line.line_id for line in order.work.lines if line.reserved}
    now = clock()
    apply(order, now)
    attempt = PartsAttempt.begin(parts, order)
    await attempt.move(auth, from_status, step, held, now)
    order.step_taken(step, from_status, imei, attempt.id, bool(attempt.claimed))
    try:
        async with new_uow() as uow:
            uow.track(order, events.translator())
            if not await repository.save_transition(
                uow.session, order, expected_version, len(order.timeline) - entries
            ):
                raise PreconditionFailed("the order was changed meanwhile: read it again")
            if order.current_imei != imei:
                kind = IMEI_CHANGES.get(step, step)
                await repository.add_imei_link(
                    uow.session, imei, order.current_imei, kind, order.id, now
                )
            await uow.commit()
    except BaseException:
        await attempt.undo(await _written(new_uow, order.id))
        raise
    await attempt.written()
    if order.status == "closed" and from_status != "closed":
        metrics.ORDERS_CLOSED.labels(order.branch_id, order.store_id).inc()
    return order


async def _written(new_uow: NewUow, order_id: str) -> RepairOrder | None:
    """The order as written now, when it can be read (after a failed write of ours)."""
    try:
        async with new_uow() as uow:
            return await repository.get(uow.session, order_id)
    except Exception:
        log.exception("could not read order %s after a failed step", order_id)
        return None
