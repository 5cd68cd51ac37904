"""Work orders (维修工单): intake, look-up, listing and the steps of their lifecycle, served by
the orders service."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext
from servicekit.errors import invalid
from servicekit.grpc_client import call
from servicekit.idempotency import request_hash
from servicekit.identifiers import normalise_digits
from servicekit.timeutil import shanghai_day, utc_now
from services.gateway import schemas, schemas_rules
from services.gateway.deps import Auth, Gw, IdempotencyKey
from services.gateway.idempotency import HEADER, run_once
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.privacy import phone_for
from services.gateway.render import (
    DocumentedRoute,
    iso_shanghai,
    iso_utc,
    json_response,
    moment,
    or_none,
)
from services.gateway.scope import OrgTree

router = APIRouter(prefix="/api/v1", tags=["repair orders"], route_class=DocumentedRoute)

PATH = "/api/v1/repair-orders"
Filter = Annotated[str | None, Query(max_length=50)]


def order_json(order: orders_pb2.RepairOrder, auth: AuthContext) -> dict[str, Any]:
    device, fault, warranty = order.device, order.fault, order.warranty
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "service_type": order.service_type,
        "branch_id": order.branch_id,
        "store_id": order.store_id,
        "customer": {
            "name": order.customer.name,
            "phone": phone_for(auth, order.store_id, order.customer.phone),
            "message_consent": order.customer.message_consent,
            "language": order.customer.language or "zh-CN",
        },
        "device": {
            "imei": device.imei,
            "brand": device.brand,
            "model": device.model,
            "colour": or_none(device.colour),
            "purchase_date": or_none(device.purchase_date),
        },
        "fault": {
            "description": fault.description,
            "symptom_code": or_none(fault.symptom_code),
        },
        "warranty": {
            "status": warranty.status,
            "entitlements": list(warranty.entitlements),
            "reason": or_none(warranty.reason),
            "expires_on": or_none(warranty.expires_on),
            "send_on_required": warranty.send_on_required,
        },
        "brand_authorised": order.brand_authorised,
        "repeat_repair": order.repeat_repair,
        "repeat_of_order_id": or_none(order.repeat_of_order_id),
        "parts_wait_swap_on": or_none(order.parts_wait_swap_on),
        "swap_days_left": swap_days_left(order),
        "accessories": or_none(order.accessories),
        "appearance": or_none(order.appearance),
        "promised_date": or_none(order.promised_date),
        "received_at": iso_utc(order.received_at),
        "received_at_local": iso_shanghai(order.received_at),
        "created_by": order.created_by,
        "timeline": timeline_json(order),
        "version": order.version,
        "diagnosis": diagnosis_json(order.diagnosis) if order.HasField("diagnosis") else None,
        "quote": {
            "labour_fen": order.quote.labour_fen,
            "parts_fen": order.quote.parts_fen,
            "total_fen": order.quote.total_fen,
            "manager_approval_required": order.quote.manager_approval_required,
            "customer_approved": order.quote.customer_approved,
            "manager_approved": order.quote.manager_approved,
            "store_id": order.quote.store_id or order.store_id,
        }
        if order.HasField("quote")
        else None,
        "lines": [
            {
                "line_id": line.line_id,
                "part_id": line.part_id,
                "quantity": line.quantity,
                "warranty": line.warranty,
                "reserved": line.reserved,
                "short": line.short,
                "issued": line.issued,
                "released": line.released,
                "old_part_kept": line.old_part_kept,
                "retail_price_fen": line.retail_price_fen,
                "store_id": line.store_id or order.store_id,
                "serials": list(line.serials),
                "successor_part_id": or_none(line.successor_part_id),
                "successor_available": line.successor_available,
            }
            for line in order.lines
        ],
        "payments": [
            {"method": p.method, "amount_fen": p.amount_fen, "at": iso_utc(p.at)}
            for p in order.payments
        ],
        "actions_done": list(order.actions_done),
        "repair_level": or_none(order.repair_level),
        "qc_failures": order.qc_failures,
        "closed_at": iso_utc(order.closed_at) if moment(order.closed_at) else None,
        **routes_json(order),
    }


def routes_json(order: orders_pb2.RepairOrder) -> dict[str, Any]:
    factory, swap = order.factory, order.swap
    return {
        "current_imei": order.current_imei or order.device.imei,
        "holder_store_id": order.holder_store_id or order.store_id,
        "partner": {
            "branch_id": order.partner_branch_id,
            "store_id": order.partner_store_id,
            "at_partner": order.at_partner,
            "repaired": order.partner_repaired,
        }
        if order.partner_store_id
        else None,
        "factory": {
            "carrier": factory.carrier,
            "tracking_number": factory.tracking_number,
            "shipped_at": iso_utc(factory.shipped_at),
            "outcome": or_none(factory.outcome),
            "new_imei": or_none(factory.new_imei),
            "received_at": iso_utc(factory.received_at) if moment(factory.received_at) else None,
        }
        if order.HasField("factory")
        else None,
        "swap": {
            "imei": swap.imei,
            "part_id": or_none(swap.part_id),
            "faulty_imei": swap.faulty_imei,
            "faulty_return_owed": swap.faulty_return_owed,
        }
        if order.HasField("swap")
        else None,
        "swap_offered": order.swap_offered,
        "swap_offer_reason": or_none(order.swap_offer_reason),
        "inspection_fee_fen": order.inspection_fee_fen,
    }


def timeline_json(order: orders_pb2.RepairOrder) -> list[dict[str, Any]]:
    return [
        {
            "status": entry.status,
            "step": or_none(entry.step),
            "at": iso_utc(entry.at),
            "user_id": entry.user_id,
            "store_id": or_none(entry.store_id),
            "note": or_none(entry.note),
        }
        for entry in order.timeline
    ]


def diagnosis_json(d: orders_pb2.Diagnosis) -> dict[str, Any]:
    return {
        "symptom_code": or_none(d.symptom_code),
        "fault_code": d.fault_code,
        "cause_code": or_none(d.cause_code),
        "actions": list(d.actions),
        "parts": [{"part_id": p.part_id, "quantity": p.quantity} for p in d.parts],
        "repair_level": d.repair_level,
        "warranty_override": or_none(d.warranty_override),
        "override_reason": or_none(d.override_reason),
    }


def etag(order: orders_pb2.RepairOrder) -> dict[str, str]:
    return {"ETag": f'"{order.version}"'}


def intake_store(tree: OrgTree, auth: AuthContext, store_id: str | None) -> tuple[str, str]:
    """(branch, store) an order is taken in: a store user's own store; HQ and branch users
    must name a store within their scope."""
    if auth.store_id:
        return tree.store_in_scope(auth, store_id or auth.store_id)
    if not store_id:
        raise invalid("store_id", "name the store that takes the order in")
    return tree.store_in_scope(auth, store_id)


@router.post(
    "/repair-orders",
    status_code=201,
    response_model=schemas.RepairOrder,
    responses={
        404: {"model": schemas.Problem, "description": "store outside your scope"},
        409: {"model": schemas.Problem, "description": "same Idempotency-Key still in flight"},
        422: {"model": schemas.Problem, "description": "invalid input, by field"},
    },
)
async def create_repair_order(
    body: schemas.RepairOrderIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: Annotated[str | None, Header(alias=HEADER)] = None,
) -> Response:
    async def handle() -> Response:
        branch_id, store_id = intake_store(gw.tree, auth, body.store_id)
        device, fault = body.device, body.fault
        message = orders_pb2.CreateRepairOrderRequest(
            branch_id=branch_id,
            store_id=store_id,
            customer=orders_pb2.Customer(
                name=body.customer.name,
                phone=body.customer.phone,
                message_consent=body.customer.message_consent,
                language=body.customer.language,
            ),
            device=orders_pb2.Device(
                imei=device.imei,
                brand=device.brand,
                model=device.model,
                colour=device.colour or "",
                purchase_date=device.purchase_date or "",
            ),
            fault=orders_pb2.Fault(
                description=fault.description, symptom_code=fault.symptom_code or ""
            ),
            service_type=body.service_type,
            accessories=body.accessories or "",
            appearance=body.appearance or "",
            promised_date=body.promised_date or "",
        )
        if idempotency_key:
            # orders honours the key for the same lifetime, and only for this same request.
            message.request_id = f"{auth.user_id}:{idempotency_key}"
            message.request_hash = request_hash(message)
        order = await call(gw.clients.orders.CreateRepairOrder, message)
        return json_response(order_json(order, auth), 201, {"Location": f"{PATH}/{order.id}"})

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/repair-orders/{order_id}",
    response_model=schemas.RepairOrder,
    responses={404: {"model": schemas.Problem}},
)
async def get_repair_order(order_id: str, auth: Auth, gw: Gw) -> Response:
    order = await call(
        gw.clients.orders.GetRepairOrder, orders_pb2.GetRepairOrderRequest(id=order_id)
    )
    return json_response(order_json(order, auth), headers=etag(order))


@router.get(
    "/repair-orders/{order_id}/timeline",
    response_model=schemas.Timeline,
    responses={404: {"model": schemas.Problem}},
)
async def get_timeline(order_id: str, auth: Auth, gw: Gw) -> Response:
    """Who moved the order, when, where (store) and why, oldest first."""
    order = await call(
        gw.clients.orders.GetRepairOrder, orders_pb2.GetRepairOrderRequest(id=order_id)
    )
    body = {"order_id": order.id, "version": order.version, "items": timeline_json(order)}
    return json_response(body, headers=etag(order))


# Once the device is back with the customer, or the work chargeable, nothing is owed.
_SWAP_OWED_UNTIL = {"ready_for_pickup", "closed", "cancelled", "declined"}


def swap_days_left(order: orders_pb2.RepairOrder) -> int | None:
    """三包: days (Shanghai) until an in-warranty repair still open is owed a swap for want of
    parts; negative once it is."""
    if not order.parts_wait_swap_on or order.status in _SWAP_OWED_UNTIL:
        return None
    if order.warranty.status != "in_warranty":
        return None
    due = date.fromisoformat(order.parts_wait_swap_on)
    return (due - shanghai_day(utc_now())).days


@router.get("/repair-orders", response_model=schemas.RepairOrderPage)
async def list_repair_orders(
    auth: Auth,
    gw: Gw,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: schemas_rules.OrderStatus | None = None,
    service_type: schemas_rules.ServiceType | None = None,
    imei: Filter = None,
    phone: Filter = None,
    store_id: Filter = None,
    branch_id: Filter = None,
    received_from: schemas_rules.DayQuery = None,
    received_to: schemas_rules.DayQuery = None,
    swap_due_by: Annotated[
        str | None,
        Query(
            pattern=schemas_rules.DAY_PATTERN,
            json_schema_extra={"format": "date"},
            description="YYYY-MM-DD: in-warranty orders owed a swap (三包, parts waited for too "
            "long) on or before this day; with status=waiting_parts, the ones near the limit",
        ),
    ] = None,
) -> Response:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = orders_pb2.ListRepairOrdersRequest(
        page_size=limit,
        page_token=cursor or "",
        branch_id=branch,
        store_id=store,
        status=status or "",
        service_type=service_type or "",
        imei=normalise_digits(imei or ""),
        phone=normalise_digits(phone or ""),
        received_from=schemas.check_day("received_from", received_from),
        received_to=schemas.check_day("received_to", received_to),
        swap_due_by=schemas.check_day("swap_due_by", swap_due_by),
    )
    reply = await call(gw.clients.orders.ListRepairOrders, request)
    return json_response(page([order_json(o, auth) for o in reply.orders], reply.next_page_token))


# The lifecycle steps. Each takes the order's ETag in If-Match and answers the whole order with
# its new ETag. The rules (who, from which status, with which data) are orders'; the gateway
# checks the body's shape and the If-Match header.

STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "your role may not take this step"},
    404: {"model": schemas.Problem, "description": "no such order in your scope"},
    409: {
        "model": schemas.Problem,
        "description": "not possible from the order's status, or already done (an approval "
        "given twice); for a step doing the work, an order this store must send on",
    },
    412: {"model": schemas.Problem, "description": "If-Match is not the order's current ETag"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
    428: {"model": schemas.Problem, "description": "If-Match is missing"},
}
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=schemas_rules.VERSION_ETAG,
        description='the ETag of the order as read, e.g. "3"',
    ),
]
Handler = Callable[..., Awaitable[Response]]


def expected_version(if_match: str | None) -> int:
    if if_match is None:
        raise HTTPException(428, "send If-Match with the ETag of the order as you read it")
    text = if_match.strip()
    if text.startswith("W/"):
        text = text[2:]
    digits = text.strip('"')
    # An ETag is a version: a small whole number (int32 on the wire).
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise invalid("If-Match", 'must be an ETag of this order, e.g. "3"')
    return int(digits)


def step_guards() -> dict[str, orders_pb2.StepGuard]:
    """Each step's guards as orders' contract declares them: the options of the proto's enum
    `Step`, which a test of orders keeps equal to the guards its domain applies."""
    declared = (
        value.GetOptions().Extensions[orders_pb2.guard]
        for value in orders_pb2.Step.DESCRIPTOR.values
    )
    return {guard.name: guard for guard in declared if guard.name}


STEP_GUARDS = step_guards()
STORE_OF_STEP = {
    "holder": "the store holding the device",
    "intake": "the intake store",
    "destination": "the store the device is travelling to",
    "any": "either store of the order (intake or partner)",
}
"""Each guard's `where` in words."""
SENT_ON = (
    "\n\nOnly where the order may be repaired: an in-warranty order at a store not authorised for "
    "the brand is sent on (`send-out` or `factory-return`), this step answers 409."
)


