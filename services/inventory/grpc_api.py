"""The inventory gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

import grpc

from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from servicekit.auth import current_auth
from services.inventory import handlers
from services.inventory.adapters.repository import StockRow
from services.inventory.domain.catalog import Part
from services.inventory.domain.warehouse import Warehouse


def part_message(part: Part) -> inventory_pb2.Part:
    return inventory_pb2.Part(
        part_number=part.part_number,
        brand=part.brand,
        description=part.description,
        category=part.category,
        compatible_models=list(part.compatible_models),
        serialised=part.serialised,
        standard_cost_fen=part.standard_cost_fen,
        retail_price_fen=part.retail_price_fen,
        superseded_by=part.superseded_by or "",
    )


def warehouse_message(warehouse: Warehouse) -> inventory_pb2.Warehouse:
    return inventory_pb2.Warehouse(
        id=warehouse.id,
        name=warehouse.name,
        kind=warehouse.kind,
        branch_id=warehouse.branch_id,
        store_id=warehouse.store_id or "",
    )


def level_message(row: StockRow) -> inventory_pb2.StockLevel:
    level = row.level
    return inventory_pb2.StockLevel(
        part_number=level.part_number,
        description=row.description,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=level.available,
        average_cost_fen=level.average_cost_fen,
    )


class InventoryService(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, new_uow: handlers.NewUow) -> None:
        self.new_uow = new_uow

    async def ListParts(
        self, request: inventory_pb2.ListPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListPartsResponse:
        current_auth()  # the catalog is chain-wide, but only for callers who say who they are
        where = handlers.part_filter(request.brand, request.category, request.model)
        parts, token = await handlers.list_parts(
            self.new_uow, where, request.page_size, request.page_token
        )
        return inventory_pb2.ListPartsResponse(
            parts=[part_message(p) for p in parts], next_page_token=token
        )

    async def ListWarehouses(
        self, request: inventory_pb2.ListWarehousesRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListWarehousesResponse:
        found = await handlers.list_warehouses(self.new_uow, current_auth())
        return inventory_pb2.ListWarehousesResponse(
            warehouses=[warehouse_message(w) for w in found]
        )

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetStockResponse:
        warehouse, rows = await handlers.get_stock(
            self.new_uow, current_auth(), request.warehouse_id, request.part_number
        )
        return inventory_pb2.GetStockResponse(
            warehouse=warehouse_message(warehouse), levels=[level_message(r) for r in rows]
        )


def register(server: grpc.aio.Server, new_uow: handlers.NewUow) -> None:
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryService(new_uow), server)
