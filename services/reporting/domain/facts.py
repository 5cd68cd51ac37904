"""The order fact (工单事实): one row per work order, all the report centre needs of it, built
from the order's events in whatever order and however often they arrive.

Three kinds of column, each with its own guard, so applying events is commutative and
idempotent:
- the order's state (placement, status, amounts): from the event with the highest order
  version only (intake is version 1, each step one more);
- milestones (ready, closed, cancelled, declined, first wait for parts): the earliest time a
  step into that status was seen, whatever order the steps arrive in;
- follow-up (回访) and settlement (结算) columns, from other streams: guarded by the follow-up's
  attempt and the claim's version.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from servicekit.timeutil import shanghai_day

INTAKE_VERSION = 1
"""The version an order has when taken in (orders' RepairOrder.version); each step adds one."""

WORK_STEPS = frozenset({"repair/finish", "swap", "complete"})
"""Steps that finish the work on the device: their actor is the order's technician."""

IN_WARRANTY = "in_warranty"

CLAIMED_STATES = frozenset({"claimed", "accepted", "rejected", "paid"})
ACCEPTED_STATES = frozenset({"accepted", "paid"})
"""A claim line's states counted as claimed and accepted; `held` (old part not yet returned) is
not claimed yet."""


@dataclass(frozen=True)
class OrderStep:
    """What one order event says, in the report centre's words: OrderReceived is the step
    `intake` to `received` at version 1, at the intake time."""

    order_id: str
    number: str
    branch_id: str
    store_id: str
    service_type: str
    brand: str
    warranty_status: str
    received_at: datetime | None  # None: an event from before the contract carried it
    promised_date: date | None
    repeat_repair: bool
    repeat_of_order_id: str
    step: str
    to_status: str
    version: int
    occurred_at: datetime
    actor: str = ""
    repair_level: str = ""
    qc_failures: int = 0
    paid_fen: int = 0
    quote_total_fen: int = 0


@dataclass(frozen=True)
class OrderFact:
    order_id: str
    number: str = ""
    branch_id: str = ""
    store_id: str = ""
    service_type: str = ""
    brand: str = ""
    warranty_status: str = ""
    received_at: datetime | None = None
    promised_date: date | None = None
    repeat_repair: bool = False
    repeat_of_order_id: str = ""
    repair_level: str = ""
    qc_failures: int = 0
    paid_fen: int = 0
    quote_total_fen: int = 0
    status: str = ""
    version: int = 0  # 0: no order event seen yet (a follow-up or claim came first)
    ready_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    declined_at: datetime | None = None
    waiting_parts_at: datetime | None = None
    technician_id: str = ""
    technician_version: int = 0
    worked_at: datetime | None = None
    came_back_as: str = ""  # the repeat repair (返修) this order's device came back as
    follow_up_attempt: int = 0
    follow_up_state: str = ""
    satisfaction: int = 0  # 1..5 once a call reached the customer
    claim_id: str = ""
    claim_version: int = 0
    claim_month: str = ""
    claim_state: str = ""
    claim_labour_fen: int = 0

    @property
    def placed(self) -> bool:
        """Known well enough to count: its store and intake time."""
        return bool(self.branch_id and self.store_id and self.received_at)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.cancelled_at is None

    @property
    def repaired(self) -> bool:
        """Closed with the work done: not a declined unit returned unrepaired."""
        return self.closed_at is not None and self.declined_at is None

    @property
    def followed_up(self) -> bool:
        return self.follow_up_state == "done" and self.satisfaction > 0

    @property
    def on_time(self) -> bool | None:
        """Ready on or before the promised Shanghai day; None when not ready or not promised."""
        if self.ready_at is None or self.promised_date is None:
            return None
        return shanghai_day(self.ready_at) <= self.promised_date

    @property
    def turnaround_seconds(self) -> int | None:
        """Intake → ready for the customer (周转时间)."""
        if self.ready_at is None or self.received_at is None:
            return None
        return max(int((self.ready_at - self.received_at).total_seconds()), 0)


def _earliest(known: datetime | None, seen: datetime) -> datetime:
    return seen if known is None or seen < known else known


def apply_step(fact: OrderFact, step: OrderStep) -> OrderFact:
    """The fact after one order event: state only from a newer version, milestones always."""
    changes: dict[str, object] = {}
    if step.version > fact.version:
        if step.received_at is not None:
            changes.update(
                brand=step.brand,
                received_at=step.received_at,
                promised_date=step.promised_date,
                repeat_repair=step.repeat_repair,
                repeat_of_order_id=step.repeat_of_order_id,
            )
        changes.update(
            number=step.number,
            branch_id=step.branch_id,
            store_id=step.store_id,
            service_type=step.service_type,
            warranty_status=step.warranty_status,
            repair_level=step.repair_level,
            qc_failures=step.qc_failures,
            paid_fen=step.paid_fen,
            quote_total_fen=step.quote_total_fen,
            status=step.to_status,
            version=step.version,
        )
    at = step.occurred_at
    # A quick order (complete) is ready the moment it is done and closed.
    if step.to_status == "ready_for_pickup" or step.step == "complete":
        changes["ready_at"] = _earliest(fact.ready_at, at)
    milestone = {
        "closed": "closed_at",
        "cancelled": "cancelled_at",
        "declined": "declined_at",
        "waiting_parts": "waiting_parts_at",
    }.get(step.to_status)
    if milestone:
        changes[milestone] = _earliest(getattr(fact, milestone), at)
    if step.step in WORK_STEPS and step.version > fact.technician_version:
        changes.update(technician_id=step.actor, technician_version=step.version, worked_at=at)
    return replace(fact, **changes)  # type: ignore[arg-type]


def came_back(fact: OrderFact, repeat_order_id: str) -> OrderFact:
    """The order's device came back as a repeat repair: the earliest-named repeat is kept, so
    any order of the repeats' events gives the same fact."""
    if fact.came_back_as and fact.came_back_as <= repeat_order_id:
        return fact
    return replace(fact, came_back_as=repeat_order_id)


def apply_follow_up(fact: OrderFact, attempt: int, state: str, score: int) -> OrderFact:
    """回访: a call attempt; a later attempt overrides an earlier one, never the reverse."""
    if attempt <= fact.follow_up_attempt:
        return fact
    return replace(fact, follow_up_attempt=attempt, follow_up_state=state, satisfaction=score)


def apply_claim_line(
    fact: OrderFact, claim_id: str, version: int, month: str, state: str, labour_fen: int
) -> OrderFact:
    """The order's line of a manufacturer's claim as it stands (state "" and 0: the line left
    the claim). A newer version of the same claim replaces it; a claim of a later month (a line
    claimed again after a rejection) replaces an earlier claim's."""
    if claim_id == fact.claim_id:
        if version <= fact.claim_version:
            return fact
    elif (month, claim_id) < (fact.claim_month, fact.claim_id):
        return fact
    return replace(
        fact,
        claim_id=claim_id,
        claim_version=version,
        claim_month=month,
        claim_state=state,
        claim_labour_fen=labour_fen,
    )
