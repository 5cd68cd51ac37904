"""The life of a work order (工单流转): the steps, who may take each, from which statuses, with
which data, and where each leads. Pure: no I/O and no clock (the caller passes `now`).

    received → diagnosed → awaiting_approval → approved | waiting_parts → in_repair
      → quality_check → ready_for_pickup → closed
    with declined (customer or manager says no), cancelled (before repair starts), and a failed
    quality check back to in_repair.

`approved` (待维修) is a status of our own: both approvals are in and every part is reserved, so
the repair may start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, FieldError, Forbidden, InvalidInput, invalid
from services.orders.domain.order import (
    Diagnosis,
    PartLine,
    Payment,
    Quote,
    RepairOrder,
    TimelineEntry,
)
from services.orders.domain.warranty import IN_WARRANTY, OUT_OF_WARRANTY

REPAIR_LEVELS = ("L1", "L2", "L3", "L4")
"""The manufacturer's repair levels (维修级别), which decide its labour fee."""

PAYMENT_METHODS = ("cash", "card", "wechat_pay", "alipay")
"""Recorded, not processed."""

MAINBOARD_ACTIONS = frozenset({"mainboard_replacement", "swap"})
"""Planned actions that, under warranty, need the branch manager's approval too."""

DEFAULT_APPROVAL_THRESHOLD_FEN = 100_000
"""A quote above its branch's threshold needs the branch manager. HQ keeps each branch's
threshold as base data; this is the one of a branch it has not set."""

CANCELLABLE = ("received", "diagnosed", "awaiting_approval", "waiting_parts", "approved")
"""Cancel is possible until the repair starts."""

TECHNICIAN = ("technician",)
FRONT_DESK = ("clerk", "technician")


@dataclass(frozen=True)
class Step:
    """A transition: its name (the URL's last part), who may take it and from which statuses."""

    name: str
    roles: tuple[str, ...]
    from_statuses: tuple[str, ...]


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("diagnosis", TECHNICIAN, ("received", "diagnosed")),  # 检测, revisable
        Step("quote", FRONT_DESK, ("diagnosed",)),  # 报价
        Step("approval", FRONT_DESK, ("awaiting_approval",)),  # the customer's answer
        Step("manager-approval", ("branch_manager",), ("awaiting_approval",)),  # 店长审批
        Step("parts", ("clerk", "technician", "warehouse_keeper"), ("waiting_parts",)),  # 到料
        Step("repair/start", TECHNICIAN, ("approved",)),  # 维修: the parts are issued
        Step("repair/finish", TECHNICIAN, ("in_repair",)),
        Step("qc", FRONT_DESK, ("quality_check",)),  # 质检
        Step("pickup", ("clerk",), ("ready_for_pickup",)),  # 取机
        Step("cancel", ("clerk", "branch_manager"), CANCELLABLE),  # 取消
    )
}


def chargeable(order: RepairOrder) -> bool:
    """Work the customer pays for: anything out of warranty."""
    return order.warranty.status == OUT_OF_WARRANTY


def needs_manager(order: RepairOrder, quote: Quote, threshold_fen: int) -> bool:
    """Above the branch's threshold, or an in-warranty mainboard replacement or swap."""
    diagnosis = order.work.diagnosis
    planned = set(diagnosis.actions) if diagnosis else set()
    in_warranty = order.warranty.status == IN_WARRANTY
    mainboard_or_swap = bool(planned & MAINBOARD_ACTIONS) or order.intake.service_type == "swap"
    return quote.total_fen > threshold_fen or (in_warranty and mainboard_or_swap)


def check_step(order: RepairOrder, step_name: str, auth: AuthContext) -> Step:
    """The guard every step shares: a known step, a role that may take it, a status it starts
    from. The role comes first: a clerk learns nothing about an order's state from a 409."""
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
    return step


def _move(
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
) -> None:
    """`retail_prices`: the catalog's price of each planned part it knows."""
    check_step(order, "diagnosis", auth)
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
    order.work.diagnosis = diagnosis
    order.work.lines = [
        PartLine(
            f"L{i}", p.part_id, p.quantity, in_warranty, retail_price_fen=retail_prices[p.part_id]
        )
        for i, p in enumerate(diagnosis.parts, start=1)
    ]
    _move(order, "diagnosed", auth, now, "diagnosis", why)


def quote(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    labour_fen: int,
    threshold_fen: int = DEFAULT_APPROVAL_THRESHOLD_FEN,
) -> None:
    """报价: the labour asked, plus the planned parts at their retail prices. Work under
    warranty is free: its quote is zero, and the customer still consents. `threshold_fen`: the
    order's branch's approval threshold."""
    check_step(order, "quote", auth)
    if labour_fen < 0:
        raise invalid("labour_fen", "must not be negative")
    if not chargeable(order) and labour_fen:
        raise invalid("labour_fen", "work under warranty is free: quote 0")
    parts_fen = (
        sum(line.retail_price_fen * line.quantity for line in order.work.lines)
        if chargeable(order)
        else 0
    )
    offer = Quote(labour_fen, parts_fen)
    order.work.quote = offer
    order.work.manager_approval_required = needs_manager(order, offer, threshold_fen)
    order.work.customer_approved = order.work.manager_approved = False
    why = f"quote {offer.total_fen} fen (labour {labour_fen}, parts {parts_fen})"
    if order.work.manager_approval_required:
        why += "; needs the branch manager too"
    _move(order, "awaiting_approval", auth, now, "quote", why)


