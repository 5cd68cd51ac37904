"""Parts catalog and warehouse stock, served by the inventory service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.inventory.v1 import inventory_pb2
from servicekit.auth import AuthContext
from servicekit.errors import NotFound
from servicekit.grpc_client import call
from services.gateway import schemas
from services.gateway.deps import Auth, Gw
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["inventory"])

Filter = Annotated[str | None, Query(max_length=50)]


def warehouse_json(warehouse: inventory_pb2.Warehouse) -> dict[str, Any]:
    return {
        "id": warehouse.id,
        "name": warehouse.name,
        "kind": warehouse.kind,
        "branch_id": warehouse.branch_id,
        "store_id": or_none(warehouse.store_id),
    }


def visible(auth: AuthContext, warehouse: inventory_pb2.Warehouse) -> bool:
    return auth.covers(warehouse.branch_id, warehouse.store_id or None)


@router.get("/parts", response_model=schemas.PartPage)
async def list_parts(
    auth: Auth,
    gw: Gw,
    brand: Filter = None,
    category: Filter = None,
    model: Filter = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    request = inventory_pb2.ListPartsRequest(
        brand=brand or "",
        category=category or "",
        model=model or "",
        page_size=limit,
        page_token=cursor or "",
    )
    reply = await call(gw.clients.inventory.ListParts, request)
    items = [
        {
            "part_number": p.part_number,
            "brand": p.brand,
            "description": p.description,
            "category": p.category,
            "compatible_models": list(p.compatible_models),
            "serialised": p.serialised,
            "standard_cost_fen": p.standard_cost_fen,
            "retail_price_fen": p.retail_price_fen,
            "superseded_by": or_none(p.superseded_by),
        }
        for p in reply.parts
    ]
    return json_response(page(items, reply.next_page_token))


@router.get("/warehouses", response_model=schemas.Warehouses)
async def list_warehouses(auth: Auth, gw: Gw) -> Response:
    reply = await call(gw.clients.inventory.ListWarehouses, inventory_pb2.ListWarehousesRequest())
    items = [warehouse_json(w) for w in reply.warehouses if visible(auth, w)]
    return json_response({"items": items})


@router.get(
    "/warehouses/{warehouse_id}/stock",
    response_model=schemas.Stock,
    responses={404: {"model": schemas.Problem}},
)
async def get_stock(warehouse_id: str, auth: Auth, gw: Gw, part_number: Filter = None) -> Response:
    request = inventory_pb2.GetStockRequest(
        warehouse_id=warehouse_id, part_number=part_number or ""
    )
    reply = await call(gw.clients.inventory.GetStock, request)
    # Inventory scopes by the auth context too; this check keeps a slip there from leaking.
    if not visible(auth, reply.warehouse):
        raise NotFound(f"no warehouse {warehouse_id} in your scope")
    levels = [
        {
            "part_number": level.part_number,
            "description": level.description,
            "on_hand": level.on_hand,
            "reserved": level.reserved,
            "available": level.available,
            "average_cost_fen": level.average_cost_fen,
        }
        for level in reply.levels
    ]
    return json_response({"warehouse": warehouse_json(reply.warehouse), "levels": levels})
