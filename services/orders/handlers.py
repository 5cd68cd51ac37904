"""Use cases of the orders service: plain async functions over a unit of work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import bus, paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import (
    Conflict,
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
from services.orders.adapters.inventory import Held, Parts, store_warehouse_id
from services.orders.domain import lifecycle, routes
from services.orders.domain.intake import IntakeForm, validate_intake
from services.orders.domain.order import (
    SERVICE_TYPES,
    STATUSES,
    PartLine,
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
            event = events.order_received(order, personal_key)
            await uow.emit(bus.subject("orders", branch_id, store_id, "order_received"), event)
            await uow.commit()
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
    base = await base_data.get(session)
    info = base.brands.get(form.brand)
    intake = validate_intake(form, today, info.model_codes if info else None, base.fault_codes)
    assert info is not None  # validate_intake refuses unknown brands
    authorised = base.is_authorised(store_id, intake.brand, intake.service_type)
    # By any IMEI the device had: a board changed since is the same device back.
    imeis, _ = await repository.linked_imeis(session, intake.imei)
    earlier = await repository.last_closed(session, imeis)
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
    )


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
            except ValueError:
                errors.append(FieldError(name, "must be a date as YYYY-MM-DD"))
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
        order = await repository.get(uow.session, order_id)
        # Another unit's order is indistinguishable from one that does not exist.
        if order is None or not visible(auth, order):
            raise NotFound(f"no repair order {order_id}")
        base = await base_data.get(uow.session)
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
    open, then the change is written only if nobody changed the order meanwhile. When the
    write fails, the reservations this step made or let go are put back as the order knows
    them. An issue is not undone: inventory never issues a line twice, so the step taken
    again finds it issued.
    """
    if order.version != expected_version:
        raise PreconditionFailed(
            f"the order is at version {order.version}, not {expected_version}: read it again"
        )
    from_status, entries, imei = order.status, len(order.timeline), order.current_imei
    held = {line.line_id for line in order.work.lines if line.reserved}
    now = clock()
    apply(order, now)
    moved = await _move_parts(parts, auth, order, from_status, step, held, now)
    try:
        async with new_uow() as uow:
            if not await repository.save_transition(
                uow.session, order, expected_version, len(order.timeline) - entries
            ):
                raise PreconditionFailed("the order was changed meanwhile: read it again")
            if order.current_imei != imei:
                kind = IMEI_CHANGES.get(step, step)
                await repository.add_imei_link(
                    uow.session, imei, order.current_imei, kind, order.id, now
                )
            if order.status != from_status:  # a step that leaves the status is no change to tell
                event = events.status_changed(order, step, from_status, imei)
                name = f"order_{order.status}"
                await uow.emit(bus.subject("orders", order.branch_id, order.store_id, name), event)
            await uow.commit()
    except BaseException:
        try:
            await moved.undo(parts, order)
        except Exception:
            # The step's own failure is the answer; what could not be undone is for the log.
            log.exception(
                "could not undo inventory's side of %s on order %s: %s", step, order.id, moved
            )
        raise
    if moved.issued_to_return:
        # Only now that the cancel is written: parts a racing repair start had issued go back.
        try:
            await _give_back(parts, order, moved.issued_to_return)
        except Exception:
            log.exception("parts issued to cancelled order %s stay issued: %s", order.id, moved)
    return order


def parts_ref(order: RepairOrder, store_id: str) -> str:
    """Inventory's name for one store's part of an order: the order's id for the intake store,
    `<id>/<store>` for a partner's, so each store's parts come from its own warehouse and
    their cost lands where it was spent."""
    return order.id if store_id in ("", order.store_id) else f"{order.id}/{store_id}"


def _by_store(order: RepairOrder, lines: Iterable[PartLine]) -> dict[str, list[PartLine]]:
    groups: dict[str, list[PartLine]] = {}
    for line in lines:
        groups.setdefault(line.store_id or order.store_id, []).append(line)
    return groups


@dataclass
class PartsMoved:
    """What inventory did for a step: the reservations it made or let go and the parts it
    issued (to put back when the step cannot be written), and parts found issued to an order
    being cancelled."""

    reserved: list[str] = field(default_factory=list)
    released: list[PartLine] = field(default_factory=list)
    issued: dict[str, int] = field(default_factory=dict)
    issued_to_return: dict[str, int] = field(default_factory=dict)

    async def undo(self, parts: Parts, order: RepairOrder) -> None:
        lines = {line.line_id: line for line in order.work.lines}
        if self.issued:
            await _give_back(parts, order, self.issued)
        held = [lines[i] for i in self.reserved if i in lines and i not in self.issued]
        for store, group in _by_store(order, held).items():
            await parts.release(parts_ref(order, store), [line.line_id for line in group])
        for store, group in _by_store(order, self.released).items():
            await parts.reserve(parts_ref(order, store), store_warehouse_id(store), group)


async def _give_back(parts: Parts, order: RepairOrder, issued: dict[str, int]) -> None:
    """Issued parts back to their warehouse, a serialised line's by the serials it took."""
    lines = [line for line in order.work.lines if issued.get(line.line_id)]
    for store, group in _by_store(order, lines).items():
        await parts.give_back(
            parts_ref(order, store),
            {x.line_id: issued[x.line_id] for x in group},
            {x.line_id: x.serials for x in group if x.serials},
        )