def approvals_complete(order: RepairOrder) -> bool:
    work = order.work
    return work.customer_approved and (work.manager_approved or not work.manager_approval_required)


def approve(
    order: RepairOrder, auth: AuthContext, now: datetime, accepted: bool, note: str = ""
) -> None:
    """The customer's answer. Accepted and nothing else awaited: `approved`, until parts are
    reserved (`parts_reserved`); declined: `declined`, the device goes back unrepaired."""
    check_step(order, "approval", auth)
    if not accepted:
        _move(order, "declined", auth, now, "approval", note or "the customer declined")
        return
    order.work.customer_approved = True
    _after_approval(order, auth, now, "approval", note or "the customer accepted")


def manager_approve(
    order: RepairOrder, auth: AuthContext, now: datetime, approved: bool, note: str = ""
) -> None:
    check_step(order, "manager-approval", auth)
    if not order.work.manager_approval_required:
        raise Conflict("this order does not need the branch manager's approval")
    if not approved:
        _move(order, "declined", auth, now, "manager-approval", note or "the manager refused")
        return
    order.work.manager_approved = True
    _after_approval(order, auth, now, "manager-approval", note or "the manager approved")


def _after_approval(
    order: RepairOrder, auth: AuthContext, now: datetime, step: str, why: str
) -> None:
    status = "approved" if approvals_complete(order) else "awaiting_approval"
    _move(order, status, auth, now, step, why)


def parts_reserved(
    order: RepairOrder, auth: AuthContext, now: datetime, reserved: Mapping[str, int]
) -> None:
    """Record what the warehouse reserved per line, right after the approvals are in or at the
    `parts` step (到料): any shortage waits for parts (待料), none lets the repair start."""
    if order.status not in ("approved", "waiting_parts"):
        raise Conflict(f"the order is {order.status}: parts are reserved once it is approved")
    for line in order.work.lines:
        line.reserved = reserved.get(line.line_id, line.reserved)
    short = [f"{line.part_id} ×{line.short}" for line in order.work.lines if line.short]
    if short:
        # Also when still waiting: each reservation tried is in the timeline.
        _move(order, "waiting_parts", auth, now, "parts", "short: " + ", ".join(short))
    elif not short and order.status == "waiting_parts":
        _move(order, "approved", auth, now, "parts", "all parts reserved")


def start_repair(order: RepairOrder, auth: AuthContext, now: datetime) -> None:
    """Every reserved part is issued to its line (stock and cost leave the warehouse)."""
    check_step(order, "repair/start", auth)
    for line in order.work.lines:
        line.issued, line.reserved = line.issued + line.reserved, 0
    _move(order, "in_repair", auth, now, "repair/start", "parts issued")


def finish_repair(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    actions_done: tuple[str, ...],
    repair_level: str,
    old_parts_kept: tuple[str, ...],
) -> None:
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
    if errors:
        raise InvalidInput("the repair report has errors", errors)
    for line_id in old_parts_kept:
        lines[line_id].old_part_kept = True
    order.work.actions_done = actions_done
    order.work.repair_level = repair_level
    _move(order, "quality_check", auth, now, "repair/finish", ", ".join(actions_done))


def check_quality(
    order: RepairOrder, auth: AuthContext, now: datetime, passed: bool, note: str = ""
) -> None:
    check_step(order, "qc", auth)
    if passed:
        _move(order, "ready_for_pickup", auth, now, "qc", note or "passed")
        return
    if not note.strip():
        raise invalid("note", "say why the quality check failed")
    order.work.qc_failures += 1
    _move(order, "in_repair", auth, now, "qc", f"failed: {note}")


def pick_up(
    order: RepairOrder, auth: AuthContext, now: datetime, method: str, amount_fen: int
) -> None:
    """取机: chargeable work is paid in full, the quoted total; warranty work takes nothing."""
    check_step(order, "pickup", auth)
    due = order.work.quote.total_fen if order.work.quote and chargeable(order) else 0
    if amount_fen != due:
        raise invalid("amount_fen", f"must be {due}, the amount due")
    if due and method not in PAYMENT_METHODS:
        raise invalid("method", f"must be one of {', '.join(PAYMENT_METHODS)}")
    if due:
        order.work.payments.append(Payment(method, amount_fen, now))
    order.closed_at = now
    why = f"paid {due} fen by {method}" if due else "nothing to pay"
    _move(order, "closed", auth, now, "pickup", why)


def cancel(order: RepairOrder, auth: AuthContext, now: datetime, reason: str) -> None:
    """取消, before the repair starts: every reservation goes back to stock (a decline comes
    before anything is reserved)."""
    check_step(order, "cancel", auth)
    if not reason.strip():
        raise invalid("reason", "say why the order is cancelled")
    for line in order.work.lines:
        if line.reserved:
            line.reserved, line.released = 0, True
    _move(order, "cancelled", auth, now, "cancel", reason)
