"""Transfers (调拨) between warehouses: requested, approved by the branch (by both branches when
it crosses them), shipped, received, or cancelled before shipping.

Shipping takes the stock out of the sender with its share of the sender's value and puts it in
transit at that value; receiving brings it into the receiver at that same value, which moves
the receiver's average. The cost travels with the goods in one step. Units that never arrived
(short) or arrived unusable (damaged) are recorded on the line as discrepancies and written off
at the receiver in the same step, by an adjustment with their share of the transfer's value,
so in transit returns to zero and the ledger still explains every unit and every fen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.errors import Conflict, Forbidden, invalid
from services.inventory.domain.stock import (
    Movement,
    Posting,
    StockLevel,
    movement,
    receive_value,
    valued,
    withdraw,
)

TRANSFER_STATUSES = ("requested", "approved", "shipped", "received", "cancelled")
MAX_TRANSFER_QUANTITY = 10_000
MAX_TRANSFER_LINES = 100


@dataclass(frozen=True)
class TransferLine:
    part_number: str
    quantity: int
    unit_cost_fen: int = 0  # the sender's average, per unit, shown to people
    received: int = 0
    short: int = 0
    damaged: int = 0
    value_fen: int = 0  # exactly what the shipped units took from the sender: in transit
    serials: tuple[str, ...] = ()  # a serialised part's units, named
    short_serials: tuple[str, ...] = ()  # of those, the ones that never arrived
    damaged_serials: tuple[str, ...] = ()  # and the ones that arrived unusable


@dataclass(frozen=True)
class Transfer:
    id: str
    from_warehouse_id: str
    from_branch_id: str
    to_warehouse_id: str
    to_branch_id: str
    lines: tuple[TransferLine, ...]
    requested_by: str
    requested_at: datetime
    note: str = ""
    status: str = "requested"
    approved_branches: tuple[str, ...] = ()
    shipped_at: datetime | None = None
    received_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def branches(self) -> tuple[str, ...]:
        """Whose approval it needs: the sender's branch, and the receiver's when it differs."""
        if self.from_branch_id == self.to_branch_id:
            return (self.from_branch_id,)
        return (self.from_branch_id, self.to_branch_id)

    @property
    def pending_branches(self) -> tuple[str, ...]:
        return tuple(b for b in self.branches if b not in self.approved_branches)

    @property
    def in_transit(self) -> dict[str, int]:
        """Units on their way, per part."""
        if self.status != "shipped":
            return {}
        return {x.part_number: x.quantity for x in self.lines}


def check_lines(lines: list[tuple[str, int]]) -> tuple[TransferLine, ...]:
    """The lines of a new transfer: at least one, each part once, whole positive quantities."""
    if not lines:
        raise invalid("lines", "must not be empty")
    if len(lines) > MAX_TRANSFER_LINES:
        raise invalid("lines", f"at most {MAX_TRANSFER_LINES}")
    for i, (part_number, quantity) in enumerate(lines):
        if not part_number:
            raise invalid(f"lines[{i}].part_number", "is required")
        if not 0 < quantity <= MAX_TRANSFER_QUANTITY:
            raise invalid(f"lines[{i}].quantity", f"must be 1 to {MAX_TRANSFER_QUANTITY}")
    if len({p for p, _ in lines}) != len(lines):
        raise invalid("lines", "each part once")
    return tuple(TransferLine(p, q) for p, q in lines)


def approve(transfer: Transfer, approver_branch_id: str | None) -> Transfer:
    """The branch's approval (审批). A branch manager approves for their branch; HQ
    (`approver_branch_id` None) for every branch still pending. Approving again changes
    nothing."""
    if transfer.status not in ("requested", "approved"):
        raise Conflict(f"transfer {transfer.id} is {transfer.status}")
    if approver_branch_id is None:
        granted = transfer.pending_branches
    elif approver_branch_id in transfer.branches:
        granted = (approver_branch_id,) if approver_branch_id in transfer.pending_branches else ()
    else:
        raise Forbidden(f"transfer {transfer.id} is not your branch's to approve")
    approved = (*transfer.approved_branches, *granted)
    done = all(b in approved for b in transfer.branches)
    return replace(transfer, approved_branches=approved, status="approved" if done else "requested")


def ship(
    transfer: Transfer, levels: Mapping[str, StockLevel], posting: Posting
) -> tuple[Transfer, dict[str, StockLevel], list[tuple[Movement, StockLevel]]]:
    """发货: each line leaves the sender's available stock at its average cost (a ledger
    "transfer_out") and is in transit at that cost. `levels` are the sender's, by part."""
    if transfer.status == "shipped":
        return transfer, dict(levels), []
    if transfer.status != "approved":
        pending = ", ".join(transfer.pending_branches)
        reason = f"awaits approval by {pending}" if pending else f"is {transfer.status}"
        raise Conflict(f"transfer {transfer.id} {reason}")
    after = dict(levels)
    booked, lines = [], []
    for line in transfer.lines:
        level = after[line.part_number]
        cost = level.average_cost_fen
        after[line.part_number], value = withdraw(level, line.quantity)
        out = movement(
            after[line.part_number], "transfer_out", -line.quantity, cost, posting, -value
        )
        booked.append((out, after[line.part_number]))
        lines.append(replace(line, unit_cost_fen=cost, value_fen=value))
    shipped = replace(
        transfer, status="shipped", lines=tuple(lines), shipped_at=posting.occurred_at
    )
    return shipped, after, booked


