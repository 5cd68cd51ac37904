"""The life of a work order (工单流转): the steps, who may take each, from which statuses, with
which data, and where each leads. Pure: no I/O and no clock (the caller passes `now`).

    received → diagnosed → awaiting_approval → approved | waiting_parts → in_repair
      → quality_check → ready_for_pickup → closed
    with declined (customer or manager says no), cancelled (before repair starts), and a failed
    quality check back to in_repair.

The routes off that path (their steps are in `routes`):

    送修  received | diagnosed → sent_out → at_partner → (the partner's repair steps)
          → at_partner (repaired) or unrepaired → returned_from_partner → ready_for_pickup,
          declined or received at the intake store
    返厂  received | diagnosed → at_factory → quality_check (repaired, replaced) | received
    换机  approved → ready_for_pickup, a unit from swap stock handed over
    quick orders (accessory, software): received → closed, paid

`approved` (待维修) is a status of our own: both approvals are in and every part is reserved, so
the repair may start.

替代料: a line left short whose part is superseded is offered its successor by inventory; the
`parts` step may take it (`substitute`). The line is priced anew; for chargeable work a higher
quote goes back to awaiting_approval (the customer, and the manager by the usual rules, approve
the new figure), a lower or equal one stands.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, FieldError, Forbidden, InvalidInput, invalid
from servicekit.identifiers import imei_problem
from servicekit.timeutil import shanghai_day
from services.orders.domain.order import (
    Diagnosis,
    PartLine,
    Payment,
    Quote,
    RepairOrder,
    TimelineEntry,
)
from services.orders.domain.warranty import (
    IN_WARRANTY,
    OUT_OF_WARRANTY,
    WarrantyPolicy,
    line_in_warranty,
)

REPAIR_LEVELS = ("L1", "L2", "L3", "L4")
"""The manufacturer's repair levels (维修级别), which decide its labour fee."""

PAYMENT_METHODS = ("cash", "card", "wechat_pay", "alipay")
"""Recorded, not processed."""

MAINBOARD_REPLACEMENT = "mainboard_replacement"
MAINBOARD_ACTIONS = frozenset({MAINBOARD_REPLACEMENT, "swap"})
"""Planned actions that, under warranty, need the branch manager's approval too."""

DEFAULT_APPROVAL_THRESHOLD_FEN = 100_000
"""A quote above its branch's threshold needs the branch manager. HQ keeps each branch's
threshold as base data; this is the one of a branch it has not set."""

CANCELLABLE = ("received", "diagnosed", "awaiting_approval", "waiting_parts", "approved")
"""Cancel is possible until the repair starts."""

TECHNICIAN = ("technician",)
FRONT_DESK = ("clerk", "technician")
ROUTE_DESK = ("clerk", "technician", "branch_manager")

PARTNER_RETURNABLE = (
    "at_partner",
    "diagnosed",
    "awaiting_approval",
    "waiting_parts",
    "approved",
    "declined",
)
"""The partner sends the device back repaired (at_partner again after its QC), or unrepaired
from any status before its repair starts."""

# Where a store user must be to take a step: at the store that has the device (holder), the
# store that took the order in (intake: the customer deals with it), the store the device is
# travelling to (destination), or either store of the order (any).
HOLDER, INTAKE, DESTINATION, ANY = "holder", "intake", "destination", "any"


