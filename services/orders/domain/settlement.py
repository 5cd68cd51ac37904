"""Manufacturer settlement (劳务费结算) as rules: which closed repairs a manufacturer owes for, what
each line claims, a claim's statuses, the manufacturer's decision file and the payments
received. Pure: no I/O, every moment and price handed in.

A claim is one manufacturer's, one branch's, one Asia/Shanghai month's (the month its repairs
closed in): built -> submitted -> decided -> paid. Submitted, it takes no more repairs: those of
its month closed after go into a supplementary claim of the month (补充索赔), numbered 1, 2...
Each line is one order: the labour fee of its repair level from the manufacturer's price list,
and its warranty part lines reimbursed at the catalog price the order recorded for them (orders
knows the price, not inventory's cost; it is also what the manufacturer's own price list for
parts is set against). A line whose old parts
(旧件) are not all back is `held`: it may be claimed and decided, but not paid until they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, FieldError, InvalidInput, NotFound, invalid
from servicekit.identifiers import normalise_digits
from servicekit.timeutil import (
    SHANGHAI,
    day_problem,
    parse_day,
    shanghai_day,
    shanghai_day_start_utc,
)
from services.orders.domain.order import RepairOrder
from services.orders.domain.warranty import IN_WARRANTY

CLAIM_STATUSES = ("built", "submitted", "decided", "paid")
LINE_STATES = ("held", "claimed", "accepted", "rejected", "paid")
DECISIONS = ("accepted", "rejected")

WRITERS = ("branch_manager", "hq_admin")
"""Who builds, submits, enters the decisions and records payments: a branch manager for their
branch, HQ's admin for any."""
READERS = (*WRITERS, "hq_analyst")

DECISION_COLUMNS = ("order_number", "decision", "reason_code", "amount_fen")
"""The manufacturer's decision file: a header row with these columns (any order, no others)."""
MAX_DECISION_ROWS = 20_000
_REASON_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MAX_FEN = 10_000_000_000  # a hundred million yuan: a claim's payment above it is a typing error


@dataclass(frozen=True)
class ClaimPart:
    """A warranty part line the manufacturer reimburses, and the old parts it owes back."""

    line_id: str
    part_id: str
    quantity: int
    unit_price_fen: int

    @property
    def amount_fen(self) -> int:
        return self.quantity * self.unit_price_fen


@dataclass
class ClaimLine:
    order_id: str
    number: str
    store_id: str
    repair_level: str
    labour_fen: int
    closed_at: datetime
    parts: tuple[ClaimPart, ...] = ()
    old_parts_owed: int = 0
    decision: str = ""  # accepted | rejected, once the manufacturer's file says so
    reason_code: str = ""
    accepted_fen: int = 0
    paid: bool = False

    @property
    def parts_fen(self) -> int:
        return sum(p.amount_fen for p in self.parts)

    @property
    def claimed_fen(self) -> int:
        return self.labour_fen + self.parts_fen

    @property
    def held(self) -> bool:
        return self.old_parts_owed > 0

    @property
    def state(self) -> str:
        if self.decision == "rejected":
            return "rejected"
        if self.paid:
            return "paid"
        if self.held:
            return "held"
        return "accepted" if self.decision == "accepted" else "claimed"


@dataclass(frozen=True)
class ClaimPayment:
    amount_fen: int
    paid_on: date
    recorded_by: str
    recorded_at: datetime
    request_id: str = ""


@dataclass(frozen=True)
class ClaimChanged:
    """The claim was built, brought up to date, submitted, decided or paid, or its lines' old
    parts came back: announced with every line as it now stands."""


@dataclass(frozen=True)
class LineDecision:
    order_number: str
    decision: str
    reason_code: str
    amount_fen: int


