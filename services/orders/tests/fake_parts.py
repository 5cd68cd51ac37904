"""An inventory stand-in for orders' tests: a stock per part, reservations and issues per
(order, line), idempotent like the real one, and a record of every call. Serialised parts
have their units by serial (`units`); superseded parts their successor (`successors`). Like
the real one, a line is claimed by the step attempts that reserve or issue it, and an
attempt's undo lets go only of what no other attempt claims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from servicekit.errors import Conflict, invalid
from services.orders.adapters.inventory import Held, StepAttempt
from services.orders.domain.order import PartLine


@dataclass
class FakeParts:
    stock: dict[str, int] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)  # the catalog's retail prices
    categories: dict[str, str] = field(default_factory=dict)  # and categories, when not "screen"
    reserved: dict[tuple[str, str], int] = field(default_factory=dict)
    issued: dict[tuple[str, str], int] = field(default_factory=dict)
    parts_of: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[tuple[str, str, object]] = field(default_factory=list)
    # A serialised part's free units by serial (its stock is their count), and the serials
    # each line holds or took.
    units: dict[str, list[str]] = field(default_factory=dict)
    serials_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    successors: dict[str, str] = field(default_factory=dict)  # 替代料: part → its successor
    asked: dict[tuple[str, str], int] = field(default_factory=dict)  # each line's quantity
    # What happens elsewhere while a call (by name) is made: another user's change, ...
    meanwhile: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    # By line: the attempts that claim it ("" the order's standing claim).
    claims: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def _claim(self, key: tuple[str, str], attempt: StepAttempt | None, had: bool) -> None:
        claims = self.claims.setdefault(key, set())
        if attempt is not None and had and not claims:
            claims.add("")
        claims.add(attempt.id if attempt is not None else "")

    def __post_init__(self) -> None:
        for part, free in self.units.items():
            self.stock[part] = len(free)

    async def _meanwhile(self, name: str) -> None:
        if name in self.meanwhile:
            await self.meanwhile.pop(name)()

    def chain(self, part: str) -> list[str]:
        """The parts that supersede `part` in turn; the last is current."""
        found = []
        while part in self.successors:
            part = self.successors[part]
            found.append(part)
        return found

    def _check_serials(self, order_id: str, warehouse_id: str, line: PartLine) -> None:
        if line.serials and line.part_id not in self.units:
            raise invalid("lines[0].serials", f"{line.part_id} is not serialised")
        held = self.serials_of.get((order_id, line.line_id), [])
        for serial in line.serials:
            if serial not in self.units.get(line.part_id, []) and serial not in held:
                raise Conflict(f"serial {serial} is not known, not free in {warehouse_id}")

    def _let_go(self, key: tuple[str, str]) -> None:
        part = self.parts_of[key]
        self.stock[part] = self.stock.get(part, 0) + self.reserved.pop(key, 0)
        if part in self.units and not self.issued.get(key):
            self.units[part] += self.serials_of.pop(key, [])

    async def reserve(
        self,
        order_id: str,
        warehouse_id: str,
        lines: Sequence[PartLine],
        attempt: StepAttempt | None = None,
    ) -> dict[str, Held]:
        self.calls.append(("reserve", order_id, [line.line_id for line in lines]))
        for line in lines:
            self._check_serials(order_id, warehouse_id, line)
        for line in lines:
            key = (order_id, line.line_id)
            before = self.parts_of.get(key)
            self._claim(key, attempt, bool(self.reserved.get(key) or self.issued.get(key)))
            if before is not None and before != line.part_id:
                if line.part_id not in self.chain(before) or self.issued.get(key):
                    raise Conflict(f"line {line.line_id} of order {order_id} is part {before}")
                self._let_go(key)  # 替代料: the old hold goes, the successor is held
            self.parts_of[key], self.asked[key] = line.part_id, line.quantity
            missing = line.quantity - self.reserved.get(key, 0) - self.issued.get(key, 0)
            take = min(max(missing, 0), self.stock.get(line.part_id, 0))
            self.stock[line.part_id] = self.stock.get(line.part_id, 0) - take
            self.reserved[key] = self.reserved.get(key, 0) + take
            if line.part_id in self.units and take:
                free = self.units[line.part_id]
                chosen = [s for s in line.serials if s in free]
                chosen += [s for s in free if s not in chosen][: take - len(chosen)]
                self.units[line.part_id] = [s for s in free if s not in chosen]
                self.serials_of[key] = self.serials_of.get(key, []) + chosen
        await self._meanwhile("reserve")
        return {line.line_id: self._held(order_id, line.line_id) for line in lines}

    def _held(self, order_id: str, line_id: str) -> Held:
        key = (order_id, line_id)
        reserved = self.reserved[key]
        part = self.parts_of[key]
        successor = self.chain(part)[-1] if self.chain(part) else ""
        short = not self.issued.get(key) and reserved < self.asked[key]
        return Held(
            reserved,
            tuple(self.serials_of.get(key, ())),
            successor if short else "",
            self.stock.get(successor, 0) if short and successor else 0,
        )

    async def issue(
        self, order_id: str, line_ids: Sequence[str], attempt: StepAttempt | None = None
    ) -> dict[str, int]:
        """Like inventory: a line is issued once; taken again, it is answered as it is."""
        self.calls.append(("issue", order_id, list(line_ids)))
        for line_id in line_ids:
            key = (order_id, line_id)
            if attempt is not None:
                self._claim(key, attempt, True)
            if not self.issued.get(key):
                self.issued[key] = self.reserved.pop(key, 0)
        await self._meanwhile("issue")
        return {line_id: self.issued.get((order_id, line_id), 0) for line_id in line_ids}

    async def release(
        self, order_id: str, line_ids: Sequence[str], attempt: StepAttempt | None = None
    ) -> dict[str, int]:
        """Like inventory: issued quantities stay issued. An attempt's undo lets go of (gives
        back) only the lines it claimed that no other attempt claims."""
        self.calls.append(("release", order_id, list(line_ids)))
        for line_id in line_ids:
            key = (order_id, line_id)
            claims = self.claims.get(key, set())
            if attempt is None:
                claims.clear()
                self._let_go(key)
            elif attempt.id in claims:
                claims.discard(attempt.id)
                if not claims and key in self.parts_of:
                    if self.issued.get(key):
                        await self.give_back(order_id, {line_id: self.issued[key]})
                    self._let_go(key)
        await self._meanwhile("release")
        return {line_id: self.issued.get((order_id, line_id), 0) for line_id in line_ids}

    async def give_back(
        self,
        order_id: str,
        issued: dict[str, int],
        serials: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.calls.append(("give_back", order_id, dict(issued)))
        for line_id, quantity in issued.items():
            key = (order_id, line_id)
            part = self.parts_of[key]
            self.issued[key] -= quantity
            self.stock[part] += quantity
            if part in self.units:
                taken = self.serials_of.get(key, [])
                back = list((serials or {}).get(line_id, ())) or taken[:quantity]
                self.units[part] += back
                self.serials_of[key] = [s for s in taken if s not in back]

    async def retail_prices(self, brand: str, part_ids: Sequence[str]) -> dict[str, int]:
        self.calls.append(("retail_prices", brand, list(part_ids)))
        return {p: self.prices[p] for p in part_ids if p in self.prices}

    async def part_categories(self, brand: str, part_ids: Sequence[str]) -> dict[str, str]:
        return {p: self.categories.get(p, "screen") for p in part_ids if p in self.prices}
