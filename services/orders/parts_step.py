"""The parts side of a step (工单用料): what inventory is asked when an order moves, as one
attempt of the step.

An attempt goes through explicit states:

    planned ──move──▶ moved ──written──▶ written
                        │
                        └──undo──▶ undone | left (the undo failed: inventory lets go of what
                                                  only this attempt claimed after its grace)

Inventory holds and issues a line for the attempts that claim it (`StepAttempt`: an id, and
the order version the step moves to). Two attempts of one step at once both claim the line;
the one whose write fails undoes only its own claim, so the winner's parts stay. Inventory
learns which attempt was written from the order's event (`OrderStatusChanged.parts_attempt`),
and lets go of an attempt never written (orders died between the call and the commit).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, InvalidInput, NotFound, invalid
from services.orders.adapters.inventory import Held, Parts, StepAttempt, store_warehouse_id
from services.orders.domain import lifecycle, routes
from services.orders.domain.order import PartLine, RepairOrder

log = logging.getLogger(__name__)


class State(enum.StrEnum):
    PLANNED = "planned"  # nothing asked of inventory yet
    MOVED = "moved"  # inventory did its side; the order's change is not written yet
    WRITTEN = "written"  # the order's change is written: inventory's side stands
    UNDONE = "undone"  # the write failed: what only this attempt claimed is let go
    LEFT = "left"  # the undo failed too: inventory lets go after the attempt's grace


def parts_ref(order: RepairOrder, store_id: str) -> str:
    """Inventory's name for one store's part of an order: the order's id for the intake store,
    `<id>/<store>` for a partner's, so each store's parts come from its own warehouse and
    their cost lands where it was spent."""
    return order.id if store_id in ("", order.store_id) else f"{order.id}/{store_id}"


def by_store(order: RepairOrder, lines: Iterable[PartLine]) -> dict[str, list[PartLine]]:
    groups: dict[str, list[PartLine]] = {}
    for line in lines:
        groups.setdefault(line.store_id or order.store_id, []).append(line)
    return groups


@dataclass
class PartsAttempt:
    """One attempt of a step at inventory's side, for one order read at one version."""

    parts: Parts
    order: RepairOrder
    claim: StepAttempt
    state: State = State.PLANNED
    step: str = ""
    claimed: list[PartLine] = field(default_factory=list)
    """The lines this attempt reserved or issued (claimed), as asked."""
    released: list[PartLine] = field(default_factory=list)
    """The lines this attempt let go of, the order's decision."""
    issued_to_return: dict[str, int] = field(default_factory=dict)
    """Parts found issued to an order being cancelled: given back once the cancel is written."""

    @classmethod
    def begin(cls, parts: Parts, order: RepairOrder) -> PartsAttempt:
        """An attempt of a step on `order` as read: it moves the order to the next version."""
        return cls(parts, order, StepAttempt(uuid.uuid4().hex, order.version + 1))

    @property
    def id(self) -> str:
        return self.claim.id

    async def move(
        self, auth: AuthContext, from_status: str, step: str, held: set[str], now: datetime
    ) -> None:
        """Inventory's side of a step on the order as the rules changed it: reserve once
        approved (or when parts come), issue when the repair starts, release on cancel,
        decline or swap, reserve and issue at once a swap unit or a quick order's parts.
        `held`: the lines holding a reservation before the step. Each store's lines at its own
        warehouse. A failure undoes what this attempt claimed so far, and is raised."""
        assert self.state is State.PLANNED, self.state
        self.state, self.step = State.MOVED, step
        try:
            await self._move(auth, from_status, step, held, now)
        except BaseException:
            await self.undo()
            raise

    async def _move(
        self, auth: AuthContext, from_status: str, step: str, held: set[str], now: datetime
    ) -> None:
        order = self.order
        lines = order.work.lines
        just_approved = order.status == "approved" and from_status == "awaiting_approval"
        if just_approved or step == "parts":
            await self._reserve_wanted(auth, now, just_approved)
            return
        if step == "repair/start":
            # Not claimed: inventory never issues a line twice, so the step taken again finds
            # it issued.
            to_issue = [line for line in lines if line.issued]
            if to_issue:
                issued = await self._issue(to_issue, claimed=False)
                for line in lines:
                    line.issued = issued.get(line.line_id, line.issued)
            return
        if step == "complete" and lines:
            await self._take_at_once(lines, "parts")
            return
        if step == "swap":
            await self._take_swap_unit()
        released = [line for line in lines if line.line_id in held and not line.reserved]
        if released:
            still_issued: dict[str, int] = {}
            for store, group in by_store(order, released).items():
                still_issued |= await self.parts.release(
                    parts_ref(order, store), [line.line_id for line in group]
                )
            self.released = released
            self.issued_to_return = {i: n for i, n in still_issued.items() if n}

    async def _reserve_wanted(self, auth: AuthContext, now: datetime, just_approved: bool) -> None:
        order = self.order
        wanted = [line for line in order.work.lines if line.issued < line.quantity]
        if wanted and auth.store_id and auth.store_id != order.holder_store_id:
            # Approved at the intake store while a partner repairs: the partner reserves at
            # its own warehouse, with the parts step.
            why = f"store {order.holder_store_id} reserves its parts (parts step)"
            lifecycle.parts_reserved(order, auth, now, {}, why, approved_now=just_approved)
            return
        answer = await self._reserve(wanted) if wanted else {}
        offers = {
            i: (x.successor_part_id, x.successor_available)
            for i, x in answer.items()
            if x.successor_part_id
        }
        reserved = {i: x.reserved for i, x in answer.items()}
        lifecycle.parts_reserved(
            order, auth, now, reserved, offers=offers, approved_now=just_approved
        )

    async def _reserve(self, lines: Sequence[PartLine]) -> dict[str, Held]:
        """Each store's lines at its own warehouse, claimed by this attempt; the serials
        inventory holds for a line are recorded on it."""
        order = self.order
        held: dict[str, Held] = {}
        for store, group in by_store(order, lines).items():
            self.claimed += group
            held |= await self.parts.reserve(
                parts_ref(order, store), store_warehouse_id(store), group, self.claim
            )
        for line in order.work.lines:
            if line.line_id in held and held[line.line_id].serials:
                line.serials = held[line.line_id].serials
        return held

    async def _issue(self, lines: Sequence[PartLine], claimed: bool = True) -> dict[str, int]:
        issued: dict[str, int] = {}
        for store, group in by_store(self.order, lines).items():
            issued |= await self.parts.issue(
                parts_ref(self.order, store),
                [line.line_id for line in group],
                self.claim if claimed else None,
            )
        return issued

    async def _take_at_once(self, lines: Sequence[PartLine], what: str) -> None:
        """Reserve and issue these lines in one go (a swap unit, a quick order's parts); a
        shortage refuses the step (and `move` undoes what was claimed)."""
        reserved = {i: x.reserved for i, x in (await self._reserve(lines)).items()}
        short = [
            f"{x.part_id} ×{x.quantity - reserved.get(x.line_id, 0)}"
            for x in lines
            if reserved.get(x.line_id, 0) < x.quantity
        ]
        if short:
            raise Conflict(f"{what} short at the store's warehouse: {', '.join(short)}")
        issued = await self._issue(lines)
        for line in lines:
            line.issued, line.reserved = issued.get(line.line_id, line.quantity), 0

    async def _take_swap_unit(self) -> None:
        """换机: exactly the unit named by its IMEI (its serial in swap stock) is reserved and
        issued, so it leaves with a ledger row and its serial moves. A swap naming no unit, one
        not free in the store's swap stock, or a part number that is no serialised part,
        refuses the step naming it."""
        order = self.order
        unit = [line for line in order.work.lines if line.line_id == routes.SWAP_LINE]
        if not unit:
            raise invalid("part_id", "a swap names the unit's part number: it leaves swap stock")
        imei = order.work.swap.imei if order.work.swap else ""
        try:
            await self._take_at_once(unit, "swap units")
        except Conflict as error:
            raise Conflict(
                f"swap unit {imei} ({unit[0].part_id}) is not in the store's swap stock: "
                f"{error.message}"
            ) from error
        except InvalidInput as error:
            reasons = "; ".join(e.reason for e in error.errors) or error.message
            raise invalid("part_id", f"{reasons}: a swap unit is issued by its IMEI") from error

    async def undo(self, written: RepairOrder | None = None) -> None:
        """The order's change could not be written: inventory lets go of what this attempt
        claimed and no other attempt claims, and the holds it let go are put back as far as
        the order written meanwhile (`written`, when known) still holds them. A failure here
        leaves the rest to inventory's grace period."""
        if self.state is not State.MOVED:
            return
        try:
            await self._undo(written)
            self.state = State.UNDONE
        except Exception:
            self.state = State.LEFT
            log.exception(
                "could not undo inventory's side of %s on order %s (attempt %s): inventory lets"
                " go of what only it claimed after its grace",
                self.step,
                self.order.id,
                self.id,
            )

    async def _undo(self, written: RepairOrder | None) -> None:
        order = self.order
        for store, group in by_store(order, self.claimed).items():
            # NotFound: inventory never made the lines, so there is nothing to undo.
            with contextlib.suppress(NotFound):
                await self.parts.release(
                    parts_ref(order, store), [line.line_id for line in group], self.claim
                )
        still = (
            {x.line_id for x in written.work.lines if x.reserved} if written is not None else None
        )
        back = [x for x in self.released if still is None or x.line_id in still]
        for store, group in by_store(order, back).items():
            await self.parts.reserve(parts_ref(order, store), store_warehouse_id(store), group)

    async def written(self) -> None:
        """The order's change is written: inventory's side stands. Parts a racing repair start
        had issued to an order now cancelled go back."""
        assert self.state is State.MOVED, self.state
        self.state = State.WRITTEN
        if not self.issued_to_return:
            return
        try:
            await give_back(self.parts, self.order, self.issued_to_return)
        except Exception:
            log.exception(
                "parts issued to cancelled order %s stay issued: %s",
                self.order.id,
                self.issued_to_return,
            )


async def give_back(parts: Parts, order: RepairOrder, issued: dict[str, int]) -> None:
    """Issued parts back to their warehouse, a serialised line's by the serials it took."""
    lines = [line for line in order.work.lines if issued.get(line.line_id)]
    for store, group in by_store(order, lines).items():
        await parts.give_back(
            parts_ref(order, store),
            {x.line_id: issued[x.line_id] for x in group},
            {x.line_id: x.serials for x in group if x.serials},
        )