@dataclass(frozen=True)
class Step:
    """A transition: its name (the URL's last part), who may take it, from which statuses, at
    which of the order's stores a store user must be, and whether it does the repair work
    itself (`does_work`: parts issued, a swap unit handed over, a quick order done), which a
    store may only do when the order is repairable there (`repairable_here`)."""

    name: str
    roles: tuple[str, ...]
    from_statuses: tuple[str, ...]
    where: str = HOLDER
    does_work: bool = False


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("diagnosis", TECHNICIAN, ("received", "diagnosed", "at_partner")),  # 检测
        Step("quote", FRONT_DESK, ("diagnosed",)),  # 报价
        Step("approval", FRONT_DESK, ("awaiting_approval",), ANY),  # the customer's answer
        Step("manager-approval", ("branch_manager",), ("awaiting_approval",), ANY),  # 店长审批
        Step("parts", ("clerk", "technician", "warehouse_keeper"), ("waiting_parts",)),  # 到料
        Step("repair/start", TECHNICIAN, ("approved",), does_work=True),  # 维修: parts issued
        Step("repair/finish", TECHNICIAN, ("in_repair",)),
        Step("qc", FRONT_DESK, ("quality_check",)),  # 质检
        Step("pickup", ("clerk",), ("ready_for_pickup", "declined"), INTAKE),  # 取机
        Step("cancel", ("clerk", "branch_manager"), CANCELLABLE, INTAKE),  # 取消
        # The routes (see `routes`).
        Step("send-out", ROUTE_DESK, ("received", "diagnosed"), INTAKE),  # 送修
        Step("receive", FRONT_DESK, ("sent_out", "returned_from_partner"), DESTINATION),
        Step("return", FRONT_DESK, PARTNER_RETURNABLE),  # the partner sends it back
        Step("factory-return", ROUTE_DESK, ("received", "diagnosed")),  # 返厂
        Step("factory-receive", ROUTE_DESK, ("at_factory",)),
        Step("swap", FRONT_DESK, ("approved",), does_work=True),  # 换机
        Step("complete", FRONT_DESK, ("received",), does_work=True),  # a quick order, paid
    )
}
"""Every step's guards, in one table: `check_step` applies them all, each step's own rules
(its data, its approvals) come after."""


def chargeable(order: RepairOrder) -> bool:
    """Work the customer pays for: a part line out of warranty (each line has its own, see
    diagnose), or with no parts, a device out of warranty."""
    if order.work.lines:
        return any(not line.warranty for line in order.work.lines)
    return order.warranty.status == OUT_OF_WARRANTY


def parts_due_fen(order: RepairOrder) -> int:
    """The planned parts the customer pays for, at retail: the lines out of warranty only."""
    return sum(x.retail_price_fen * x.quantity for x in order.work.lines if not x.warranty)


def needs_manager(order: RepairOrder, quote: Quote, threshold_fen: int) -> bool:
    """Above the branch's threshold, or an in-warranty mainboard replacement or swap."""
    diagnosis = order.work.diagnosis
    planned = set(diagnosis.actions) if diagnosis else set()
    in_warranty = order.warranty.status == IN_WARRANTY
    mainboard_or_swap = bool(planned & MAINBOARD_ACTIONS) or order.intake.service_type == "swap"
    return quote.total_fen > threshold_fen or (in_warranty and mainboard_or_swap)


def destination_store_id(order: RepairOrder) -> str:
    """Where a travelling device is going: the partner on a send-out, else home."""
    return order.work.partner_store_id if order.status == "sent_out" else order.store_id


def _store_for(order: RepairOrder, where: str) -> str:
    if where == HOLDER:
        return order.holder_store_id
    if where == DESTINATION:
        return destination_store_id(order)
    return order.store_id


def repairable_here(order: RepairOrder) -> bool:
    """Warranty work for a brand the intake store is not authorised for is never done on the
    spot (SPEC §2, `send_on_required`): an authorised partner, or the factory, does it."""
    return order.warranty.status != IN_WARRANTY or order.brand_authorised or order.work.at_partner


SEND_ON = (
    "the store is not authorised for the brand and the order is under warranty: "
    "send it to an authorised store (send-out) or the factory (factory-return)"
)


def check_step(order: RepairOrder, step_name: str, auth: AuthContext) -> Step:
    """The guards every step shares, as `STEPS` says: a known step, a role that may take it, a
    status it starts from, for a store user the right store of the order (the one with the
    device for the repair steps, the intake store for the customer's), and for a step doing
    the work, an order repairable here. The role comes first: a clerk learns nothing about an
    order's state from a 409."""
    step = STEPS.get(step_name)
    if step is None:
        raise invalid("step", f"must be one of {', '.join(STEPS)}")
    if auth.role not in step.roles:
        raise Forbidden(f"role {auth.role} may not take the step {step_name}")
    if order.status not in step.from_statuses:
        raise Conflict(
            f"the order is {order.status}: {step_name} is possible only when it is "
            + " or ".join(step.from_statuses)
        )
    stores = order.store_ids() if step.where == ANY else (_store_for(order, step.where),)
    if auth.store_id and auth.store_id not in stores:
        raise Forbidden(f"the step {step_name} is store {' or '.join(stores)}'s to take here")
    if step.does_work and not repairable_here(order):
        raise Conflict(SEND_ON)
    return step