@dataclass
class Claim:
    id: str
    manufacturer: str
    branch_id: str
    month: str
    built_by: str
    built_at: datetime
    supplement: int = 0  # the month's first claim; 1, 2... its supplementary ones (补充索赔)
    status: str = "built"
    version: int = 1
    lines: list[ClaimLine] = field(default_factory=list)
    payments: list[ClaimPayment] = field(default_factory=list)
    decision_fingerprint: str = ""
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    paid_at: datetime | None = None
    pending_events: list[ClaimChanged] = field(default_factory=list, compare=False, repr=False)

    @property
    def claimed_fen(self) -> int:
        return sum(x.claimed_fen for x in self.lines)

    @property
    def accepted_fen(self) -> int:
        return sum(x.accepted_fen for x in self.lines if x.decision == "accepted")

    @property
    def paid_fen(self) -> int:
        return sum(p.amount_fen for p in self.payments)

    @property
    def held_fen(self) -> int:
        """What waits for old parts: accepted amounts once decided, claimed ones before."""
        return sum(
            x.accepted_fen if x.decision else x.claimed_fen
            for x in self.lines
            if x.held and x.decision != "rejected"
        )

    @property
    def payable_fen(self) -> int:
        """The receivable now: accepted lines with their old parts back, less what was paid."""
        ready = sum(x.accepted_fen for x in self.lines if x.decision == "accepted" and not x.held)
        return max(ready - self.paid_fen, 0)

    def changed(self) -> None:
        self.version += 1
        self.pending_events.append(ClaimChanged())

    def add_lines(self, lines: Iterable[ClaimLine]) -> bool:
        """A claim still `built` takes the repairs closed since it was built; True when any."""
        new = list(lines)
        if self.status != "built" or not new:
            return False
        self.lines.extend(new)
        self.lines.sort(key=lambda x: (x.closed_at, x.number))
        self.changed()
        return True

    def submit(self, now: datetime) -> None:
        _expect_status(self, "built", "submitted")
        if not self.lines:
            raise Conflict("the claim has no lines to submit")
        self.status = "submitted"
        self.submitted_at = now
        self.changed()

    def decide(self, decisions: Sequence[LineDecision], fingerprint: str, now: datetime) -> bool:
        """The manufacturer's file, checked whole by `parse_decisions`. The same file again
        changes nothing (False); another file after one was taken is a conflict."""
        if self.decision_fingerprint:
            if fingerprint == self.decision_fingerprint:
                return False
            raise Conflict("the claim was decided by another file already")
        _expect_status(self, "submitted", "decided")
        by_number = {d.order_number: d for d in decisions}
        for line in self.lines:
            d = by_number[line.number]
            line.decision = d.decision
            line.reason_code = d.reason_code
            line.accepted_fen = d.amount_fen if d.decision == "accepted" else 0
        self.status = "decided"
        self.decided_at = now
        self.decision_fingerprint = fingerprint
        self._paid_if_settled(now)
        self.changed()
        return True

    def record_payment(self, payment: ClaimPayment) -> None:
        _expect_status(self, "decided", "paid")
        if payment.amount_fen <= 0:
            raise invalid("amount_fen", "must be more than 0")
        if payment.amount_fen > self.payable_fen:
            waiting = f"; {self.held_fen} fen wait for old parts" if self.held_fen else ""
            raise invalid("amount_fen", f"at most {self.payable_fen} fen is payable now{waiting}")
        if payment.paid_on > shanghai_day(payment.recorded_at):
            raise invalid("paid_on", "must not be after today")
        self.payments.append(payment)
        self._paid_if_settled(payment.recorded_at)
        self.changed()

    def old_parts_returned(self, owed: Mapping[str, int]) -> bool:
        """The old parts still owed per order, after a return: True when any line changed."""
        moved = False
        for line in self.lines:
            if line.order_id in owed and owed[line.order_id] != line.old_parts_owed:
                line.old_parts_owed = owed[line.order_id]
                moved = True
        if moved:
            if self.status == "decided":
                self._paid_if_settled(None)
            self.changed()
        return moved

    def _paid_if_settled(self, now: datetime | None) -> None:
        """Paid in full: every accepted line is back and paid for, and something was accepted
        (a claim rejected whole stays decided: nothing is owed on it)."""
        accepted = [x for x in self.lines if x.decision == "accepted"]
        if not accepted or any(x.held for x in accepted):
            return
        if self.paid_fen < sum(x.accepted_fen for x in accepted):
            return
        for line in accepted:
            line.paid = True
        self.status = "paid"
        self.paid_at = now or (self.payments[-1].recorded_at if self.payments else None)


def _expect_status(claim: Claim, status: str, to: str) -> None:
    if claim.status != status:
        raise Conflict(f"a claim {claim.status} cannot become {to}; only a {status} one")


def check_reader(auth: AuthContext, branch_id: str) -> None:
    require_role(auth, READERS)
    if not auth.covers(branch_id):
        raise NotFound("no such claim in your scope")


