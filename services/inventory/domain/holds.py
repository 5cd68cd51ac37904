"""Whose an order line's hold is (预留归属): each attempt of an order's step that reserves or
issues a line claims it, and the line is let go only when its last claim goes. So a step that
loses a race undoes nothing the winner relies on, and an attempt never written (its caller died
before the commit) is let go once the order's events show it lost, or once orders' events have
flowed a grace period past its claim without naming it.

Events of one outbox are published in the order their transactions committed: when inventory
has heard every orders event created until the grace after a claim, the attempt's own event
(written within the grace, or never) would have come first. A stalled outbox or relay says
nothing about an attempt, so in a stalled or quiet system no claim goes stale: a failure that
will pass is waited out, never turned into a lost hold. The newest creation time heard is
trusted only once it has stood for EVENT_SETTLE (an earlier event still in flight at another
replica, or waiting for its redelivery, is handled by then), and not while any orders event
is failing.

The order's standing holds (made before attempts were tracked, put back by an undo, or reserved
outright) are claimed by the empty attempt, committed from the start.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.inventory.domain.order_parts import OrderPartLine

STANDING = ""
"""The attempt id of the order's standing holds."""

ORDER_ENDED = ("cancelled", "declined", "closed")
"""An order in one of these needs no held part any more."""

DEFAULT_GRACE = timedelta(minutes=10)
"""How long an attempt may take to be written (its step's calls and commit), measured on the
clock of orders' events."""

EVENT_SETTLE = timedelta(minutes=2)
"""How long an orders event may still be in flight after a later one was handled: a try's
timeout, and the broker's wait before it delivers an unanswered message again, with room."""


@dataclass(frozen=True)
class HeardUntil:
    """How far orders' events have flowed in: the creation time of the newest one handled
    (`newest`, handled at `noted_at`), and an earlier such time that has stood for the settle
    time already (`settled`; None: none yet)."""

    newest: datetime
    noted_at: datetime
    settled: datetime | None

    def trusted(self, now: datetime, settle: timedelta = EVENT_SETTLE) -> datetime | None:
        """How far every orders event created before is surely handled."""
        return self.newest if self.noted_at <= now - settle else self.settled


@dataclass(frozen=True)
class Attempt:
    """One try of an order's step: its id, and the version it moves the order to."""

    id: str
    order_version: int


@dataclass(frozen=True)
class Claim:
    order_id: str  # inventory's name for the order's parts: `<order>` or `<order>/<store>`
    line_id: str
    attempt_id: str
    order_version: int
    claimed_at: datetime
    committed: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return self.order_id, self.line_id, self.attempt_id

    def stale(self, heard_until: datetime | None, grace: timedelta) -> bool:
        """An attempt not known to be written though orders' events created the grace after
        its claim were heard (`heard_until`: when the newest orders event heard was created;
        None: none heard yet)."""
        if self.committed or heard_until is None:
            return False
        return self.claimed_at + grace <= heard_until


def order_root(order_id: str) -> str:
    """The order itself, from its name for one store's parts (`<order>/<store>`)."""
    return order_id.split("/", 1)[0]


def claims_for(
    attempt: Attempt | None,
    order_id: str,
    lines: Iterable[OrderPartLine],
    before: Mapping[str, OrderPartLine],
    claims: Collection[Claim],
    now: datetime,
) -> list[Claim]:
    """The claims to add when `attempt` (None: the order outright) has reserved or issued
    these lines (as they are now; `before`: as they were). A line held before with no claim at
    all is the order's standing hold: it stays claimed by the order, whatever becomes of the
    attempt."""
    claimed = {(x.line_id, x.attempt_id) for x in claims}
    tracked = {x.line_id for x in claims}
    new: list[Claim] = []
    for line in lines:
        if line.status not in ("reserved", "short", "issued"):
            continue
        wanted = [(STANDING, 0)] if attempt is None else [(attempt.id, attempt.order_version)]
        earlier = before.get(line.line_id)
        if attempt is not None and line.line_id not in tracked and earlier and _kept(earlier):
            wanted.append((STANDING, 0))
        for attempt_id, version in wanted:
            if (line.line_id, attempt_id) not in claimed:
                claimed.add((line.line_id, attempt_id))
                new.append(
                    Claim(order_id, line.line_id, attempt_id, version, now, attempt_id == STANDING)
                )
    return new


def _kept(line: OrderPartLine) -> bool:
    """The order already had the line (held, waiting for parts, or issued)."""
    return line.status in ("reserved", "short", "issued")


def let_go(claims: Collection[Claim], dropped: Collection[Claim]) -> set[str]:
    """The lines that lose their last claim when `dropped` go."""
    gone = {x.key for x in dropped}
    touched = {x.line_id for x in dropped}
    staying = {x.line_id for x in claims if x.key not in gone}
    return touched - staying


def decided(
    claims: Iterable[Claim], version: int, written_attempt: str
) -> tuple[list[Claim], list[Claim]]:
    """The order reached `version` by `written_attempt` (empty: a step that moved no parts):
    the claims of that attempt are committed, those of any other attempt at the same version
    lost the race and are dropped. (committed, dropped)"""
    at_version = [x for x in claims if not x.committed and x.order_version == version]
    won = [replace(x, committed=True) for x in at_version if x.attempt_id == written_attempt]
    lost = [x for x in at_version if x.attempt_id != written_attempt]
    return won, lost


@dataclass(frozen=True)
class LooseHold:
    """A hold no live step of its order stands behind, and why."""

    line: OrderPartLine
    reason: str


def loose_holds(
    lines: Sequence[OrderPartLine],
    claims: Collection[Claim],
    status: str | None,
    heard_until: datetime | None,
    grace: timedelta,
) -> list[LooseHold]:
    """One order's open lines that nothing stands behind: the order ended (`status` as its
    events told), or every claim on the line is an attempt orders' events flowed past, by the
    grace, without it being written (Claim.stale)."""
    loose = []
    for line in lines:
        if not line.open:
            continue
        mine = [x for x in claims if x.line_id == line.line_id and x.order_id == line.order_id]
        if status in ORDER_ENDED:
            loose.append(LooseHold(line, f"order {status}"))
        elif mine and all(x.stale(heard_until, grace) for x in mine):
            attempts = ", ".join(sorted(f"{x.attempt_id}@v{x.order_version}" for x in mine))
            loose.append(LooseHold(line, f"attempt never written: {attempts}"))
    return loose