async def _reserve(parts: Parts, order: RepairOrder, lines: Sequence[PartLine]) -> dict[str, Held]:
    """Each store's lines at its own warehouse; the serials inventory holds for a line are
    recorded on it."""
    held: dict[str, Held] = {}
    for store, group in _by_store(order, lines).items():
        held |= await parts.reserve(parts_ref(order, store), store_warehouse_id(store), group)
    for line in order.work.lines:
        if line.line_id in held and held[line.line_id].serials:
            line.serials = held[line.line_id].serials
    return held


async def _issue(parts: Parts, order: RepairOrder, lines: Sequence[PartLine]) -> dict[str, int]:
    issued: dict[str, int] = {}
    for store, group in _by_store(order, lines).items():
        issued |= await parts.issue(parts_ref(order, store), [line.line_id for line in group])
    return issued


async def _take_at_once(
    parts: Parts, order: RepairOrder, lines: Sequence[PartLine], what: str
) -> PartsMoved:
    """Reserve and issue these lines in one go (a swap unit, a quick order's parts); a
    shortage lets go of what was reserved and refuses the step."""
    reserved = {i: x.reserved for i, x in (await _reserve(parts, order, lines)).items()}
    short = [
        f"{x.part_id} ×{x.quantity - reserved.get(x.line_id, 0)}"
        for x in lines
        if reserved.get(x.line_id, 0) < x.quantity
    ]
    if short:
        taken = [x for x in lines if reserved.get(x.line_id)]
        for store, group in _by_store(order, taken).items():
            await parts.release(parts_ref(order, store), [x.line_id for x in group])
        raise Conflict(f"{what} short at the store's warehouse: {', '.join(short)}")
    issued = await _issue(parts, order, lines)
    for line in lines:
        line.issued, line.reserved = issued.get(line.line_id, line.quantity), 0
    return PartsMoved(issued={x.line_id: x.issued for x in lines})


async def _take_swap_unit(parts: Parts, order: RepairOrder, unit: PartLine) -> PartsMoved:
    """换机: exactly the unit named by its IMEI (its serial in swap stock) is reserved and
    issued. One not free in the store's swap stock, or a part number that is no serialised
    part, refuses the step naming it."""
    imei = order.work.swap.imei if order.work.swap else ""
    try:
        return await _take_at_once(parts, order, [unit], "swap units")
    except Conflict as error:
        raise Conflict(
            f"swap unit {imei} ({unit.part_id}) is not in the store's swap stock: {error.message}"
        ) from error
    except InvalidInput as error:
        reasons = "; ".join(e.reason for e in error.errors) or error.message
        raise invalid("part_id", f"{reasons}: a swap unit is issued by its IMEI") from error


async def _move_parts(
    parts: Parts,
    auth: AuthContext,
    order: RepairOrder,
    from_status: str,
    step: str,
    held: set[str],
    now: datetime,
) -> PartsMoved:
    """Inventory's side of a step: reserve once approved (or when parts come), issue when the
    repair starts, release on cancel, decline-return or swap, reserve and issue at once a swap
    unit or a quick order's parts. `held`: the lines holding a reservation before it. Each
    store's lines at its own warehouse."""
    lines = order.work.lines
    if (order.status == "approved" and from_status == "awaiting_approval") or step == "parts":
        wanted = [line for line in lines if line.issued < line.quantity]
        if wanted and auth.store_id and auth.store_id != order.holder_store_id:
            # Approved at the intake store while a partner repairs: the partner reserves at
            # its own warehouse, with the parts step.
            why = f"store {order.holder_store_id} reserves its parts (parts step)"
            lifecycle.parts_reserved(order, auth, now, {}, why)
            return PartsMoved()
        answer = await _reserve(parts, order, wanted) if wanted else {}
        offers = {
            i: (x.successor_part_id, x.successor_available)
            for i, x in answer.items()
            if x.successor_part_id
        }
        reserved = {i: x.reserved for i, x in answer.items()}
        lifecycle.parts_reserved(order, auth, now, reserved, offers=offers)
        # Undo only what this step reserved: what the order already held stays held.
        return PartsMoved(reserved=[i for i, n in reserved.items() if n and i not in held])
    if step == "repair/start":
        to_issue = [line for line in lines if line.issued]
        if to_issue:
            issued = await _issue(parts, order, to_issue)
            for line in lines:
                line.issued = issued.get(line.line_id, line.issued)
        return PartsMoved()
    if step == "complete" and lines:
        return await _take_at_once(parts, order, lines, "parts")
    moved = PartsMoved()
    if step == "swap":
        unit = [line for line in lines if line.line_id == routes.SWAP_LINE]
        if unit:
            moved = await _take_swap_unit(parts, order, unit[0])
    released = [line for line in lines if line.line_id in held and not line.reserved]
    if not released:
        return moved
    try:
        still_issued: dict[str, int] = {}
        for store, group in _by_store(order, released).items():
            still_issued |= await parts.release(
                parts_ref(order, store), [line.line_id for line in group]
            )
    except BaseException:
        await moved.undo(parts, order)
        raise
    moved.released = released
    moved.issued_to_return = {i: n for i, n in still_issued.items() if n}
    return moved
