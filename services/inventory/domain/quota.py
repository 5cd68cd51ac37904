"""Franchise quota (额度): a franchised store holds parts on its platform's credit. The value it
holds, plus what is in transit to it, plus the old parts it owes the manufacturer, must stay
within the quota its branch sets; a movement that would take it over is refused with the
figures."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.errors import Conflict, invalid

MAX_QUOTA_FEN = 10_000_000_000  # a hundred million yuan


@dataclass(frozen=True)
class QuotaUse:
    warehouse_id: str
    quota_fen: int
    held_fen: int  # on-hand at the average cost
    in_transit_fen: int  # shipped to it, not yet received, at the transfer's cost
    owed_fen: int  # old parts of warranty issues not yet returned (旧件), at the issue cost

    @property
    def used_fen(self) -> int:
        return self.held_fen + self.in_transit_fen + self.owed_fen

    @property
    def headroom_fen(self) -> int:
        return self.quota_fen - self.used_fen


def check_quota(quota_fen: int) -> None:
    if not 0 <= quota_fen <= MAX_QUOTA_FEN:
        raise invalid("quota_fen", f"must be between 0 and {MAX_QUOTA_FEN}")


def admit(use: QuotaUse, adding_fen: int, what: str) -> None:
    """Refuse `what` when adding `adding_fen` of value would take the store over its quota."""
    if adding_fen > 0 and use.used_fen + adding_fen > use.quota_fen:
        raise Conflict(
            f"{what} would exceed the franchise quota of {use.warehouse_id}: quota "
            f"{use.quota_fen} fen, held {use.held_fen}, in transit {use.in_transit_fen}, "
            f"old parts owed {use.owed_fen}, used {use.used_fen}, this {adding_fen}, "
            f"headroom {use.headroom_fen}"
        )