def move(
    order: RepairOrder, status: str, auth: AuthContext, now: datetime, step: str, why: str
) -> None:
    """The one way a status changes: the timeline says who, when, where and why. Where is the
    user's store, or the order's for a branch or HQ user."""
    order.status = status
    order.timeline.append(
        TimelineEntry(status, now, auth.user_id, auth.store_id or order.store_id, why, step)
    )


def diagnose(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    diagnosis: Diagnosis,
    retail_prices: Mapping[str, int],
    earlier_warranty_faults: Collection[str] = (),
    swap_after_repairs: int = 2,
    categories: Mapping[str, str] | None = None,
    policy: WarrantyPolicy | None = None,
) -> None:
    """`retail_prices`: the catalog's price of each planned part it knows, `categories` its
    category, whose warranty `policy` (the brand's) decides each line's (a battery's own
    period, say);
    `earlier_warranty_faults`: the fault code of each of the device's earlier repairs under
    warranty (by any IMEI it had): the manufacturer's `swap_after_repairs`-th warranty repair of
    one fault offers a swap (三包)."""
    check_step(order, "diagnosis", auth)
    if order.work.partner_repaired:
        raise Conflict("the partner repaired the device: return it to the intake store")
    errors: list[FieldError] = []
    if diagnosis.repair_level not in REPAIR_LEVELS:
        errors.append(FieldError("repair_level", f"must be one of {', '.join(REPAIR_LEVELS)}"))
    if not diagnosis.fault_code:
        errors.append(FieldError("fault_code", "is required"))
    for i, part in enumerate(diagnosis.parts):
        if not part.part_id:
            errors.append(FieldError(f"parts[{i}].part_id", "is required"))
        elif part.part_id not in retail_prices:
            errors.append(FieldError(f"parts[{i}].part_id", "is not in the catalog"))
        if part.quantity < 1:
            errors.append(FieldError(f"parts[{i}].quantity", "must be at least 1"))
    override = diagnosis.warranty_override
    if override not in ("", IN_WARRANTY, OUT_OF_WARRANTY):
        errors.append(FieldError("warranty_override", "must be in_warranty or out_of_warranty"))
    if override and not diagnosis.override_reason.strip():
        errors.append(FieldError("override_reason", "is required to override the warranty"))
    if errors:
        raise InvalidInput("the diagnosis has errors", errors)
    why = f"fault {diagnosis.fault_code}"
    if override and override != order.warranty.status:
        order.warranty = replace(
            order.warranty,
            status=override,
            reason=f"technician: {diagnosis.override_reason}",
            entitlements=("repair",) if override == IN_WARRANTY else (),
        )
        why += f"; warranty now {override}: {diagnosis.override_reason}"
    in_warranty = order.warranty.status == IN_WARRANTY
    repairs = 1 + sum(1 for code in earlier_warranty_faults if code == diagnosis.fault_code)
    order.work.swap_offered = in_warranty and repairs >= swap_after_repairs
    order.work.swap_offer_reason = (
        f"warranty repair no. {repairs} of fault {diagnosis.fault_code}: a swap is due (三包)"
        if order.work.swap_offered
        else ""
    )
    if order.work.swap_offered:
        why += f"; {order.work.swap_offer_reason}"
    order.work.diagnosis = diagnosis
    # Lines are numbered per store, so a partner's never share a line id with the intake's.
    prefix = "P" if order.work.at_partner else "L"
    intake_day = shanghai_day(order.received_at)

    def covered(part_id: str) -> bool:
        return line_in_warranty(
            (categories or {}).get(part_id, ""),
            order.warranty,
            order.intake.purchase_date,
            intake_day,
            policy or WarrantyPolicy(),
            technician_decided=bool(override),
        )

    order.work.lines = [
        PartLine(
            f"{prefix}{i}",
            p.part_id,
            p.quantity,
            covered(p.part_id),
            retail_price_fen=retail_prices[p.part_id],
            store_id=order.holder_store_id,
        )
        for i, p in enumerate(diagnosis.parts, start=1)
    ]
    move(order, "diagnosed", auth, now, "diagnosis", why)