def check_writer(auth: AuthContext, branch_id: str) -> None:
    require_role(auth, WRITERS)
    if not auth.covers(branch_id):
        raise NotFound("no such branch in your scope")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC moments a Shanghai month `YYYY-MM` starts and ends (the next one's start)."""
    found = _MONTH.match(month)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise invalid("month", "must be a month as YYYY-MM")
    year, number = int(found.group(1)), int(found.group(2))
    first = date(year, number, 1)
    if problem := day_problem(first):
        raise invalid("month", problem)
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return shanghai_day_start_utc(first), shanghai_day_start_utc(following)


def check_month_begun(month: str, now: datetime) -> None:
    """A month to come has no closed repairs yet: building it is a typing error."""
    start, _ = month_bounds(month)
    if start > now:
        raise invalid("month", "must not be a month to come")


def claimable(order: RepairOrder, manufacturer: str) -> bool:
    """A repair the manufacturer pays for: closed, under its warranty, at a store it authorised
    (or repaired by one, 送修), not declined. The month is the caller's query."""
    return (
        order.status == "closed"
        and order.intake.brand == manufacturer
        and order.intake.service_type == "repair"
        and order.warranty.status == IN_WARRANTY
        and (order.brand_authorised or order.work.partner_repaired)
        and not order.work.declined
        and order.closed_at is not None
    )


def claim_line(
    order: RepairOrder, labour_prices: Mapping[str, int], returned: Mapping[str, int]
) -> ClaimLine:
    """An order's line: `labour_prices` by repair level (a level without a price claims no
    labour), `returned` the old parts back so far by the order's part line id."""
    parts = tuple(
        ClaimPart(line.line_id, line.part_id, line.issued, line.retail_price_fen)
        for line in order.work.lines
        if line.warranty and line.issued > 0 and not line.released
    )
    level = order.work.repair_level
    assert order.closed_at is not None  # claimable
    return ClaimLine(
        order_id=order.id,
        number=order.number,
        store_id=order.work.partner_store_id if order.work.partner_repaired else order.store_id,
        repair_level=level,
        labour_fen=labour_prices.get(level, 0),
        closed_at=order.closed_at,
        parts=parts,
        old_parts_owed=old_parts_owed(parts, returned),
    )


def old_parts_owed(parts: Iterable[ClaimPart], returned: Mapping[str, int]) -> int:
    return sum(max(p.quantity - returned.get(p.line_id, 0), 0) for p in parts)


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def parse_decisions(content: bytes, claim: Claim) -> list[LineDecision]:
    """The manufacturer's decision file, every row checked against the claim: a bad row is named
    as `rows[N].<column>` (N the file's line number, the header being line 1), and any error
    refuses the whole file. Every line of the claim must be decided, once."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("file", "must be UTF-8 text") from None
    if "\x00" in text:
        raise invalid("file", "must not contain NUL characters")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise invalid("file", f"is not CSV: {error}") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise invalid("header", f"must name the columns {', '.join(DECISION_COLUMNS)}")
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [c for c in DECISION_COLUMNS if c not in header]
    unknown = [c for c in header if c not in DECISION_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        reason = f"must name each of {', '.join(DECISION_COLUMNS)} once and no other column"
        raise invalid("header", reason)
    if len(rows) - 1 > MAX_DECISION_ROWS:
        raise invalid("file", f"at most {MAX_DECISION_ROWS} rows")
    at = {name: header.index(name) for name in DECISION_COLUMNS}
    lines = {x.number: x for x in claim.lines}
    errors: list[FieldError] = []
    decisions: list[LineDecision] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line, as spreadsheets leave at the end
        if len(row) != len(header):
            errors.append(FieldError(f"rows[{number}]", f"has {len(row)} cells, not {len(header)}"))
            continue
        row_errors, decision = _row(number, [row[at[c]].strip() for c in DECISION_COLUMNS], lines)
        errors.extend(row_errors)
        if decision is None:
            continue
        if decision.order_number in seen:
            errors.append(
                FieldError(
                    f"rows[{number}].order_number",
                    f"decided already in row {seen[decision.order_number]}",
                )
            )
            continue
        seen[decision.order_number] = number
        decisions.append(decision)
    if not errors:
        errors = [
            FieldError("rows", f"order {line.number} of the claim has no row")
            for line in claim.lines
            if line.number not in seen
        ]
    if errors:
        raise InvalidInput("the decision file has errors; nothing was recorded", errors)
    return decisions


def _row(
    number: int, cells: list[str], lines: Mapping[str, ClaimLine]
) -> tuple[list[FieldError], LineDecision | None]:
    order_number, decision, reason_code, amount = cells
    name = f"rows[{number}]"
    errors: list[FieldError] = []
    line = lines.get(order_number)
    if line is None:
        errors.append(FieldError(f"{name}.order_number", f"{order_number!r} is not in the claim"))
    decision = decision.lower()
    if decision not in DECISIONS:
        errors.append(FieldError(f"{name}.decision", f"must be one of {', '.join(DECISIONS)}"))
    if reason_code and not _REASON_CODE.match(reason_code):
        errors.append(
            FieldError(f"{name}.reason_code", "must be 1 to 30 letters, digits, '-', '_' or '.'")
        )
    if decision == "rejected" and not reason_code:
        errors.append(FieldError(f"{name}.reason_code", "is required for a rejected line"))
    digits = normalise_digits(amount)
    fen = 0
    if digits and not (digits.isascii() and digits.isdigit() and len(digits) <= 12):
        errors.append(FieldError(f"{name}.amount_fen", "must be a whole number of fen"))
    elif digits:
        fen = int(digits)
        if decision == "rejected" and fen:
            errors.append(FieldError(f"{name}.amount_fen", "must be empty or 0 when rejected"))
        if line is not None and decision == "accepted" and fen > line.claimed_fen:
            errors.append(
                FieldError(f"{name}.amount_fen", f"must be at most the {line.claimed_fen} claimed")
            )
    elif decision == "accepted" and line is not None:
        fen = line.claimed_fen  # accepted as claimed
    if errors or line is None:
        return errors, None
    return [], LineDecision(order_number, decision, reason_code, fen)


def parse_paid_on(text: str) -> date:
    try:
        return parse_day(text)
    except ValueError as error:
        raise invalid("paid_on", str(error)) from None


def month_of(moment: datetime) -> str:
    return f"{moment.astimezone(SHANGHAI):%Y-%m}"
