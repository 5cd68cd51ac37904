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
    "approved",  # 待维修: approvals in, parts reserved
    "waiting_parts",  # 待料
    "in_repair",  # 维修
    "quality_check",  # 质检
    "ready_for_pickup",  # 待取机
    "closed",  # 取机
    "cancelled",
    "declined",
    "sent_out",  # 送修: on its way to the partner store that repairs it
    "at_partner",  # with the partner store (its repair steps then run there)
    "returned_from_partner",  # sent back by the partner, on its way to the intake store
    "at_factory",  # 返厂: at the manufacturer's repair centre
)

REPEAT_REPAIR_DAYS = 90
"""A device back within this many days of a closed repair is a repeat repair (返修)."""


def is_repeat_repair(days_since_repair: int | None) -> bool:
    """Back within REPEAT_REPAIR_DAYS (Shanghai days, see warranty.days_since_repair) of a
    closed repair; None when the device had none."""
    return days_since_repair is not None and days_since_repair <= REPEAT_REPAIR_DAYS


@dataclass(frozen=True)
class TimelineEntry:
    """Who moved the order (user), when, where (store), why (note), by which step."""

    status: str
    at: datetime
    user_id: str
    store_id: str
    note: str = ""
    step: str = ""


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
    message_consent: bool = False  # agreed to service messages (SMS) at intake
    language: str = "zh-CN"  # of the customer's messages


@dataclass(frozen=True)
class PlannedPart:
    part_id: str
    quantity: int


@dataclass(frozen=True)
class Diagnosis:
    """检测: the manufacturer's codes (free codes until HQ keeps the tables), the plan, and the
    technician's warranty finding, which overrides intake's guess when given with a reason."""

    symptom_code: str
    fault_code: str
    cause_code: str
    actions: tuple[str, ...]
    parts: tuple[PlannedPart, ...]
    repair_level: str
    warranty_override: str = ""  # "" | in_warranty | out_of_warranty
    override_reason: str = ""


@dataclass(frozen=True)
class Quote:
    labour_fen: int
    parts_fen: int
    store_id: str = ""  # whose labour it is (where the work is done); "" the order's store

    @property
    def total_fen(self) -> int:
        return self.labour_fen + self.parts_fen


@dataclass
class PartLine:
    """A part the repair needs, and where it stands in the store's warehouse."""

    line_id: str
    part_id: str
    quantity: int
    warranty: bool
    reserved: int = 0
    issued: int = 0
    released: bool = False
    old_part_kept: bool = False  # 旧件: kept for return to the manufacturer
    retail_price_fen: int = 0  # each, from the catalog at diagnosis (or at a substitution)
    store_id: str = ""  # whose warehouse issues it (a partner's on a send-out); "" the order's
    serials: tuple[str, ...] = ()  # a serialised part's units it holds or took (串号)
    # 替代料: the line is short and its part superseded; inventory offers the part that
    # replaces it now, with how many of it the warehouse has available.
    successor_part_id: str = ""
    successor_available: int = 0

    @property
    def short(self) -> int:
        return max(self.quantity - self.reserved - self.issued, 0)


@dataclass(frozen=True)
class Payment:
    method: str
    amount_fen: int
    at: datetime


@dataclass(frozen=True)
class FactoryReturn:
    """返厂: shipped to the manufacturer's repair centre, and what came back."""

    carrier: str
    tracking_number: str
    shipped_at: datetime
    outcome: str = ""  # repaired | replaced | refused, once back
    new_imei: str = ""  # of the replacement, when replaced
    received_at: datetime | None = None


@dataclass(frozen=True)
class SwapUnit:
    """换机: the replacement unit handed over, and the faulty one owed to the manufacturer.
    With its part number, the unit is issued from swap stock by its IMEI (its serial there)."""

    imei: str
    part_id: str
    faulty_imei: str
    faulty_return_owed: bool = True


@dataclass
class Work:
    """What the steps after intake have recorded on the order."""

    diagnosis: Diagnosis | None = None
    quote: Quote | None = None
    customer_approved: bool = False
    manager_approval_required: bool = False
    manager_approved: bool = False
    lines: list[PartLine] = field(default_factory=list)
    actions_done: tuple[str, ...] = ()
    repair_level: str = ""
    qc_failures: int = 0
    payments: list[Payment] = field(default_factory=list)
    # 网点间送修: the store that repairs it, and whether the device is with it now.
    partner_branch_id: str = ""
    partner_store_id: str = ""
    at_partner: bool = False
    partner_repaired: bool = False
    factory: FactoryReturn | None = None
    swap: SwapUnit | None = None
    new_imei: str = ""  # the device's IMEI now, when a board, a factory or a swap changed it
    swap_offered: bool = False  # 三包: the policy's repair count of one fault reached
    swap_offer_reason: str = ""
    declined: bool = False
    inspection_fee_fen: int = 0  # 检测费, paid when a declined unit is picked up


@dataclass(frozen=True)
class OrderReceived:
    """The order was taken in (受理)."""


@dataclass(frozen=True)
class StepTaken:
    """A step of the lifecycle was taken: from which status to which, on the device's IMEI
    before the step, and the step's parts attempt at inventory's side (parts_step)."""

    step: str
    from_status: str
    to_status: str
    previous_imei: str
    parts_attempt: str


OrderEvent = OrderReceived | StepTaken


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
    # 返修: the repair of this device closed within REPEAT_REPAIR_DAYS that it came back from.
    repeat_of: str | None = None
    # 三包: in warranty and still waiting for parts on this day, the customer is owed a swap.
    parts_wait_swap_on: date | None = None
    request_id: str | None = None
    request_hash: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    # Each transition adds one: a change made on an older version is refused (412).
    version: int = 1
    work: Work = field(default_factory=Work)
    closed_at: datetime | None = None
    # Raised by the changes made since it was read; the unit of work sends them at commit.
    pending_events: list[OrderEvent] = field(default_factory=list, compare=False, repr=False)

    def taken_in(self) -> RepairOrder:
        """This new order, as taken in at intake, with its arrival recorded to announce."""
        self.pending_events.append(OrderReceived())
        return self

    def step_taken(
        self, step: str, from_status: str, previous_imei: str, parts_attempt: str, claimed: bool
    ) -> None:
        """Record a step taken on this order. A step that leaves the status where it was is
        no change to tell the customer; inventory still hears of it when its parts attempt
        claimed parts, so the attempt is known as written."""
        if self.status != from_status or claimed:
            self.pending_events.append(
                StepTaken(step, from_status, self.status, previous_imei, parts_attempt)
            )

    @property
    def current_imei(self) -> str:
        return self.work.new_imei or self.intake.imei

    @property
    def holder_store_id(self) -> str:
        """The store that has the device (and does its repair steps) now."""
        return self.work.partner_store_id if self.work.at_partner else self.store_id

    def store_ids(self) -> tuple[str, ...]:
        return (
            (self.store_id, self.work.partner_store_id)
            if self.work.partner_store_id
            else (self.store_id,)
        )


def order_number(store_id: str, day: date, sequence: int) -> str:
    """`SH-001-261126-0007`: the store, the Shanghai day and the day's running number."""
    return f"{store_id}-{day:%y%m%d}-{sequence:04d}"
