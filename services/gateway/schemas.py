"""The REST contract the frontends rely on: request shapes (checked here for shape only; the
services judge the content) and response shapes (for the OpenAPI document)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from servicekit.errors import invalid

Short = Annotated[str, StringConstraints(max_length=50)]
Name = Annotated[str, StringConstraints(max_length=200)]
Note = Annotated[str, StringConstraints(max_length=500)]
Text = Annotated[str, StringConstraints(max_length=2000)]


def check_day(field: str, value: str | None) -> str:
    """A YYYY-MM-DD query value, or "" when absent."""
    if not value:
        return ""
    try:
        # fromisoformat alone would also take the basic form 20240101.
        valid = len(value) == 10 and date.fromisoformat(value) is not None
    except ValueError:
        valid = False
    if not valid:
        raise invalid(field, "must be a date YYYY-MM-DD")
    return value


# Requests


class CustomerIn(BaseModel):
    name: Name
    phone: Short


class DeviceIn(BaseModel):
    imei: Short
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
    at: str | None
    user_id: str
    store_id: str | None
    note: str | None


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
    accessories: str | None
    appearance: str | None
    promised_date: str | None
    received_at: str | None
    received_at_local: str | None
    created_by: str
    timeline: list[TimelineEntry]


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
    average_cost_fen: int


class Stock(BaseModel):
    warehouse: Warehouse
    levels: list[StockLevel]


class StoreKpis(BaseModel):
    branch_id: str
    store_id: str
    orders_received: int


class ServiceTypeKpis(BaseModel):
    service_type: str
    orders_received: int


class Kpis(BaseModel):
    branch_id: str | None
    store_id: str | None
    date_from: str
    date_to: str
    orders_received: int
    by_store: list[StoreKpis]
    by_service_type: list[ServiceTypeKpis]


class SystemStatus(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["serving", "down"]
    services: dict[str, Literal["serving", "down"]]


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, str]]
