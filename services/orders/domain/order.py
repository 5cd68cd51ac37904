"""A work order (维修工单) as the business sees it: what it is, its statuses and service types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.orders.domain.warranty import WarrantyDecision

SERVICE_TYPES = ("repair", "swap", "accessory", "software")
"""维修, 换机, 附件更换, 刷机/升级; return to factory (返厂) is a route of a repair."""

STATUSES = (
    "received",  # 受理
    "diagnosed",  # 检测
    "awaiting_approval",
    "waiting_parts",
    "in_repair",  # 维修
    "quality_check",  # 质检
    "ready_for_pickup",  # 待取机
    "closed",  # 取机
    "cancelled",
    "declined",
)

REPEAT_REPAIR_DAYS = 90
"""A device back within this many days of a closed repair is a repeat repair (返修)."""


@dataclass(frozen=True)
class TimelineEntry:
    status: str
    at: datetime
    user_id: str
    store_id: str
    note: str = ""


@dataclass(frozen=True)
class Intake:
    """A validated intake form (受理单)."""

    customer_name: str
    customer_phone: str
    imei: str
    brand: str
    model: str
    colour: str
    purchase_date: date | None
    fault_description: str
    symptom_code: str
    service_type: str
    accessories: str
    appearance: str
    promised_date: date | None


@dataclass
class RepairOrder:
    id: str
    number: str
    status: str
    branch_id: str
    store_id: str
    intake: Intake
    warranty: WarrantyDecision
    brand_authorised: bool
    repeat_repair: bool
    received_at: datetime
    created_by: str
    request_id: str | None = None
    request_hash: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)


def order_number(store_id: str, day: date, sequence: int) -> str:
    """`SH-001-261126-0007`: the store, the Shanghai day and the day's running number."""
    return f"{store_id}-{day:%y%m%d}-{sequence:04d}"
