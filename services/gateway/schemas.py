"""The REST contract the frontends rely on: request shapes (checked here for shape only; the
services judge the content) and response shapes (for the OpenAPI document)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from servicekit.errors import invalid
from servicekit.identifiers import normalise_digits
from servicekit.timeutil import day_problem
from services.gateway.schemas_rules import RepairLevel

Short = Annotated[str, StringConstraints(max_length=50)]
Name = Annotated[str, StringConstraints(max_length=200)]
Note = Annotated[str, StringConstraints(max_length=500)]
Text = Annotated[str, StringConstraints(max_length=2000)]


def typed_digits(value: object) -> object:
    return normalise_digits(value) if isinstance(value, str) else value


Digits = Annotated[str, BeforeValidator(typed_digits), StringConstraints(max_length=50)]
"""An IMEI or a phone number as a Chinese keyboard may type it: full-width digits become ASCII
here, at the door, so the services store and find the number the same way whatever the
keyboard."""


def check_day(field: str, value: str | None) -> str:
    """A YYYY-MM-DD query value within the business calendar, or "" when absent."""
    if not value:
        return ""
    try:
        # fromisoformat alone would also take the basic form 20240101.
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise invalid(field, "must be a date YYYY-MM-DD")
    if problem := day_problem(day):
        raise invalid(field, problem)
    return value


# Requests


class CustomerIn(BaseModel):
    name: Name
    phone: Digits
    message_consent: bool = Field(
        False, description="the customer agrees to service messages (SMS) about the order"
    )
    language: Literal["zh-CN", "en"] = Field(
        "zh-CN", description="the language of the customer's messages"
    )


class DeviceIn(BaseModel):
    imei: Digits
    brand: Short
    model: Name
    colour: Short | None = None
    purchase_date: Short | None = None


class FaultIn(BaseModel):
    description: Text
    symptom_code: Short | None = None


class RepairOrderIn(BaseModel):
    customer: CustomerIn
    device: DeviceIn
    fault: FaultIn
    service_type: Short
    accessories: Note | None = None
    appearance: Note | None = None
    promised_date: Short | None = None
    store_id: Short | None = Field(
        None, description="required for HQ and branch users; a store user's own store otherwise"
    )


# Lifecycle steps: POST /repair-orders/{id}/<step>, each with If-Match. Amounts in fen.

Fen = Annotated[int, Field(ge=0, le=100_000_000)]
Codes = Annotated[list[Short], Field(max_length=20)]


class PlannedPartIn(BaseModel):
    part_id: Short = Field(description="the part number (料号)")
    quantity: int = Field(1, ge=1, le=100)


class DiagnosisIn(BaseModel):
    """检测: the manufacturer's codes (free codes for now), the planned actions and parts, the
    repair level, and the technician's warranty finding (with its reason)."""

    symptom_code: Short = ""
    fault_code: Short
    cause_code: Short = ""
    actions: Codes = Field(default_factory=list, description="e.g. replace_screen")
    parts: list[PlannedPartIn] = Field(default_factory=list, max_length=20)
    repair_level: RepairLevel = Field(description="decides the manufacturer's labour fee")
    warranty_override: Literal["in_warranty", "out_of_warranty"] | None = Field(
        None, description="overrides intake's warranty decision; needs override_reason"
    )
    override_reason: Note | None = Field(None, description="e.g. liquid damage (人为损坏)")


class QuoteIn(BaseModel):
    """报价: the labour asked; the planned parts are added at the catalog's retail prices.
    Work under warranty is free: labour 0."""

    labour_fen: Fen


class ApprovalIn(BaseModel):
    accepted: bool = Field(description="false: the customer declines, the order ends declined")
    note: Note | None = None


class ManagerApprovalIn(BaseModel):
    approved: bool = Field(description="false: the order ends declined")
    note: Note | None = None


class NoBody(BaseModel):
    """No data: send `{}`."""


class SubstituteIn(BaseModel):
    line_id: Short = Field(description="a short line offered a successor (successor_part_id)")
    part_id: Short = Field(
        description="the successor offered, or a part further down its superseded chain"
    )


class PartsIn(BaseModel):
    """到料: reserve again what was short; `substitutes` take the successor inventory offered
    for a short superseded line (替代料) instead of waiting for the old part."""

    substitutes: list[SubstituteIn] = Field(default_factory=list, max_length=20)


class RepairFinishIn(BaseModel):
    actions_done: Annotated[list[Short], Field(min_length=1, max_length=20)]
    repair_level: RepairLevel
    old_parts_kept: Codes = Field(
        default_factory=list, description="line ids of warranty lines whose old part (旧件) is kept"
    )
    new_imei: Digits | None = Field(
        None,
        description="the device's new IMEI, required when actions_done has "
        "mainboard_replacement (主板更换); the old → new link is kept",
    )