def receive_goods(
    transfer: Transfer,
    levels: Mapping[str, StockLevel],
    discrepancies: Mapping[str, tuple[int, int]],
    posting: Posting,
) -> tuple[Transfer, dict[str, StockLevel], list[tuple[Movement, StockLevel]]]:
    """收货: every shipped unit enters the receiver at the transfer's cost (a "transfer_in");
    the short and damaged ones, by part in `discrepancies` as (short, damaged), are written
    off at that same cost by an adjustment, so the receiver's average moves by the good units
    only. `levels` are the receiver's, by part."""
    if transfer.status == "received":
        return transfer, dict(levels), []
    if transfer.status != "shipped":
        raise Conflict(f"transfer {transfer.id} is {transfer.status}, not shipped")
    parts = {x.part_number for x in transfer.lines}
    for part_number, (short, damaged) in discrepancies.items():
        if part_number not in parts:
            raise invalid("discrepancies", f"part {part_number} is not on the transfer")
        if short < 0 or damaged < 0:
            raise invalid("discrepancies", "short and damaged must not be negative")
    after = dict(levels)
    booked, lines = [], []
    for line in transfer.lines:
        short, damaged = discrepancies.get(line.part_number, (0, 0))
        missing = short + damaged
        if missing > line.quantity:
            raise invalid(
                "discrepancies", f"{missing} of part {line.part_number} missing of {line.quantity}"
            )
        level = after[line.part_number]
        good = line.quantity - missing
        # All units arrive at what they left the sender at; the missing ones are written off
        # with their share of it, so the receiver's value and average move by the good only.
        arrived = receive_value(level, line.quantity, line.value_fen)
        booked.append(
            (
                movement(
                    arrived,
                    "transfer_in",
                    line.quantity,
                    line.unit_cost_fen,
                    posting,
                    line.value_fen,
                ),
                arrived,
            )
        )
        lost = line.value_fen * missing // line.quantity
        kept = valued(arrived, level.on_hand + good, arrived.value_fen - lost)
        if missing:
            booked.append(
                (
                    movement(kept, "adjustment", -missing, line.unit_cost_fen, posting, -lost),
                    kept,
                )
            )
        after[line.part_number] = kept
        lines.append(replace(line, received=good, short=short, damaged=damaged))
    received = replace(
        transfer, status="received", lines=tuple(lines), received_at=posting.occurred_at
    )
    return received, after, booked


def cancel(transfer: Transfer, at: datetime) -> Transfer:
    """A transfer not yet shipped can be called off; cancelling again changes nothing."""
    if transfer.status == "cancelled":
        return transfer
    if transfer.status not in ("requested", "approved"):
        raise Conflict(f"transfer {transfer.id} is {transfer.status}: too late to cancel")
    return replace(transfer, status="cancelled", cancelled_at=at)
