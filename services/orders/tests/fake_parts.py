"""An inventory stand-in for orders' tests: a stock per part, reservations and issues per
(order, line), idempotent like the real one, and a record of every call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from services.orders.domain.order import PartLine


@dataclass
class FakeParts:
    stock: dict[str, int] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)  # the catalog's retail prices
    reserved: dict[tuple[str, str], int] = field(default_factory=dict)
    issued: dict[tuple[str, str], int] = field(default_factory=dict)
    parts_of: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[tuple[str, str, object]] = field(default_factory=list)
    # What happens elsewhere while a call (by name) is made: another user's change, ...
    meanwhile: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)

    async def _meanwhile(self, name: str) -> None:
        if name in self.meanwhile:
            await self.meanwhile.pop(name)()

    async def reserve(
        self, order_id: str, warehouse_id: str, lines: Sequence[PartLine]
    ) -> dict[str, int]:
        self.calls.append(("reserve", order_id, [line.line_id for line in lines]))
        for line in lines:
            key = (order_id, line.line_id)
            self.parts_of[key] = line.part_id
            missing = line.quantity - self.reserved.get(key, 0) - self.issued.get(key, 0)
            take = min(max(missing, 0), self.stock.get(line.part_id, 0))
            self.stock[line.part_id] = self.stock.get(line.part_id, 0) - take
            self.reserved[key] = self.reserved.get(key, 0) + take
        await self._meanwhile("reserve")
        return {line.line_id: self.reserved[(order_id, line.line_id)] for line in lines}

    async def issue(self, order_id: str, line_ids: Sequence[str]) -> dict[str, int]:
        """Like inventory: a line is issued once; taken again, it is answered as it is."""
        self.calls.append(("issue", order_id, list(line_ids)))
        for line_id in line_ids:
            key = (order_id, line_id)
            if not self.issued.get(key):
                self.issued[key] = self.reserved.pop(key, 0)
        await self._meanwhile("issue")
        return {line_id: self.issued.get((order_id, line_id), 0) for line_id in line_ids}

    async def release(self, order_id: str, line_ids: Sequence[str]) -> dict[str, int]:
        """Like inventory: issued quantities stay issued."""
        self.calls.append(("release", order_id, list(line_ids)))
        for line_id in line_ids:
            key = (order_id, line_id)
            part = self.parts_of[key]
            self.stock[part] = self.stock.get(part, 0) + self.reserved.pop(key, 0)
        await self._meanwhile("release")
        return {line_id: self.issued.get((order_id, line_id), 0) for line_id in line_ids}

    async def give_back(self, order_id: str, issued: dict[str, int]) -> None:
        self.calls.append(("give_back", order_id, dict(issued)))
        for line_id, quantity in issued.items():
            key = (order_id, line_id)
            self.issued[key] -= quantity
            self.stock[self.parts_of[key]] += quantity

    async def retail_prices(self, brand: str, part_ids: Sequence[str]) -> dict[str, int]:
        self.calls.append(("retail_prices", brand, list(part_ids)))
        return {p: self.prices[p] for p in part_ids if p in self.prices}
