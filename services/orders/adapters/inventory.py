"""The parts of an order, kept by inventory (工单用料), reached over gRPC with the caller's
token passed on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from servicekit.grpc_client import call
from services.orders.domain.order import PartLine

CATALOG_PAGE = 200  # inventory's largest page


def store_warehouse_id(store_id: str) -> str:
    """Inventory's name for a store's own warehouse (库房)."""
    return f"WH-{store_id}"


@dataclass(frozen=True)
class Held:
    """One line as inventory holds it after a reservation: the quantity reserved (less than
    asked when short), the serials held for a serialised part, and for a short line whose part
    is superseded the part that replaces it now (替代料) with how many of it are available."""

    reserved: int
    serials: tuple[str, ...] = ()
    successor_part_id: str = ""
    successor_available: int = 0


@dataclass(frozen=True)
class StepAttempt:
    """One try of a step at inventory's side: the lines it reserves or issues are claimed by
    it, and its undo lets go only of what no other attempt claims. `order_version`: the
    version the step moves the order to."""

    id: str
    order_version: int


class Parts(Protocol):
    """What orders asks of inventory. Each call is idempotent per (order, line)."""

    async def reserve(
        self,
        order_id: str,
        warehouse_id: str,
        lines: Sequence[PartLine],
        attempt: StepAttempt | None = None,
    ) -> dict[str, Held]:
        """Reserve what is available, a serialised line its named serials (`PartLine.serials`,
        each free in the warehouse, else Conflict) or any free ones. A line reserved again
        with its part's successor takes the successor instead. The holds are claimed by
        `attempt` (None: by the order outright)."""
        ...

    async def issue(
        self, order_id: str, line_ids: Sequence[str], attempt: StepAttempt | None = None
    ) -> dict[str, int]:
        """Issue the reserved quantity to each line: line id → quantity issued; claimed by
        `attempt` when given."""
        ...

    async def release(
        self, order_id: str, line_ids: Sequence[str], attempt: StepAttempt | None = None
    ) -> dict[str, int]:
        """Let the reservations go: line id → quantity still issued, which a release leaves
        as it is (a repair start that came first). With `attempt`, that attempt's undo: only
        what it claimed and no other attempt claims is let go (a hold released, an issue
        given back)."""
        ...

    async def give_back(
        self,
        order_id: str,
        issued: dict[str, int],
        serials: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Return issued quantities to the warehouse unused (退料), a serialised line's by
        its serials (line id → the serials that come back)."""
        ...

    async def retail_prices(self, brand: str, part_ids: Sequence[str]) -> dict[str, int]:
        """The catalog's retail price of each of these parts it knows."""
        ...

    async def part_categories(self, brand: str, part_ids: Sequence[str]) -> dict[str, str]:
        """The catalog's category of each of these parts it knows (battery, screen, ...)."""
        ...


def _attempt(attempt: StepAttempt | None) -> inventory_pb2.PartsAttempt | None:
    if attempt is None:
        return None
    return inventory_pb2.PartsAttempt(id=attempt.id, order_version=attempt.order_version)


class InventoryParts:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = inventory_pb2_grpc.InventoryServiceStub(channel)

    async def reserve(
        self,
        order_id: str,
        warehouse_id: str,
        lines: Sequence[PartLine],
        attempt: StepAttempt | None = None,
    ) -> dict[str, Held]:
        request = inventory_pb2.ReservePartsRequest(
            order_id=order_id,
            warehouse_id=warehouse_id,
            attempt=_attempt(attempt),
            lines=[
                inventory_pb2.PartLine(
                    line_id=line.line_id,
                    part_id=line.part_id,
                    quantity=line.quantity,
                    warranty=line.warranty,
                    serials=list(line.serials),
                )
                for line in lines
            ],
        )
        reply = await call(self.stub.ReserveParts, request)
        return {
            line.line_id: Held(
                line.reserved,
                tuple(line.serials),
                line.successor_part_id,
                line.successor_available,
            )
            for line in reply.lines
        }

    async def issue(
        self, order_id: str, line_ids: Sequence[str], attempt: StepAttempt | None = None
    ) -> dict[str, int]:
        request = inventory_pb2.OrderPartsRequest(
            order_id=order_id, line_ids=list(line_ids), attempt=_attempt(attempt)
        )
        reply = await call(self.stub.IssueParts, request)
        return {line.line_id: line.issued for line in reply.lines if line.line_id in line_ids}

    async def release(
        self, order_id: str, line_ids: Sequence[str], attempt: StepAttempt | None = None
    ) -> dict[str, int]:
        request = inventory_pb2.OrderPartsRequest(
            order_id=order_id, line_ids=list(line_ids), attempt=_attempt(attempt)
        )
        reply = await call(self.stub.ReleaseParts, request)
        return {
            line.line_id: line.issued - line.returned
            for line in reply.lines
            if line.line_id in line_ids
        }

    async def give_back(
        self,
        order_id: str,
        issued: dict[str, int],
        serials: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        for line_id, quantity in issued.items():
            if quantity:
                named = list((serials or {}).get(line_id, ()))
                # Named only when they are all that come back; otherwise inventory picks.
                back = named if len(named) == quantity else []
                await call(
                    self.stub.ReturnParts,
                    inventory_pb2.ReturnPartsRequest(
                        order_id=order_id, line_id=line_id, quantity=quantity, serials=back
                    ),
                )

    async def retail_prices(self, brand: str, part_ids: Sequence[str]) -> dict[str, int]:
        found = await self._catalog(brand, part_ids)
        return {k: p.retail_price_fen for k, p in found.items()}

    async def part_categories(self, brand: str, part_ids: Sequence[str]) -> dict[str, str]:
        found = await self._catalog(brand, part_ids)
        return {k: p.category for k, p in found.items()}

    async def _catalog(self, brand: str, part_ids: Sequence[str]) -> dict[str, inventory_pb2.Part]:
        # The catalog has no look-up by part numbers yet: read the brand's parts, a page at a
        # time, until every part asked for is found.
        wanted, token = set(part_ids), ""
        found: dict[str, inventory_pb2.Part] = {}
        while wanted - found.keys():
            request = inventory_pb2.ListPartsRequest(
                brand=brand, page_size=CATALOG_PAGE, page_token=token
            )
            reply = await call(self.stub.ListParts, request)
            found |= {p.part_number: p for p in reply.parts if p.part_number in wanted}
            token = reply.next_page_token
            if not token:
                break
        return found
