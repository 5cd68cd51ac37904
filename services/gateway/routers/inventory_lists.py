"""The console's inventory lists, served by the inventory service: a warehouse's transfers
(调拨) or a branch's approval queue, a warehouse's stocktakes (盘点) and purchase orders (采购单),
newest first a page at a time; and one purchase order. Another unit's warehouse, branch or
order is 404, as everywhere."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.inventory.v1 import inventory_pb2
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_inventory, schemas_inventory_lists
from services.gateway.deps import Auth, Gw
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, json_response
from services.gateway.routers.inventory import (
    check_warehouse,
    purchase_order_json,
    stocktake_json,
    transfer_json,
)
from services.gateway.schemas_inventory_lists import (
    PurchaseOrderStatus,
    StocktakeStatus,
    TransferStatus,
)

router = APIRouter(prefix="/api/v1", tags=["inventory"], route_class=DocumentedRoute)

Id = Annotated[str | None, Query(max_length=50)]
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Problem, "description": "warehouse or branch outside your scope"},
    422: {"model": schemas.Problem, "description": "invalid filter or cursor, by field"},
}


@router.get(
    "/transfers",
    response_model=schemas_inventory_lists.TransferPage,
    responses=LIST_RESPONSES,
)
async def list_transfers(
    auth: Auth,
    gw: Gw,
    warehouse_id: Annotated[
        str | None, Query(max_length=50, description="sent from or to this warehouse")
    ] = None,
    status: Annotated[TransferStatus | None, Query()] = None,
    pending_branch: Annotated[
        str | None,
        Query(max_length=50, description="requested, still awaiting this branch's approval"),
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Transfers in your scope, newest requested first: a warehouse's (sent or received), by
    status, or a branch manager's queue (pending_branch = their branch)."""
    if warehouse_id:
        await check_warehouse(gw, auth, warehouse_id)
    if pending_branch:
        gw.tree.branch_in_scope(auth, pending_branch)
    request = inventory_pb2.ListTransfersRequest(
        warehouse_id=warehouse_id or "",
        status=status or "",
        pending_branch=pending_branch or "",
        page_size=limit,
        page_token=cursor or "",
    )
    reply = await call(gw.clients.inventory.ListTransfers, request)
    items = [transfer_json(x) for x in reply.transfers]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/warehouses/{warehouse_id}/stocktakes",
    response_model=schemas_inventory_lists.StocktakePage,
    responses=LIST_RESPONSES,
)
async def list_stocktakes(
    warehouse_id: str,
    auth: Auth,
    gw: Gw,
    status: Annotated[StocktakeStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """The warehouse's stocktakes, newest counted first; status=pending_approval is what a
    manager has to decide."""
    await check_warehouse(gw, auth, warehouse_id)
    request = inventory_pb2.ListStocktakesRequest(
        warehouse_id=warehouse_id, status=status or "", page_size=limit, page_token=cursor or ""
    )
    reply = await call(gw.clients.inventory.ListStocktakes, request)
    items = [stocktake_json(x) for x in reply.stocktakes]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/warehouses/{warehouse_id}/purchase-orders",
    response_model=schemas_inventory_lists.PurchaseOrderPage,
    responses=LIST_RESPONSES,
)
async def list_purchase_orders(
    warehouse_id: str,
    auth: Auth,
    gw: Gw,
    status: Annotated[PurchaseOrderStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """The warehouse's purchase orders, newest first; status=open is what is still to come."""
    await check_warehouse(gw, auth, warehouse_id)
    request = inventory_pb2.ListPurchaseOrdersRequest(
        warehouse_id=warehouse_id, status=status or "", page_size=limit, page_token=cursor or ""
    )
    reply = await call(gw.clients.inventory.ListPurchaseOrders, request)
    items = [purchase_order_json(x) for x in reply.purchase_orders]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/purchase-orders/{purchase_order_id}",
    response_model=schemas_inventory.PurchaseOrder,
    responses={404: {"model": schemas.Problem, "description": "order outside your scope"}},
)
async def get_purchase_order(purchase_order_id: str, auth: Auth, gw: Gw) -> Response:
    order = await call(
        gw.clients.inventory.GetPurchaseOrder,
        inventory_pb2.GetPurchaseOrderRequest(purchase_order_id=purchase_order_id),
    )
    # Inventory scopes by the auth context too; this check keeps a slip there from leaking.
    await check_warehouse(gw, auth, order.warehouse_id)
    return json_response(purchase_order_json(order))