def quote(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    labour_fen: int,
    threshold_fen: int = DEFAULT_APPROVAL_THRESHOLD_FEN,
) -> None:
    """报价: the labour asked, plus the planned parts out of warranty at their retail prices.
    Work with nothing out of warranty is free: its quote is zero, and the customer still
    consents. `threshold_fen`: the order's branch's approval threshold."""
    check_step(order, "quote", auth)
    if labour_fen < 0:
        raise invalid("labour_fen", "must not be negative")
    if not chargeable(order) and labour_fen:
        raise invalid("labour_fen", "work under warranty is free: quote 0")
    parts_fen = parts_due_fen(order)
    offer = Quote(labour_fen, parts_fen, order.holder_store_id)
    order.work.quote = offer
    order.work.manager_approval_required = needs_manager(order, offer, threshold_fen)
    order.work.customer_approved = order.work.manager_approved = False
    why = f"quote {offer.total_fen} fen (labour {labour_fen}, parts {parts_fen})"
    if order.work.manager_approval_required:
        why += "; needs the branch manager too"
    move(order, "awaiting_approval", auth, now, "quote", why)


def approvals_complete(order: RepairOrder) -> bool:
    work = order.work
    return work.customer_approved and (work.manager_approved or not work.manager_approval_required)


def approve(
    order: RepairOrder, auth: AuthContext, now: datetime, accepted: bool, note: str = ""
) -> None:
    """The customer's answer. Accepted and nothing else awaited: `approved`, until parts are
    reserved (`parts_reserved`); declined: `declined`, the device goes back unrepaired and
    what a substitute's reservation held goes back to stock."""
    check_step(order, "approval", auth)
    if not accepted:
        order.work.declined = True
        release_held(order)
        move(order, "declined", auth, now, "approval", note or "the customer declined")
        return
    if order.work.customer_approved:
        raise Conflict("the customer has agreed already: the branch manager's answer is awaited")
    order.work.customer_approved = True
    _after_approval(order, auth, now, "approval", note or "the customer accepted")


def manager_approve(
    order: RepairOrder, auth: AuthContext, now: datetime, approved: bool, note: str = ""
) -> None:
    check_step(order, "manager-approval", auth)
    if not order.work.manager_approval_required:
        raise Conflict("this order does not need the branch manager's approval")
    if not approved:
        order.work.declined = True
        release_held(order)
        move(order, "declined", auth, now, "manager-approval", note or "the manager refused")
        return
    if order.work.manager_approved:
        raise Conflict("the branch manager has approved already: the customer's answer is awaited")
    order.work.manager_approved = True
    _after_approval(order, auth, now, "manager-approval", note or "the manager approved")


def _after_approval(
    order: RepairOrder, auth: AuthContext, now: datetime, step: str, why: str
) -> None:
    status = "approved" if approvals_complete(order) else "awaiting_approval"
    move(order, status, auth, now, step, why)


def parts_reserved(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    reserved: Mapping[str, int],
    why: str = "",
    offers: Mapping[str, tuple[str, int]] | None = None,
    approved_now: bool = False,
) -> None:
    """Record what the warehouse reserved per line, right after the approvals are in or at the
    `parts` step (到料): any shortage waits for parts (待料), none lets the repair start.
    `why`: the timeline's note when the wait is not a shortage. `offers`: by short line whose
    part is superseded, the successor inventory offers and how many of it are available
    (替代料). Awaiting approval again (a substitute raised the quote), the order only records
    them: the approvals decide what comes next. `approved_now`: the approval came in this very
    step, so a shortage makes it `waiting_parts` instead (`approved` means every part is
    held)."""
    if order.status not in ("approved", "waiting_parts", "awaiting_approval"):
        raise Conflict(f"the order is {order.status}: parts are reserved once it is approved")
    offers = offers or {}
    for line in order.work.lines:
        if line.line_id in reserved:
            line.reserved = reserved[line.line_id]
            line.successor_part_id, line.successor_available = offers.get(line.line_id, ("", 0))
    if order.status == "awaiting_approval":
        return
    short = [short_note(line) for line in order.work.lines if line.short]
    if short and approved_now:
        approval = order.timeline.pop()
        note = f"{approval.note}; {why or 'short: ' + ', '.join(short)}"
        move(order, "waiting_parts", auth, now, approval.step, note)
    elif short:
        # Also when still waiting: each reservation tried is in the timeline.
        move(order, "waiting_parts", auth, now, "parts", why or "short: " + ", ".join(short))
    elif not short and order.status == "waiting_parts":
        move(order, "approved", auth, now, "parts", "all parts reserved")


def short_note(line: PartLine) -> str:
    """`HW-BAT-P60-A ×1`, and the successor offered when there is one."""
    note = f"{line.part_id} ×{line.short}"
    if line.successor_part_id:
        note += f" (替代料 {line.successor_part_id}: {line.successor_available} available)"
    return note


