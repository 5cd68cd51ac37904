"""The routes off a repair's happy path, as transitions of the order (see `lifecycle` for the
statuses and the guard every step shares). Pure: no I/O and no clock.

- 网点间送修 (send to another store and back): `send_out`, `receive`, `return_to_intake`;
- 返厂 (return to factory): `ship_to_factory`, `receive_from_factory`;
- 换机 (swap): `swap`;
- quick orders (accessory replacement or sale, software service 刷机/升级): `complete`.

A mainboard replacement is a repair whose report names a new IMEI (`lifecycle.finish_repair`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, FieldError, InvalidInput, invalid
from servicekit.identifiers import imei_problem
from servicekit.timeutil import shanghai_day
from services.orders.domain.lifecycle import (
    PAYMENT_METHODS,
    chargeable,
    check_step,
    move,
)
from services.orders.domain.order import (
    FactoryReturn,
    PartLine,
    Payment,
    PlannedPart,
    Quote,
    RepairOrder,
    SwapUnit,
)
from services.orders.domain.warranty import IN_WARRANTY, WarrantyPolicy, line_in_warranty

FACTORY_OUTCOMES = ("repaired", "replaced", "refused")
"""What the manufacturer's repair centre did: repaired the unit, replaced it by a new one (a
new IMEI), or refused the work (for example damage it does not cover)."""

QUICK_SERVICE_TYPES = ("accessory", "software")
SWAP_LINE = "S1"
"""The order line of a swap unit (its own, beside the repair's L and P lines)."""


@dataclass(frozen=True)
class Partner:
    """The store a send-out goes to, as the org tree knows it."""

    branch_id: str
    store_id: str
    authorised: bool  # for the order's brand (厂商授权)


def send_out(
    order: RepairOrder, auth: AuthContext, now: datetime, partner: Partner, note: str
) -> None:
    """送修: the intake store sends the device to another store, which repairs it. Under
    warranty the partner must be authorised for the brand. Nothing is reserved yet (the
    partner reserves at its own warehouse), so the intake's planned lines are dropped."""
    check_step(order, "send-out", auth)
    if not partner.store_id:
        raise invalid("store_id", "name the store that repairs the device")
    if partner.store_id == order.store_id:
        raise invalid("store_id", "is the store that took the order in")
    if order.work.partner_store_id:
        raise Conflict(f"the order was already sent to store {order.work.partner_store_id}")
    if order.warranty.status == IN_WARRANTY and not partner.authorised:
        raise invalid(
            "store_id", "is not authorised for the brand, and the order is under warranty"
        )
    work = order.work
    work.partner_branch_id, work.partner_store_id = partner.branch_id, partner.store_id
    work.lines = []
    why = f"sent to store {partner.store_id}" + (f": {note}" if note else "")
    move(order, "sent_out", auth, now, "send-out", why)


def receive(order: RepairOrder, auth: AuthContext, now: datetime, note: str = "") -> None:
    """The device arrives: at the partner (which then diagnoses and repairs it), or back home,
    where it is ready for pickup when repaired, declined when the customer said no, and back
    at the start of the flow when the partner could not repair it."""
    check_step(order, "receive", auth)
    work = order.work
    if order.status == "sent_out":
        work.at_partner = True
        status, why = "at_partner", f"received by store {work.partner_store_id}"
    elif work.partner_repaired:
        status, why = "ready_for_pickup", "back from the partner, repaired"
    elif work.declined:
        status, why = "declined", "back from the partner, unrepaired: declined"
    else:
        status, why = "received", "back from the partner, unrepaired"
    move(order, status, auth, now, "receive", why + (f"; {note}" if note else ""))


def return_to_intake(order: RepairOrder, auth: AuthContext, now: datetime, note: str) -> None:
    """The partner sends the device back: repaired after its QC, or unrepaired (say why),
    its reservations let go."""
    check_step(order, "return", auth)
    work = order.work
    if not work.at_partner:
        raise Conflict(f"the order is {order.status} at its intake store: nothing to return")
    if not work.partner_repaired and not work.declined and not note.strip():
        raise invalid("note", "say why the device goes back unrepaired")
    for line in work.lines:
        if line.reserved:
            line.reserved, line.released = 0, True
    work.at_partner = False
    why = "repaired" if work.partner_repaired else "unrepaired"
    move(
        order,
        "returned_from_partner",
        auth,
        now,
        "return",
        f"sent back to store {order.store_id}, {why}" + (f": {note}" if note else ""),
    )


def ship_to_factory(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    carrier: str,
    tracking_number: str,
    note: str = "",
) -> None:
    """返厂: shipped to the manufacturer's repair centre with its carrier and tracking number."""
    check_step(order, "factory-return", auth)
    errors = [
        FieldError(name, "is required")
        for name, value in (("carrier", carrier), ("tracking_number", tracking_number))
        if not value.strip()
    ]
    if errors:
        raise InvalidInput("the shipment has errors", errors)
    if any(line.reserved or line.issued for line in order.work.lines):
        raise Conflict("the order holds parts: the factory repairs what it is sent as it is")
    order.work.factory = FactoryReturn(carrier.strip(), tracking_number.strip(), now)
    why = f"shipped to the factory by {carrier.strip()}, tracking {tracking_number.strip()}"
    move(order, "at_factory", auth, now, "factory-return", why + (f"; {note}" if note else ""))


def receive_from_factory(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    outcome: str,
    new_imei: str = "",
    note: str = "",
) -> None:
    """Back from the factory: repaired, or replaced by a unit with a new IMEI, goes to the
    quality check; refused goes back to the start of the flow (diagnose, quote, decline)."""
    check_step(order, "factory-receive", auth)
    shipped = order.work.factory
    assert shipped is not None  # at_factory is reached only by ship_to_factory
    if outcome not in FACTORY_OUTCOMES:
        raise invalid("outcome", f"must be one of {', '.join(FACTORY_OUTCOMES)}")
    if outcome == "replaced":
        if problem := imei_problem(new_imei):
            raise invalid("new_imei", problem)
        if new_imei == order.current_imei:
            raise invalid("new_imei", "is the IMEI the device has now")
    elif new_imei:
        raise invalid("new_imei", "only a replaced unit has a new IMEI")
    if outcome == "refused" and not note.strip():
        raise invalid("note", "say why the factory refused the work")
    order.work.factory = replace(shipped, outcome=outcome, new_imei=new_imei, received_at=now)
    why = f"back from the factory: {outcome}"
    if new_imei:
        why += f", IMEI {order.current_imei} → {new_imei}"
        order.work.new_imei = new_imei
    status = "received" if outcome == "refused" else "quality_check"
    move(order, status, auth, now, "factory-receive", why + (f"; {note}" if note else ""))


def swap_planned(order: RepairOrder) -> bool:
    diagnosis = order.work.diagnosis
    return order.intake.service_type == "swap" or bool(diagnosis and "swap" in diagnosis.actions)


def swap(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    imei: str,
    part_id: str,
    note: str = "",
) -> None:
    """换机: a unit from swap stock goes to the customer, and the faulty one is owed to the
    manufacturer. Only a swap the diagnosis planned (or a swap order), so its approvals (the
    branch manager's for one under warranty) are in. The repair's reservations are let go; the
    swap unit, named by its part number, becomes line S1, its serial the unit's IMEI (reserved
    and issued at once: exactly that unit leaves the store's swap stock, in the ledger)."""
    check_step(order, "swap", auth)
    if not swap_planned(order):
        raise Conflict("no swap was planned: diagnose with the action swap first")
    errors: list[FieldError] = []
    if problem := imei_problem(imei):
        errors.append(FieldError("imei", problem))
    elif imei == order.current_imei:
        errors.append(FieldError("imei", "is the faulty unit's IMEI"))
    if not part_id.strip():
        errors.append(FieldError("part_id", "name the unit's part number in swap stock"))
    if errors:
        raise InvalidInput("the swap has errors", errors)
    work = order.work
    for line in work.lines:
        if line.reserved:
            line.reserved, line.released = 0, True
    work.lines.append(
        PartLine(
            SWAP_LINE,
            part_id,
            1,
            order.warranty.status == IN_WARRANTY,
            store_id=order.holder_store_id,
            serials=(imei,),
        )
    )
    faulty = order.current_imei
    work.swap = SwapUnit(imei, part_id, faulty)
    work.new_imei = imei
    why = f"swapped: unit {imei} handed over, faulty {faulty} owed to the manufacturer"
    move(order, "ready_for_pickup", auth, now, "swap", why + (f"; {note}" if note else ""))


def complete(
    order: RepairOrder,
    auth: AuthContext,
    now: datetime,
    actions_done: tuple[str, ...],
    parts: tuple[PlannedPart, ...],
    retail_prices: Mapping[str, int],
    service_fen: int,
    method: str,
    amount_fen: int,
    categories: Mapping[str, str] | None = None,
    policy: WarrantyPolicy | None = None,
) -> None:
    """A quick order (accessory replacement or sale, software service) done while the customer
    waits: its parts issued from the store's warehouse, paid (the service fee plus the parts at
    retail, nothing under warranty) and closed in one step. Each part's warranty is its own
    (`categories` from the catalog, `policy` the brand's): a battery within its period is free
    though the phone's warranty has ended."""
    check_step(order, "complete", auth)
    if order.intake.service_type not in QUICK_SERVICE_TYPES:
        raise Conflict(
            f"a {order.intake.service_type} order goes through diagnosis: only accessory and "
            "software orders complete at once"
        )
    errors: list[FieldError] = []
    if not actions_done:
        errors.append(FieldError("actions_done", "name at least one action"))
    if service_fen < 0:
        errors.append(FieldError("service_fen", "must not be negative"))
    for i, part in enumerate(parts):
        if part.part_id not in retail_prices:
            errors.append(FieldError(f"parts[{i}].part_id", "is not in the catalog"))
        if part.quantity < 1:
            errors.append(FieldError(f"parts[{i}].quantity", "must be at least 1"))
    if errors:
        raise InvalidInput("the quick order has errors", errors)
    intake_day = shanghai_day(order.received_at)
    lines = [
        PartLine(
            f"L{i}",
            p.part_id,
            p.quantity,
            line_in_warranty(
                (categories or {}).get(p.part_id, ""),
                order.warranty,
                order.intake.purchase_date,
                intake_day,
                policy or WarrantyPolicy(),
            ),
            retail_price_fen=retail_prices[p.part_id],
            store_id=order.store_id,
        )
        for i, p in enumerate(parts, start=1)
    ]
    # A quick order has no lines before this step: with parts, what it pays for is theirs.
    paid = any(not x.warranty for x in lines) if lines else chargeable(order)
    parts_fen = sum(x.retail_price_fen * x.quantity for x in lines if not x.warranty)
    due = service_fen + parts_fen if paid else 0
    if amount_fen != due:
        raise invalid("amount_fen", f"must be {due}, the amount due")
    if due and method not in PAYMENT_METHODS:
        raise invalid("method", f"must be one of {', '.join(PAYMENT_METHODS)}")
    work = order.work
    work.lines = lines
    work.quote = Quote(service_fen if paid else 0, parts_fen, order.store_id)
    work.customer_approved = True
    work.actions_done = actions_done
    if due:
        work.payments.append(Payment(method, due, now))
    order.closed_at = now
    why = ", ".join(actions_done) + (f"; paid {due} fen by {method}" if due else "; free")
    move(order, "closed", auth, now, "complete", why)