def step_rules(step: str) -> str:
    """Who may take a step and from which statuses, as orders' contract declares its guards,
    so the documentation cannot drift from the rules."""
    rule = STEP_GUARDS[step]
    roles = ", ".join(f"`{role}`" for role in rule.roles)
    statuses = ", ".join(f"`{status}`" for status in rule.from_statuses)
    return (
        f"**Who**: {roles}; a store user only at {STORE_OF_STEP[rule.where]}. "
        f"**From**: {statuses}. Requires If-Match." + (SENT_ON if rule.does_work else "")
    )


def step_route(step: str, summary: str) -> Callable[[Handler], Handler]:
    """`POST /repair-orders/{order_id}/<step>`, documented by the step's rules and then the
    handler's docstring."""

    def register(handler: Handler) -> Handler:
        description = f"{step_rules(step)}\n\n{inspect.cleandoc(handler.__doc__ or '')}"
        route = router.post(
            f"/repair-orders/{{order_id}}/{step}",
            response_model=schemas.RepairOrder,
            responses=STEP_RESPONSES,
            summary=summary,
            description=description.strip(),
        )
        return route(handler)

    return register


async def take_step(
    order_id: str,
    step: str,
    data: dict[str, Any],
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: str | None,
    idempotency_key: str | None,
) -> Response:
    async def handle() -> Response:
        message = orders_pb2.TakeStepRequest(
            order_id=order_id, expected_version=expected_version(if_match), step=step, **data
        )
        order = await call(gw.clients.orders.TakeStep, message)
        return json_response(order_json(order, auth), headers=etag(order))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