@dataclass(frozen=True)
class Substitute:
    """替代料 taken: a short line takes the part inventory offered in its place."""

    line_id: str
    part_id: str


def substitute(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    substitutes: Sequence[Substitute],
    retail_prices: Mapping[str, int],
    threshold_fen: int = DEFAULT_APPROVAL_THRESHOLD_FEN,
) -> None:
    """The `parts` step taking successors: each named line (one inventory offered a successor
    for, not issued) takes the part at its catalog retail price. Inventory checks that the part
    is the one it offered, or further down the superseded chain, when it reserves it.

    Chargeable work is quoted again with the labour as it was: a higher total goes back to
    awaiting_approval, its approvals to be given again (the manager's when the new quote needs
    it); a lower or equal one stands, and the reservation decides the status as at any `parts`
    step. Under warranty the quote stays 0."""
    check_step(order, "parts", auth)
    lines = {line.line_id: line for line in order.work.lines}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, wanted in enumerate(substitutes):
        line = lines.get(wanted.line_id)
        if line is None:
            errors.append(FieldError(f"substitutes[{i}].line_id", "is no line of the order"))
        elif wanted.line_id in seen:
            errors.append(FieldError(f"substitutes[{i}].line_id", "is named twice"))
        elif line.issued:
            errors.append(FieldError(f"substitutes[{i}].line_id", "is issued already"))
        elif not line.successor_part_id:
            errors.append(
                FieldError(f"substitutes[{i}].line_id", "was offered no successor (替代料)")
            )
        seen.add(wanted.line_id)
        if not wanted.part_id:
            errors.append(FieldError(f"substitutes[{i}].part_id", "is required"))
        elif wanted.part_id not in retail_prices:
            errors.append(FieldError(f"substitutes[{i}].part_id", "is not in the catalog"))
        elif line is not None and wanted.part_id == line.part_id:
            errors.append(FieldError(f"substitutes[{i}].part_id", "is the line's part already"))
    if errors:
        raise InvalidInput("the substitutes have errors", errors)
    taken = []
    for wanted in substitutes:
        line = lines[wanted.line_id]
        taken.append(f"{line.line_id} {line.part_id} → {wanted.part_id}")
        line.part_id, line.retail_price_fen = wanted.part_id, retail_prices[wanted.part_id]
        line.successor_part_id, line.successor_available = "", 0
    why = "替代料: " + ", ".join(taken)
    before = order.work.quote
    if before is None or not chargeable(order):
        move(order, order.status, auth, now, "parts", why)
        return
    parts_fen = parts_due_fen(order)
    after = Quote(before.labour_fen, parts_fen, before.store_id)
    order.work.quote = after
    why += f"; quote {after.total_fen} fen (was {before.total_fen})"
    if after.total_fen <= before.total_fen:
        move(order, order.status, auth, now, "parts", why)
        return
    work = order.work
    work.manager_approval_required = needs_manager(order, after, threshold_fen)
    work.customer_approved = work.manager_approved = False
    move(order, "awaiting_approval", auth, now, "parts", why + ": to be approved again")


def release_held(order: RepairOrder) -> None:
    """Every reservation goes back to stock (issued parts stay issued)."""
    for line in order.work.lines:
        if line.reserved:
            line.reserved, line.released = 0, True


def start_repair(order: RepairOrder, auth: AuthContext, now: datetime) -> None:
    """Every reserved part is issued to its line (stock and cost leave the warehouse)."""
    check_step(order, "repair/start", auth)
    for line in order.work.lines:
        line.issued, line.reserved = line.issued + line.reserved, 0
    move(order, "in_repair", auth, now, "repair/start", "parts issued")