class QcIn(BaseModel):
    passed: bool = Field(description="false sends the order back to repair; say why in note")
    note: Note | None = None


class PickupIn(BaseModel):
    method: Literal["cash", "card", "wechat_pay", "alipay"] | None = Field(
        None, description="for chargeable work (recorded, not processed)"
    )
    amount_fen: Fen = Field(
        0,
        description="the quoted total for chargeable work, else 0; for a declined unit the "
        "inspection fee (检测费), 0 for none",
    )


class CancelIn(BaseModel):
    reason: Note


class SendOutIn(BaseModel):
    """送修: the store that repairs the device (under warranty, one authorised for the brand)."""

    store_id: Short
    note: Note | None = None


class RouteNoteIn(BaseModel):
    note: Note | None = Field(None, description="required when the partner returns it unrepaired")


class FactoryReturnIn(BaseModel):
    """返厂: the shipment to the manufacturer's repair centre."""

    carrier: Short
    tracking_number: Short
    note: Note | None = None


class FactoryReceiveIn(BaseModel):
    outcome: Literal["repaired", "replaced", "refused"]
    new_imei: Digits | None = Field(None, description="the replacement unit's, when replaced")
    note: Note | None = Field(None, description="required when refused")


class SwapIn(BaseModel):
    """换机: the unit from swap stock handed to the customer."""

    imei: Digits = Field(description="the replacement unit's IMEI")
    part_id: Short = Field(
        description="its part number in swap stock (serialised): the unit with this IMEI as "
        "its serial is issued from the store's warehouse",
    )
    note: Note | None = None


class CompleteIn(BaseModel):
    """A quick order (accessory replacement or sale, software service 刷机/升级) done and paid
    at once: the service fee plus the parts at retail, 0 under warranty."""

    actions_done: Annotated[list[Short], Field(min_length=1, max_length=20)]
    parts: list[PlannedPartIn] = Field(default_factory=list, max_length=20)
    service_fen: Fen = 0
    method: Literal["cash", "card", "wechat_pay", "alipay"] | None = None
    amount_fen: Fen = Field(0, description="the amount due: service_fen + the parts at retail")


# Responses


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class OrgUnit(BaseModel):
    id: str
    kind: str
    name: str
    parent_id: str | None
    franchised: bool


class OrgUnits(BaseModel):
    items: list[OrgUnit]


class Me(BaseModel):
    id: str
    username: str
    display_name: str
    role: str
    branch_id: str | None
    store_id: str | None
    org_unit: OrgUnit


class CustomerOut(BaseModel):
    name: str
    phone: str
    message_consent: bool
    language: str


class DeviceOut(BaseModel):
    imei: str
    brand: str
    model: str
    colour: str | None
    purchase_date: str | None


class FaultOut(BaseModel):
    description: str
    symptom_code: str | None


class Warranty(BaseModel):
    status: str
    entitlements: list[str]
    reason: str | None
    expires_on: str | None
    send_on_required: bool


class TimelineEntry(BaseModel):
    status: str
    step: str | None = Field(description="the step that made it: intake, diagnosis, ...")
    at: str | None
    user_id: str
    store_id: str | None = Field(description="where: the store it happened at")
    note: str | None = Field(description="why")


class Timeline(BaseModel):
    order_id: str
    version: int
    items: list[TimelineEntry]


class PlannedPartOut(BaseModel):
    part_id: str
    quantity: int


class DiagnosisOut(BaseModel):
    symptom_code: str | None
    fault_code: str
    cause_code: str | None
    actions: list[str]
    parts: list[PlannedPartOut]
    repair_level: str
    warranty_override: str | None
    override_reason: str | None


class QuoteOut(BaseModel):
    labour_fen: int
    parts_fen: int
    total_fen: int
    manager_approval_required: bool
    customer_approved: bool
    manager_approved: bool
    store_id: str = Field(description="whose labour it is")


class OrderLine(BaseModel):
    line_id: str
    part_id: str
    quantity: int
    warranty: bool
    reserved: int
    short: int
    issued: int
    released: bool
    old_part_kept: bool
    retail_price_fen: int = Field(
        description="each, from the catalog at diagnosis (or when a successor was taken)"
    )
    store_id: str = Field(description="whose warehouse issues it")
    serials: list[str] = Field(
        description="a serialised part (swap unit, mainboard): the serials it holds or took"
    )
    successor_part_id: str | None = Field(
        description="替代料: short, and its part superseded: the part offered in its place"
    )
    successor_available: int = Field(
        description="how many of the successor the warehouse has available"
    )


class PaymentOut(BaseModel):
    method: str
    amount_fen: int
    at: str | None


class PartnerOut(BaseModel):
    branch_id: str
    store_id: str
    at_partner: bool = Field(description="the device is with it now")
    repaired: bool


