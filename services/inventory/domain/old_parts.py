"""Old-part returns (旧件返还): a warranty repair that consumed a new part owes the manufacturer
the old one. The store sends old parts back in batches, each batch line naming the order line
it settles, so what is owed is always known line by line, and a line overdue after
OLD_PART_DUE_DAYS is listed as such. Days are Shanghai days: the old part is due on the
OLD_PART_DUE_DAYS-th day after the issue's, and overdue once that day is over."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.errors import invalid
from servicekit.timeutil import shanghai_day_start_after
from services.inventory.domain.order_parts import OrderPartLine

OLD_PART_DUE_DAYS = 30
MAX_BATCH_LINES = 500


@dataclass(frozen=True)
class OldPartLine:
    order_id: str
    line_id: str
    quantity: int


def due_at(line: OrderPartLine) -> datetime | None:
    """The start of the day the old part is due (its whole day to send it)."""
    if line.issued_at is None:
        return None
    return shanghai_day_start_after(line.issued_at, OLD_PART_DUE_DAYS)


def overdue(line: OrderPartLine, now: datetime) -> bool:
    due = due_at(line)
    return line.old_parts_owed > 0 and due is not None and due < shanghai_day_start_after(now, 0)


def match(
    batch: Sequence[OldPartLine], owed: Mapping[tuple[str, str], OrderPartLine]
) -> list[OrderPartLine]:
    """Match a batch line by line to the order lines that owe old parts: each names a line of
    this warehouse that owes at least that many. The order lines as they are after it."""
    if not batch:
        raise invalid("lines", "must not be empty")
    if len(batch) > MAX_BATCH_LINES:
        raise invalid("lines", f"at most {MAX_BATCH_LINES}")
    keys = [(x.order_id, x.line_id) for x in batch]
    if len(set(keys)) != len(keys):
        raise invalid("lines", "each order line once")
    settled = []
    for i, (key, item) in enumerate(zip(keys, batch, strict=True)):
        line = owed.get(key)
        if line is None or line.old_parts_owed <= 0:
            raise invalid(
                f"lines[{i}]", f"line {item.line_id} of order {item.order_id} owes no old part here"
            )
        if not 0 < item.quantity <= line.old_parts_owed:
            raise invalid(
                f"lines[{i}].quantity", f"must be 1 to {line.old_parts_owed}, what it owes"
            )
        settled.append(replace(line, old_returned=line.old_returned + item.quantity))
    return settled