def finish_repair(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    actions_done: tuple[str, ...],
    repair_level: str,
    old_parts_kept: tuple[str, ...],
    new_imei: str = "",
) -> None:
    """A mainboard replacement (主板更换) changes the device's IMEI: the new one is required
    then, and the old → new link is kept."""
    check_step(order, "repair/finish", auth)
    errors: list[FieldError] = []
    if not actions_done:
        errors.append(FieldError("actions_done", "name at least one action"))
    if repair_level not in REPAIR_LEVELS:
        errors.append(FieldError("repair_level", f"must be one of {', '.join(REPAIR_LEVELS)}"))
    lines = {line.line_id: line for line in order.work.lines}
    for line_id in old_parts_kept:
        if line_id not in lines or not lines[line_id].warranty:
            errors.append(FieldError("old_parts_kept", f"{line_id} is no warranty line"))
    mainboard = MAINBOARD_REPLACEMENT in actions_done
    planned = order.work.diagnosis.actions if order.work.diagnosis else ()
    if mainboard and MAINBOARD_REPLACEMENT not in planned:
        # Planned, so an in-warranty board change had the branch manager's approval.
        errors.append(FieldError("actions_done", "a mainboard replacement must be planned"))
    if mainboard:
        if problem := imei_problem(new_imei):
            errors.append(FieldError("new_imei", problem))
        elif new_imei == order.current_imei:
            errors.append(FieldError("new_imei", "is the IMEI the device has now"))
    elif new_imei:
        errors.append(FieldError("new_imei", "only a mainboard replacement changes the IMEI"))
    if errors:
        raise InvalidInput("the repair report has errors", errors)
    for line_id in old_parts_kept:
        lines[line_id].old_part_kept = True
    order.work.actions_done = actions_done
    order.work.repair_level = repair_level
    why = ", ".join(actions_done)
    if mainboard:
        why += f"; IMEI {order.current_imei} → {new_imei}"
        order.work.new_imei = new_imei
    move(order, "quality_check", auth, now, "repair/finish", why)


def check_quality(
    order: RepairOrder, auth: AuthContext, now: datetime, passed: bool, note: str = ""
) -> None:
    check_step(order, "qc", auth)
    if passed and order.work.at_partner:
        # The partner's work is done: it sends the device back (return).
        order.work.partner_repaired = True
        move(order, "at_partner", auth, now, "qc", note or "passed: to return to the intake store")
        return
    if passed:
        move(order, "ready_for_pickup", auth, now, "qc", note or "passed")
        return
    if not note.strip():
        raise invalid("note", "say why the quality check failed")
    order.work.qc_failures += 1
    move(order, "in_repair", auth, now, "qc", f"failed: {note}")


def pick_up(
    order: RepairOrder, auth: AuthContext, now: datetime, method: str, amount_fen: int
) -> None:
    """取机: chargeable work is paid in full, the quoted total; warranty work takes nothing. A
    declined unit goes back unrepaired, with the inspection fee (检测费) asked, if any."""
    check_step(order, "pickup", auth)
    if order.status == "declined":
        _pick_up_declined(order, auth, now, method, amount_fen)
        return
    due = order.work.quote.total_fen if order.work.quote and chargeable(order) else 0
    if amount_fen != due:
        raise invalid("amount_fen", f"must be {due}, the amount due")
    if due and method not in PAYMENT_METHODS:
        raise invalid("method", f"must be one of {', '.join(PAYMENT_METHODS)}")
    if due:
        order.work.payments.append(Payment(method, amount_fen, now))
    order.closed_at = now
    why = f"paid {due} fen by {method}" if due else "nothing to pay"
    move(order, "closed", auth, now, "pickup", why)


def _pick_up_declined(
    order: RepairOrder, auth: AuthContext, now: datetime, method: str, amount_fen: int
) -> None:
    if order.work.at_partner:
        raise Conflict("the device is still at the partner store: it must be returned first")
    if amount_fen < 0:
        raise invalid("amount_fen", "must not be negative")
    if amount_fen and method not in PAYMENT_METHODS:
        raise invalid("method", f"must be one of {', '.join(PAYMENT_METHODS)}")
    if amount_fen:
        order.work.payments.append(Payment(method, amount_fen, now))
    order.work.inspection_fee_fen = amount_fen
    why = "returned unrepaired"
    why += f"; inspection fee {amount_fen} fen by {method}" if amount_fen else "; no fee"
    # No closed_at: the device was not repaired, so its return is no repeat repair.
    move(order, "closed", auth, now, "pickup", why)


def cancel(order: RepairOrder, auth: AuthContext, now: datetime, reason: str) -> None:
    """取消, before the repair starts: every reservation goes back to stock (a decline comes
    before anything is reserved)."""
    check_step(order, "cancel", auth)
    if order.work.at_partner:
        raise Conflict("the device is at the partner store: it must be returned first")
    if not reason.strip():
        raise invalid("reason", "say why the order is cancelled")
    release_held(order)
    move(order, "cancelled", auth, now, "cancel", reason)