def _decision(accepted: bool, note: str | None) -> dict[str, Any]:
    return {"decision": orders_pb2.Decision(accepted=accepted, note=note or "")}


@step_route("diagnosis", "Diagnosis (检测)")
async def diagnosis(
    order_id: str,
    body: schemas.DiagnosisIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Moves to `diagnosed` (taken again from there, it revises the diagnosis; `at_partner`:
    the partner store's technician diagnoses it). An override of the warranty needs
    `override_reason`."""
    data = orders_pb2.Diagnosis(
        symptom_code=body.symptom_code,
        fault_code=body.fault_code,
        cause_code=body.cause_code,
        actions=body.actions,
        parts=[orders_pb2.PlannedPart(part_id=p.part_id, quantity=p.quantity) for p in body.parts],
        repair_level=body.repair_level,
        warranty_override=body.warranty_override or "",
        override_reason=body.override_reason or "",
    )
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "diagnosis", {"diagnosis": data}, *args)


@step_route("quote", "Quote (报价)")
async def quote(
    order_id: str,
    body: schemas.QuoteIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The labour asked plus the planned parts at the catalog's retail prices (work under
    warranty: 0). Moves to `awaiting_approval`. Above the branch's approval threshold (HQ keeps
    it: `GET /api/v1/approval-thresholds`), or for an in-warranty mainboard replacement or
    swap, the branch manager must approve too."""
    data = orders_pb2.QuoteRequest(labour_fen=body.labour_fen)
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "quote", {"quote": data}, *args)


@step_route("approval", "The customer's answer")
async def approval(
    order_id: str,
    body: schemas.ApprovalIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Declined: `declined`. Accepted with every approval in: parts are reserved at the store's
    warehouse, then `approved`, or `waiting_parts` when some are short."""
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "approval", _decision(body.accepted, body.note), *args)


@step_route("manager-approval", "Branch manager's approval")
async def manager_approval(
    order_id: str,
    body: schemas.ManagerApprovalIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Only for orders whose quote needs it (409 otherwise). Refused: `declined`."""
    data = _decision(body.approved, body.note)
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "manager-approval", data, *args)


@step_route("parts", "Parts came (到料)")
async def parts(
    order_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    body: schemas.PartsIn | None = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Reserves again what was short: `approved` once nothing is. 替代料: a short line whose
    part is superseded shows the successor offered (`successor_part_id`,
    `successor_available`); naming it in `substitutes` reserves it instead, at its retail
    price. Chargeable work is quoted again: a higher total goes back to `awaiting_approval`
    (approved again like any quote), a lower or equal one stands."""
    substitutes = [
        orders_pb2.Substitute(line_id=x.line_id, part_id=x.part_id)
        for x in (body.substitutes if body else [])
    ]
    data = {"parts": orders_pb2.PartsRequest(substitutes=substitutes)} if substitutes else {}
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "parts", data, *args)


@step_route("repair/start", "Repair starts (维修)")
async def repair_start(
    order_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    body: schemas.NoBody | None = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The reserved parts are issued to the order. Moves to `in_repair`."""
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "repair/start", {}, *args)


@step_route("repair/finish", "Repair done")
async def repair_finish(
    order_id: str,
    body: schemas.RepairFinishIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Actions done, repair level, old parts kept on warranty lines. Moves to `quality_check`.
    A mainboard replacement (planned at diagnosis) names the device's `new_imei`: the device
    passport then finds it by either IMEI."""
    data = orders_pb2.RepairReport(
        actions_done=body.actions_done,
        repair_level=body.repair_level,
        old_parts_kept=body.old_parts_kept,
        new_imei=body.new_imei or "",
    )
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "repair/finish", {"repair": data}, *args)


@step_route("qc", "Quality check (质检)")
async def qc(
    order_id: str,
    body: schemas.QcIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Passed: `ready_for_pickup` (the customer is notified). Failed: back to `in_repair`."""
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "qc", _decision(body.passed, body.note), *args)


@step_route("pickup", "Pickup (取机)")
async def pickup(
    order_id: str,
    body: schemas.PickupIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Chargeable work pays the quoted total (method and amount); the order is `closed`. A
    declined unit goes back unrepaired, with the inspection fee (检测费) in `amount_fen`."""
    data = orders_pb2.PickupRequest(method=body.method or "", amount_fen=body.amount_fen)
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "pickup", {"pickup": data}, *args)


@step_route("cancel", "Cancel (取消)")
async def cancel(
    order_id: str,
    body: schemas.CancelIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Before the repair starts; reserved parts go back to stock. Moves to `cancelled`."""
    data = orders_pb2.CancelRequest(reason=body.reason)
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "cancel", {"cancel": data}, *args)


@step_route("send-out", "Send to another store (网点间送修)")
async def send_out(
    order_id: str,
    body: schemas.SendOutIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The device goes to `store_id`, which repairs it (under warranty it must be authorised
    for the brand). Moves to `sent_out`. The partner store sees the order from now on; its
    parts come from its own warehouse and its labour is its own."""
    unit = gw.tree.get(body.store_id)
    if unit is None or unit.kind != "store" or unit.parent_id is None:
        raise invalid("store_id", f"no store {body.store_id}")
    data = orders_pb2.SendOutRequest(
        branch_id=unit.parent_id, store_id=unit.id, note=body.note or ""
    )
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "send-out", {"send_out": data}, *args)


@step_route("receive", "The device arrives")
async def receive(
    order_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    body: schemas.RouteNoteIn | None = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """At the partner: `at_partner`, where its technicians diagnose and repair it (the
    partner's users take the repair steps, the QC pass leaves it `at_partner`, repaired). Back
    at the intake store: `ready_for_pickup` when repaired, `declined` when the customer said
    no, else `received`."""
    data = orders_pb2.RouteNote(note=body.note or "" if body else "")
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "receive", {"route": data}, *args)


@step_route("return", "The partner sends the device back")
async def return_to_intake(
    order_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    body: schemas.RouteNoteIn | None = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Repaired, or unrepaired (say why in `note`; its reservations are released). Moves to
    `returned_from_partner`."""
    data = orders_pb2.RouteNote(note=body.note or "" if body else "")
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "return", {"route": data}, *args)


@step_route("factory-return", "Return to factory (返厂)")
async def factory_return(
    order_id: str,
    body: schemas.FactoryReturnIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Shipped to the manufacturer's repair centre with carrier and tracking number; moves to
    `at_factory`. Not while the order holds parts."""
    data = orders_pb2.FactoryShipment(
        carrier=body.carrier, tracking_number=body.tracking_number, note=body.note or ""
    )
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "factory-return", {"factory_return": data}, *args)


@step_route("factory-receive", "Back from the factory")
async def factory_receive(
    order_id: str,
    body: schemas.FactoryReceiveIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """`repaired` or `replaced` (with the `new_imei`, linked to the old one): `quality_check`.
    `refused` (say why): back to `received`."""
    data = orders_pb2.FactoryOutcome(
        outcome=body.outcome, new_imei=body.new_imei or "", note=body.note or ""
    )
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "factory-receive", {"factory_receive": data}, *args)


@step_route("swap", "Swap (换机)")
async def swap(
    order_id: str,
    body: schemas.SwapIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """For a swap order, or a repair whose diagnosis planned the action `swap` (so an
    in-warranty swap had the branch manager's approval). The replacement's IMEI is recorded
    and linked to the faulty one, which is owed to the manufacturer; the unit, named by
    `part_id`, is issued from the store's swap stock by its IMEI (409 naming the IMEI when that
    unit is not free there). Moves to `ready_for_pickup`."""
    data = orders_pb2.SwapRequest(imei=body.imei, part_id=body.part_id, note=body.note or "")
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "swap", {"swap": data}, *args)


@step_route("complete", "A quick order done and paid")
async def complete(
    order_id: str,
    body: schemas.CompleteIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accessory replacement or sale, or software service (刷机/升级): the parts issued from the
    store's warehouse at once (409 when short), the payment recorded, `closed`."""
    data = orders_pb2.QuickService(
        actions_done=body.actions_done,
        parts=[orders_pb2.PlannedPart(part_id=p.part_id, quantity=p.quantity) for p in body.parts],
        service_fen=body.service_fen,
        method=body.method or "",
        amount_fen=body.amount_fen,
    )
    args = (request, auth, gw, if_match, idempotency_key)
    return await take_step(order_id, "complete", {"quick": data}, *args)


@router.get(
    "/devices/{imei}",
    tags=["devices"],
    response_model=schemas.DevicePassport,
    responses={404: {"model": schemas.Problem, "description": "no order of it in your scope"}},
)
async def device_passport(
    imei: Annotated[str, Path(max_length=50)], gw: Gw, auth: Auth
) -> Response:
    """设备档案: the device's orders across the stores of your scope (HQ: all), found by any
    IMEI it ever had (mainboard replacements, factory replacements and swaps are followed both
    ways), newest first, with the warranty as decided on the newest."""
    passport = await call(
        gw.clients.orders.GetDevicePassport, orders_pb2.GetDevicePassportRequest(imei=imei)
    )
    w = passport.warranty
    return json_response(
        {
            "imei": passport.imei,
            "imeis": list(passport.imeis),
            "links": [
                {
                    "old_imei": x.old_imei,
                    "new_imei": x.new_imei,
                    "kind": x.kind,
                    "order_id": x.order_id,
                    "at": iso_utc(x.at),
                }
                for x in passport.links
            ],
            "warranty": {
                "status": w.status,
                "entitlements": list(w.entitlements),
                "reason": or_none(w.reason),
                "expires_on": or_none(w.expires_on),
                "send_on_required": w.send_on_required,
            },
            "orders": [
                {
                    "id": o.id,
                    "number": o.number,
                    "status": o.status,
                    "service_type": o.service_type,
                    "branch_id": o.branch_id,
                    "store_id": o.store_id,
                    "imei": o.device.imei,
                    "current_imei": o.current_imei or o.device.imei,
                    "fault_code": or_none(o.diagnosis.fault_code),
                    "warranty_status": o.warranty.status,
                    "received_at": iso_utc(o.received_at),
                    "closed_at": iso_utc(o.closed_at) if moment(o.closed_at) else None,
                }
                for o in passport.orders
            ],
        }
    )
