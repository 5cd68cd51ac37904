"""The parts of an order, kept by inventory (工单用料), reached over gRPC with the caller's
token passed on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc

from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from servicekit.grpc_client import call
from services.orders.domain.order import PartLine

CATALOG_PAGE = 200  # inventory's largest page


def store_warehouse_id(store_id: str) -> str:
    """Inventory's name for a store's own warehouse (库房)."""
    return f"WH-{store_id}"


class Parts(Protocol):
    """What orders asks of inventory. Each call is idempotent per (order, line)."""

    async def reserve(
        self, order_id: str, warehouse_id: str, lines: Sequence[PartLine]
    ) -> dict[str, int]:
        """Reserve what is available: line id → quantity now reserved (less when short)."""
        ...

    async def issue(self, order_id: str, line_ids: Sequence[str]) -> dict[str, int]:
        """Issue the reserved quantity to each line: line id → quantity issued."""
        ...

    async def release(self, order_id: str, line_ids: Sequence[str]) -> dict[str, int]:
        """Let the reservations go: line id → quantity still issued, which a release leaves
        as it is (a repair start that came first)."""
        ...

    async def give_back(self, order_id: str, issued: dict[str, int]) -> None:
        """Return issued quantities to the warehouse unused (退料)."""
        ...

    async def retail_prices(self, brand: str, part_ids: Sequence[str]) -> dict[str, int]:
        """The catalog's retail price of each of these parts it knows."""
        ...


class InventoryParts:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = inventory_pb2_grpc.InventoryServiceStub(channel)

    async def reserve(
        self, order_id: str, warehouse_id: str, lines: Sequence[PartLine]
    ) -> dict[str, int]:
        request = inventory_pb2.ReservePartsRequest(
            order_id=order_id,
            warehouse_id=warehouse_id,
            lines=[
                inventory_pb2.PartLine(
                    line_id=line.line_id,
                    part_id=line.part_id,
                    quantity=line.quantity,
                    warranty=line.warranty,
                )
                for line in lines
            ],
        )
        reply = await call(self.stub.ReserveParts, request)
        return {line.line_id: line.reserved for line in reply.lines}

    async def issue(self, order_id: str, line_ids: Sequence[str]) -> dict[str, int]:
        request = inventory_pb2.OrderPartsRequest(order_id=order_id, line_ids=list(line_ids))
        reply = await call(self.stub.IssueParts, request)
        return {line.line_id: line.issued for line in reply.lines if line.line_id in line_ids}

    async def release(self, order_id: str, line_ids: Sequence[str]) -> dict[str, int]:
        request = inventory_pb2.OrderPartsRequest(order_id=order_id, line_ids=list(line_ids))
        reply = await call(self.stub.ReleaseParts, request)
        return {
            line.line_id: line.issued - line.returned
            for line in reply.lines
            if line.line_id in line_ids
        }

    async def give_back(self, order_id: str, issued: dict[str, int]) -> None:
        for line_id, quantity in issued.items():
            if quantity:
                await call(
                    self.stub.ReturnParts,
                    inventory_pb2.ReturnPartsRequest(
                        order_id=order_id, line_id=line_id, quantity=quantity
                    ),
                )

    async def retail_prices(self, brand: str, part_ids: Sequence[str]) -> dict[str, int]:
        # The catalog has no look-up by part numbers yet: read the brand's parts, a page at a
        # time, until every part asked for is found.
        wanted, token = set(part_ids), ""
        prices: dict[str, int] = {}
        while wanted - prices.keys():
            request = inventory_pb2.ListPartsRequest(
                brand=brand, page_size=CATALOG_PAGE, page_token=token
            )
            reply = await call(self.stub.ListParts, request)
            prices |= {
                p.part_number: p.retail_price_fen for p in reply.parts if p.part_number in wanted
            }
            token = reply.next_page_token
            if not token:
                break
        return prices