class FactoryOut(BaseModel):
    carrier: str
    tracking_number: str
    shipped_at: str | None
    outcome: str | None = Field(description="repaired, replaced or refused, once back")
    new_imei: str | None
    received_at: str | None


class SwapOut(BaseModel):
    imei: str = Field(description="the unit handed over")
    part_id: str | None
    faulty_imei: str
    faulty_return_owed: bool


class ImeiLinkOut(BaseModel):
    old_imei: str
    new_imei: str
    kind: str = Field(description="mainboard, factory or swap")
    order_id: str
    at: str | None


class DeviceOrder(BaseModel):
    id: str
    number: str
    status: str
    service_type: str
    branch_id: str
    store_id: str
    imei: str
    current_imei: str
    fault_code: str | None
    warranty_status: str
    received_at: str | None
    closed_at: str | None


class DevicePassport(BaseModel):
    """设备档案: the device's history across the chain within your scope."""

    imei: str
    imeis: list[str] = Field(description="every IMEI it had, linked both ways")
    links: list[ImeiLinkOut]
    warranty: Warranty = Field(description="as decided on its newest order")
    orders: list[DeviceOrder]


class RepairOrder(BaseModel):
    id: str
    number: str
    status: str
    service_type: str
    branch_id: str
    store_id: str
    customer: CustomerOut
    device: DeviceOut
    fault: FaultOut
    warranty: Warranty
    brand_authorised: bool
    repeat_repair: bool
    repeat_of_order_id: str | None = Field(
        description="返修: the repair of this device closed within 90 days that it came back from"
    )
    parts_wait_swap_on: str | None = Field(
        description="三包: an in-warranty repair still waiting for parts on this day (YYYY-MM-DD) "
        "is owed a swap"
    )
    swap_days_left: int | None = Field(
        description="days until then while the order is open and in warranty; negative once due"
    )
    accessories: str | None
    appearance: str | None
    promised_date: str | None
    received_at: str | None
    received_at_local: str | None
    created_by: str
    timeline: list[TimelineEntry]
    version: int = Field(description="also the ETag; send it back in If-Match on a step")
    diagnosis: DiagnosisOut | None
    quote: QuoteOut | None
    lines: list[OrderLine]
    payments: list[PaymentOut]
    actions_done: list[str]
    repair_level: str | None
    qc_failures: int
    closed_at: str | None
    current_imei: str = Field(
        description="the device's IMEI now (changed by a board, the factory or a swap)"
    )
    holder_store_id: str = Field(description="the store that has the device now")
    partner: PartnerOut | None = Field(description="送修: the store it was sent to")
    factory: FactoryOut | None = Field(description="返厂")
    swap: SwapOut | None = Field(description="换机")
    swap_offered: bool = Field(
        description="the manufacturer's count of warranty repairs of one fault is reached (by "
        "default the second): a swap is due"
    )
    swap_offer_reason: str | None
    inspection_fee_fen: int = Field(description="检测费 paid for a declined unit")


class RepairOrderPage(BaseModel):
    items: list[RepairOrder]
    next_cursor: str | None


class Model(BaseModel):
    code: str
    name: str


class Brand(BaseModel):
    code: str
    name: str
    models: list[Model]


class Brands(BaseModel):
    items: list[Brand]


class CustomerDevice(BaseModel):
    imei: str
    brand: str
    model: str
    first_seen_at: str | None


class Customer(BaseModel):
    id: str
    name: str
    phone: str
    devices: list[CustomerDevice]
    order_count: int
    last_seen_at: str | None
    last_store_id: str | None


class Part(BaseModel):
    part_number: str
    brand: str
    description: str
    category: str
    compatible_models: list[str]
    serialised: bool
    standard_cost_fen: int
    retail_price_fen: int
    superseded_by: str | None


class PartPage(BaseModel):
    items: list[Part]
    next_cursor: str | None


class Warehouse(BaseModel):
    id: str
    name: str
    kind: str
    branch_id: str
    store_id: str | None


class Warehouses(BaseModel):
    items: list[Warehouse]


class StockLevel(BaseModel):
    part_number: str
    description: str
    on_hand: int
    reserved: int
    available: int
    average_cost_fen: int = Field(description="value_fen / on_hand, rounded down")
    value_fen: int = Field(description="what the on-hand is worth, exactly to the fen")


class Stock(BaseModel):
    warehouse: Warehouse
    levels: list[StockLevel]


class SystemStatus(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["serving", "down"]
    services: dict[str, Literal["serving", "down"]]


class FieldProblem(BaseModel):
    field: str = Field(description='where, e.g. "device.imei", "rows[3].decision", "If-Match"')
    reason: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    down: list[Literal["database"]] = Field(description="what the gateway needs and lacks")


class Pong(BaseModel):
    ok: bool


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str = Field(description='"urn:aftersales:problem:<kind>", or "about:blank"')
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem]
