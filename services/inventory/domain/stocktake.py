"""Stocktake (盘点): a warehouse's parts counted against its book. Each difference becomes an
adjustment (盘盈 +, 盘亏 -) at the average cost when counted. Differences worth more than
APPROVAL_THRESHOLD_FEN in all wait for a manager's approval before they are posted; smaller
ones are posted at once."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from servicekit.errors import Conflict, invalid
from services.inventory.domain.stock import StockLevel

APPROVAL_THRESHOLD_FEN = 100_000  # one thousand yuan of differences
MAX_COUNT = 100_000
MAX_STOCKTAKE_LINES = 1000
STOCKTAKE_STATUSES = ("pending_approval", "posted", "rejected")


@dataclass(frozen=True)
class StocktakeLine:
    part_number: str
    book: int
    counted: int
    unit_cost_fen: int
    missing_serials: tuple[str, ...] = ()  # a serialised part: on the book, not counted
    found_serials: tuple[str, ...] = ()  # counted, not on the book

    @property
    def difference(self) -> int:
        return self.counted - self.book

    @property
    def units_changed(self) -> int:
        """Units the stocktake books: a serial missing and another found change two, though
        the count is the same."""
        return max(abs(self.difference), len(self.missing_serials) + len(self.found_serials))


@dataclass(frozen=True)
class Stocktake:
    id: str
    warehouse_id: str
    lines: tuple[StocktakeLine, ...]
    counted_by: str
    counted_at: datetime
    status: str = "pending_approval"
    decided_by: str | None = None
    decided_at: datetime | None = None

    @property
    def difference_value_fen(self) -> int:
        return sum(x.units_changed * x.unit_cost_fen for x in self.lines)

    @property
    def needs_approval(self) -> bool:
        return self.difference_value_fen > APPROVAL_THRESHOLD_FEN


def check_counts(counts: Sequence[tuple[str, int]]) -> None:
    if not counts:
        raise invalid("lines", "must not be empty")
    if len(counts) > MAX_STOCKTAKE_LINES:
        raise invalid("lines", f"at most {MAX_STOCKTAKE_LINES}")
    for i, (part_number, counted) in enumerate(counts):
        if not part_number:
            raise invalid(f"lines[{i}].part_number", "is required")
        if not 0 <= counted <= MAX_COUNT:
            raise invalid(f"lines[{i}].counted", f"must be 0 to {MAX_COUNT}")
    if len({p for p, _ in counts}) != len(counts):
        raise invalid("lines", "each part once")


def count(
    counts: Sequence[tuple[str, int]], book: Mapping[str, StockLevel]
) -> tuple[StocktakeLine, ...]:
    """The counted lines against the book levels, by part."""
    check_counts(counts)
    return tuple(
        StocktakeLine(part, book[part].on_hand, counted, book[part].average_cost_fen)
        for part, counted in counts
    )


def decide(stocktake: Stocktake, approve: bool, user_id: str, at: datetime) -> Stocktake:
    """A manager's decision on a stocktake waiting for approval; the same decision again
    changes nothing, another one is a conflict."""
    wanted = "posted" if approve else "rejected"
    if stocktake.status == wanted:
        return stocktake
    if stocktake.status != "pending_approval":
        raise Conflict(f"stocktake {stocktake.id} is already {stocktake.status}")
    return replace(stocktake, status=wanted, decided_by=user_id, decided_at=at)


def serial_findings(
    line: StocktakeLine, on_book: Collection[str], counted: Collection[str]
) -> StocktakeLine:
    """A serialised part counted serial by serial: the book's serials not found are missing,
    the counted ones the book does not have are found."""
    book = set(on_book)
    seen = set(counted)
    return replace(
        line,
        missing_serials=tuple(sorted(book - seen)),
        found_serials=tuple(sorted(seen - book)),
    )
