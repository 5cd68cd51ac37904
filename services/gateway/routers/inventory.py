"""Parts catalog, warehouse stock and the stock ledger (库存台账), served by the inventory
service: warehouse keepers and managers book receipts and adjustments and read movements;
HQ checks that the ledger and the balances agree (守恒)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aftersales.inventory.v1 import inventory_pb2
from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_inventory, schemas_rules
from services.gateway.deps import Auth, Gateway, Gw, IdempotencyKey
from services.gateway.idempotency import run_once
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["inventory"], route_class=DocumentedRoute)

Filter = Annotated[str | None, Query(max_length=50)]

STOCK_DOCUMENT_ROLES = ("warehouse_keeper", "branch_manager", "hq_admin")
CONSERVATION_ROLES = ("hq_admin",)
QUOTA_ROLES = ("branch_manager", "hq_admin")
CATALOG_ROLES = ("hq_admin",)
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "role may not book stock documents"},
    404: {"model": schemas.Problem, "description": "warehouse or part outside your scope"},
    409: {"model": schemas.Problem, "description": "not enough available, or key in flight"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


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


def part_json(p: inventory_pb2.Part) -> dict[str, Any]:
    chain = list(p.superseded_chain)
    return {
        "part_number": p.part_number,
        "brand": p.brand,
        "description": p.description,
        "category": p.category,
        "compatible_models": list(p.compatible_models),
        "serialised": p.serialised,
        "standard_cost_fen": p.standard_cost_fen,
        "retail_price_fen": p.retail_price_fen,
        "superseded_by": or_none(p.superseded_by),
        "superseded_chain": chain,
        "current_part_number": chain[-1] if chain else p.part_number,
    }


@router.get("/parts", response_model=schemas_inventory.PartViewPage)
async def list_parts(
    auth: Auth,
    gw: Gw,
    brand: Filter = None,
    category: schemas_rules.PartCategory | None = None,
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
    items = [part_json(p) for p in reply.parts]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/parts/{part_number}",
    response_model=schemas_inventory.PartView,
    responses={404: {"model": schemas.Problem}},
)
async def get_part(part_number: str, auth: Auth, gw: Gw) -> Response:
    """A part of the catalog and the chain of parts that supersede it (替代料)."""
    p = await call(
        gw.clients.inventory.GetPart, inventory_pb2.GetPartRequest(part_number=part_number)
    )
    return json_response(part_json(p))


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
            "value_fen": level.value_fen,
        }
        for level in reply.levels
    ]
    return json_response({"warehouse": warehouse_json(reply.warehouse), "levels": levels})


def movement_json(movement: inventory_pb2.Movement) -> dict[str, Any]:
    return {
        "id": movement.id,
        "warehouse_id": movement.warehouse_id,
        "part_number": movement.part_number,
        "kind": movement.kind,
        "quantity": movement.quantity,
        "unit_cost_fen": movement.unit_cost_fen,
        "document_type": movement.document_type,
        "document_id": movement.document_id,
        "user_id": movement.user_id,
        "occurred_at": movement.occurred_at,
        "serials": list(movement.serials),
    }


async def check_warehouse(gw: Gateway, auth: AuthContext, warehouse_id: str) -> None:
    """Outside the caller's scope is 404 here as well as in inventory, so a slip in one layer
    does not let a document into another unit's warehouse."""
    reply = await call(gw.clients.inventory.ListWarehouses, inventory_pb2.ListWarehousesRequest())
    if not any(w.id == warehouse_id and visible(auth, w) for w in reply.warehouses):
        raise NotFound(f"no warehouse {warehouse_id} in your scope")


@router.post(
    "/warehouses/{warehouse_id}/receipts",
    status_code=201,
    response_model=schemas_inventory.Movement,
    responses=WRITE_RESPONSES,
)
async def record_receipt(
    warehouse_id: str,
    body: schemas_inventory.ReceiptIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """入库: the warehouse's on-hand rises and its moving-average cost follows."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        await check_warehouse(gw, auth, warehouse_id)
        message = inventory_pb2.RecordReceiptRequest(
            warehouse_id=warehouse_id,
            part_number=body.part_number,
            quantity=body.quantity,
            unit_cost_fen=body.unit_cost_fen,
            document_id=body.document_id or "",
            serials=body.serials,
        )
        movement = await call(gw.clients.inventory.RecordReceipt, message)
        return json_response(movement_json(movement), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.post(
    "/warehouses/{warehouse_id}/adjustments",
    status_code=201,
    response_model=schemas_inventory.Movement,
    responses=WRITE_RESPONSES,
)
async def record_adjustment(
    warehouse_id: str,
    body: schemas_inventory.AdjustmentIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """盘盈/盘亏: found units come in at the average cost, missing ones go out at it."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        await check_warehouse(gw, auth, warehouse_id)
        message = inventory_pb2.RecordAdjustmentRequest(
            warehouse_id=warehouse_id,
            part_number=body.part_number,
            quantity=body.quantity,
            reason=body.reason,
            document_id=body.document_id or "",
            serials=body.serials,
        )
        movement = await call(gw.clients.inventory.RecordAdjustment, message)
        return json_response(movement_json(movement), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.post(
    "/warehouses/{warehouse_id}/write-offs",
    status_code=201,
    response_model=schemas_inventory.Movement,
    responses=WRITE_RESPONSES,
)
async def record_write_off(
    warehouse_id: str,
    body: schemas_inventory.WriteOffIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """报废 or 返厂: available units leave the chain at the warehouse's average cost."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        await check_warehouse(gw, auth, warehouse_id)
        message = inventory_pb2.RecordWriteOffRequest(
            warehouse_id=warehouse_id,
            part_number=body.part_number,
            quantity=body.quantity,
            kind=body.kind,
            reason=body.reason,
            document_id=body.document_id or "",
            serials=body.serials,
        )
        movement = await call(gw.clients.inventory.RecordWriteOff, message)
        return json_response(movement_json(movement), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/warehouses/{warehouse_id}/movements",
    response_model=schemas_inventory.MovementPage,
    responses={404: {"model": schemas.Problem}},
)
async def list_movements(
    warehouse_id: str,
    auth: Auth,
    gw: Gw,
    part_number: Filter = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """The warehouse's ledger, newest first."""
    await check_warehouse(gw, auth, warehouse_id)
    request = inventory_pb2.ListMovementsRequest(
        warehouse_id=warehouse_id,
        part_number=part_number or "",
        page_size=limit,
        page_token=cursor or "",
    )
    reply = await call(gw.clients.inventory.ListMovements, request)
    items = [movement_json(m) for m in reply.movements]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/inventory/conservation",
    response_model=schemas_inventory.Conservation,
    responses={403: {"model": schemas.Problem}},
)
async def check_conservation(auth: Auth, gw: Gw, part_number: Filter = None) -> Response:
    """守恒 (hq_admin): per part, receipts - scrap - consumed - returned to the manufacturer
    +/- adjustments = on-hand over all warehouses + in transit; and in fen, value in - value
    out = value held + value in transit."""
    require_role(auth, CONSERVATION_ROLES)
    request = inventory_pb2.CheckConservationRequest(part_number=part_number or "")
    reply = await call(gw.clients.inventory.CheckConservation, request)
    parts = [
        {
            "part_number": p.part_number,
            "receipts": p.receipts,
            "scrapped": p.scrapped,
            "consumed": p.consumed,
            "returned_to_manufacturer": p.returned_to_manufacturer,
            "adjustments": p.adjustments,
            "transfers": p.transfers,
            "expected": p.expected,
            "on_hand": p.on_hand,
            "in_transit": p.in_transit,
            "balanced": p.balanced,
            "warehouses_off": list(p.warehouses_off),
            "serials_off": list(p.serials_off),
            "value_in_fen": p.value_in_fen,
            "value_out_fen": p.value_out_fen,
            "value_held_fen": p.value_held_fen,
            "value_in_transit_fen": p.value_in_transit_fen,
        }
        for p in reply.parts
    ]
    return json_response({"balanced": reply.balanced, "parts": parts})


TRANSFERS = "/api/v1/transfers"
TRANSFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "role or side may not do this step"},
    404: {"model": schemas.Problem, "description": "transfer outside your scope"},
    409: {
        "model": schemas.Problem,
        "description": "wrong status, not enough stock, or key in flight",
    },
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


def transfer_json(doc: inventory_pb2.Transfer) -> dict[str, Any]:
    return {
        "id": doc.id,
        "from_warehouse_id": doc.from_warehouse_id,
        "to_warehouse_id": doc.to_warehouse_id,
        "status": doc.status,
        "approved_branches": list(doc.approved_branches),
        "pending_branches": list(doc.pending_branches),
        "lines": [
            {
                "part_number": x.part_number,
                "quantity": x.quantity,
                "unit_cost_fen": x.unit_cost_fen,
                "received": x.received,
                "short": x.short,
                "damaged": x.damaged,
                "serials": list(x.serials),
                "short_serials": list(x.short_serials),
                "damaged_serials": list(x.damaged_serials),
            }
            for x in doc.lines
        ],
        "requested_by": doc.requested_by,
        "note": or_none(doc.note),
        "requested_at": doc.requested_at,
        "shipped_at": or_none(doc.shipped_at),
        "received_at": or_none(doc.received_at),
        "cancelled_at": or_none(doc.cancelled_at),
    }


@router.post(
    "/transfers",
    status_code=201,
    response_model=schemas_inventory.Transfer,
    responses=TRANSFER_RESPONSES,
)
async def request_transfer(
    body: schemas_inventory.TransferIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """调拨申请 by a keeper or manager of either warehouse; the branch approves it next."""

    async def handle() -> Response:
        message = inventory_pb2.RequestTransferRequest(
            from_warehouse_id=body.from_warehouse_id,
            to_warehouse_id=body.to_warehouse_id,
            lines=[
                inventory_pb2.TransferPartLine(
                    part_number=x.part_number, quantity=x.quantity, serials=x.serials
                )
                for x in body.lines
            ],
            note=body.note or "",
        )
        doc = await call(gw.clients.inventory.RequestTransfer, message)
        return json_response(transfer_json(doc), 201, {"Location": f"{TRANSFERS}/{doc.id}"})

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/transfers/{transfer_id}",
    response_model=schemas_inventory.Transfer,
    responses={404: {"model": schemas.Problem}},
)
async def get_transfer(transfer_id: str, auth: Auth, gw: Gw) -> Response:
    doc = await call(
        gw.clients.inventory.GetTransfer, inventory_pb2.TransferRequest(transfer_id=transfer_id)
    )
    # Inventory scopes by the auth context too; this check keeps a slip there from leaking.
    reply = await call(gw.clients.inventory.ListWarehouses, inventory_pb2.ListWarehousesRequest())
    ends = {doc.from_warehouse_id, doc.to_warehouse_id}
    if not any(w.id in ends and visible(auth, w) for w in reply.warehouses):
        raise NotFound(f"no transfer {transfer_id} in your scope")
    return json_response(transfer_json(doc))


async def transfer_step(
    rpc: Any, transfer_id: str, request: Request, auth: Auth, gw: Gw, key: str | None
) -> Response:
    async def handle() -> Response:
        doc = await call(rpc, inventory_pb2.TransferRequest(transfer_id=transfer_id))
        return json_response(transfer_json(doc))

    return await run_once(gw.idempotency, auth.user_id, key, request, handle)


@router.post(
    "/transfers/{transfer_id}/approve",
    response_model=schemas_inventory.Transfer,
    responses=TRANSFER_RESPONSES,
)
async def approve_transfer(
    transfer_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """审批: a branch manager for their branch (both branches when it crosses them), HQ for
    all."""
    rpc = gw.clients.inventory.ApproveTransfer
    return await transfer_step(rpc, transfer_id, request, auth, gw, idempotency_key)


@router.post(
    "/transfers/{transfer_id}/ship",
    response_model=schemas_inventory.Transfer,
    responses=TRANSFER_RESPONSES,
)
async def ship_transfer(
    transfer_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """发货 by the sender: out of its stock into transit at its average cost."""
    rpc = gw.clients.inventory.ShipTransfer
    return await transfer_step(rpc, transfer_id, request, auth, gw, idempotency_key)


@router.post(
    "/transfers/{transfer_id}/cancel",
    response_model=schemas_inventory.Transfer,
    responses=TRANSFER_RESPONSES,
)
async def cancel_transfer(
    transfer_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Called off before it ships."""
    rpc = gw.clients.inventory.CancelTransfer
    return await transfer_step(rpc, transfer_id, request, auth, gw, idempotency_key)


@router.post(
    "/transfers/{transfer_id}/receive",
    response_model=schemas_inventory.Transfer,
    responses=TRANSFER_RESPONSES,
)
async def receive_transfer(
    transfer_id: str,
    body: schemas_inventory.ReceiptOfTransferIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """收货 by the receiver: short and damaged units recorded and written off."""

    async def handle() -> Response:
        message = inventory_pb2.ReceiveTransferRequest(
            transfer_id=transfer_id,
            discrepancies=[
                inventory_pb2.ReceivedLine(
                    part_number=x.part_number,
                    short=x.short,
                    damaged=x.damaged,
                    short_serials=x.short_serials,
                    damaged_serials=x.damaged_serials,
                )
                for x in body.discrepancies
            ],
        )
        doc = await call(gw.clients.inventory.ReceiveTransfer, message)
        return json_response(transfer_json(doc))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


def quota_json(use: inventory_pb2.QuotaUse) -> dict[str, Any]:
    return {
        "warehouse_id": use.warehouse_id,
        "quota_fen": use.quota_fen,
        "held_fen": use.held_fen,
        "in_transit_fen": use.in_transit_fen,
        "old_parts_owed_fen": use.old_parts_owed_fen,
        "used_fen": use.used_fen,
        "headroom_fen": use.headroom_fen,
    }


@router.get(
    "/warehouses/{warehouse_id}/quota",
    response_model=schemas_inventory.QuotaUse,
    responses={404: {"model": schemas.Problem, "description": "no quota, or outside scope"}},
)
async def get_quota(warehouse_id: str, auth: Auth, gw: Gw) -> Response:
    """额度 of a franchised store and its use, for the store and its branch."""
    await check_warehouse(gw, auth, warehouse_id)
    use = await call(
        gw.clients.inventory.GetQuota, inventory_pb2.GetQuotaRequest(warehouse_id=warehouse_id)
    )
    return json_response(quota_json(use))


@router.put(
    "/warehouses/{warehouse_id}/quota",
    response_model=schemas_inventory.QuotaUse,
    responses=WRITE_RESPONSES,
)
async def set_quota(
    warehouse_id: str, body: schemas_inventory.QuotaIn, auth: Auth, gw: Gw
) -> Response:
    """Set by the store's branch manager (or HQ); setting it again to the same is the same."""
    require_role(auth, QUOTA_ROLES)
    await check_warehouse(gw, auth, warehouse_id)
    message = inventory_pb2.SetQuotaRequest(warehouse_id=warehouse_id, quota_fen=body.quota_fen)
    use = await call(gw.clients.inventory.SetQuota, message)
    return json_response(quota_json(use))


@router.get(
    "/warehouses/{warehouse_id}/old-parts",
    response_model=schemas_inventory.OwedOldParts,
    responses={404: {"model": schemas.Problem}},
)
async def list_old_parts_owed(
    warehouse_id: str, auth: Auth, gw: Gw, overdue: bool = False
) -> Response:
    """旧件: old parts the warehouse owes the manufacturers, line by line, oldest first."""
    await check_warehouse(gw, auth, warehouse_id)
    reply = await call(
        gw.clients.inventory.ListOldPartsOwed,
        inventory_pb2.ListOldPartsOwedRequest(warehouse_id=warehouse_id, overdue_only=overdue),
    )
    items = [
        {
            "order_id": x.order_id,
            "line_id": x.line_id,
            "part_number": x.part_number,
            "owed": x.owed,
            "unit_cost_fen": x.unit_cost_fen,
            "issued_at": x.issued_at,
            "due_at": x.due_at,
            "overdue": x.overdue,
        }
        for x in reply.parts
    ]
    return json_response({"items": items})


@router.post(
    "/warehouses/{warehouse_id}/old-part-returns",
    status_code=201,
    response_model=schemas_inventory.OldPartBatch,
    responses=WRITE_RESPONSES,
)
async def return_old_parts(
    warehouse_id: str,
    body: schemas_inventory.OldPartReturnIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A batch of old parts back to the manufacturer, matched line by line."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        await check_warehouse(gw, auth, warehouse_id)
        message = inventory_pb2.ReturnOldPartsRequest(
            warehouse_id=warehouse_id,
            lines=[
                inventory_pb2.OldPartLine(
                    order_id=x.order_id, line_id=x.line_id, quantity=x.quantity
                )
                for x in body.lines
            ],
            document_id=body.document_id or "",
        )
        batch = await call(gw.clients.inventory.ReturnOldParts, message)
        lines = [
            {"order_id": x.order_id, "line_id": x.line_id, "quantity": x.quantity}
            for x in batch.lines
        ]
        result = {
            "id": batch.id,
            "warehouse_id": batch.warehouse_id,
            "lines": lines,
            "created_by": batch.created_by,
            "created_at": batch.created_at,
        }
        return json_response(result, 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/inventory/slow-moving",
    response_model=schemas_inventory.SlowMoving,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def list_slow_moving(
    auth: Auth,
    gw: Gw,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
    warehouse_id: Filter = None,
) -> Response:
    """滞销品: parts on hand that nothing took out for `days`, most value first, over your
    scope (HQ the chain, a branch its warehouses, a store its own) or one warehouse."""
    if warehouse_id:
        await check_warehouse(gw, auth, warehouse_id)
    reply = await call(
        gw.clients.inventory.ListSlowMoving,
        inventory_pb2.ListSlowMovingRequest(days=days, warehouse_id=warehouse_id or ""),
    )
    items = [
        {
            "warehouse_id": x.warehouse_id,
            "part_number": x.part_number,
            "description": x.description,
            "on_hand": x.on_hand,
            "value_fen": x.value_fen,
            "last_outbound_at": or_none(x.last_outbound_at),
        }
        for x in reply.items
    ]
    return json_response({"days": days, "total_value_fen": reply.total_value_fen, "items": items})


def stocktake_json(doc: inventory_pb2.Stocktake) -> dict[str, Any]:
    return {
        "id": doc.id,
        "warehouse_id": doc.warehouse_id,
        "status": doc.status,
        "lines": [
            {
                "part_number": x.part_number,
                "book": x.book,
                "counted": x.counted,
                "difference": x.difference,
                "unit_cost_fen": x.unit_cost_fen,
                "missing_serials": list(x.missing_serials),
                "found_serials": list(x.found_serials),
            }
            for x in doc.lines
        ],
        "difference_value_fen": doc.difference_value_fen,
        "counted_by": doc.counted_by,
        "counted_at": doc.counted_at,
        "decided_by": or_none(doc.decided_by),
        "decided_at": or_none(doc.decided_at),
    }


@router.post(
    "/warehouses/{warehouse_id}/stocktakes",
    status_code=201,
    response_model=schemas_inventory.Stocktake,
    responses=WRITE_RESPONSES,
)
async def record_stocktake(
    warehouse_id: str,
    body: schemas_inventory.StocktakeIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """盘点: differences within the approval threshold are posted at once as adjustments;
    larger ones wait for a manager."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        await check_warehouse(gw, auth, warehouse_id)
        message = inventory_pb2.RecordStocktakeRequest(
            warehouse_id=warehouse_id,
            lines=[
                inventory_pb2.CountedLine(
                    part_number=x.part_number, counted=x.counted, serials=x.serials
                )
                for x in body.lines
            ],
        )
        doc = await call(gw.clients.inventory.RecordStocktake, message)
        return json_response(stocktake_json(doc), 201, {"Location": f"/api/v1/stocktakes/{doc.id}"})

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/stocktakes/{stocktake_id}",
    response_model=schemas_inventory.Stocktake,
    responses={404: {"model": schemas.Problem}},
)
async def get_stocktake(stocktake_id: str, auth: Auth, gw: Gw) -> Response:
    doc = await call(
        gw.clients.inventory.GetStocktake,
        inventory_pb2.GetStocktakeRequest(stocktake_id=stocktake_id),
    )
    await check_warehouse(gw, auth, doc.warehouse_id)
    return json_response(stocktake_json(doc))


async def decide_stocktake(
    stocktake_id: str, approve: bool, request: Request, auth: Auth, gw: Gw, key: str | None
) -> Response:
    async def handle() -> Response:
        message = inventory_pb2.DecideStocktakeRequest(stocktake_id=stocktake_id, approve=approve)
        doc = await call(gw.clients.inventory.DecideStocktake, message)
        return json_response(stocktake_json(doc))

    return await run_once(gw.idempotency, auth.user_id, key, request, handle)


@router.post(
    "/stocktakes/{stocktake_id}/approve",
    response_model=schemas_inventory.Stocktake,
    responses=WRITE_RESPONSES,
)
async def approve_stocktake(
    stocktake_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A branch manager (or HQ) approves: the differences are posted."""
    return await decide_stocktake(stocktake_id, True, request, auth, gw, idempotency_key)


@router.post(
    "/stocktakes/{stocktake_id}/reject",
    response_model=schemas_inventory.Stocktake,
    responses=WRITE_RESPONSES,
)
async def reject_stocktake(
    stocktake_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Rejected: nothing is posted; count again."""
    return await decide_stocktake(stocktake_id, False, request, auth, gw, idempotency_key)


def purchase_order_json(order: inventory_pb2.PurchaseOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "warehouse_id": order.warehouse_id,
        "supplier": order.supplier,
        "status": order.status,
        "lines": [
            {
                "part_number": x.part_number,
                "quantity": x.quantity,
                "unit_cost_fen": x.unit_cost_fen,
                "received": x.received,
            }
            for x in order.lines
        ],
        "created_by": order.created_by,
        "created_at": order.created_at,
    }


@router.put(
    "/warehouses/{warehouse_id}/reorder-levels/{part_number}",
    response_model=schemas_inventory.ReorderLevel,
    responses=WRITE_RESPONSES,
)
async def set_reorder_level(
    warehouse_id: str, part_number: str, body: schemas_inventory.ReorderLevelIn, auth: Auth, gw: Gw
) -> Response:
    """最低/最高库存 of a part in the warehouse; setting it again to the same is the same."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    await check_warehouse(gw, auth, warehouse_id)
    level = inventory_pb2.ReorderLevel(
        warehouse_id=warehouse_id,
        part_number=part_number,
        min_level=body.min_level,
        max_level=body.max_level,
        lead_time_days=body.lead_time_days,
    )
    reply = await call(
        gw.clients.inventory.SetReorderLevel, inventory_pb2.SetReorderLevelRequest(level=level)
    )
    return json_response(
        {
            "warehouse_id": reply.warehouse_id,
            "part_number": reply.part_number,
            "min_level": reply.min_level,
            "max_level": reply.max_level,
            "lead_time_days": reply.lead_time_days,
        }
    )


@router.get(
    "/warehouses/{warehouse_id}/reorder-suggestions",
    response_model=schemas_inventory.ReorderSuggestions,
    responses={404: {"model": schemas.Problem}},
)
async def suggest_reorders(
    warehouse_id: str,
    auth: Auth,
    gw: Gw,
    window_days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Response:
    """采购参考: parts with a reorder level that need ordering now, and how many."""
    await check_warehouse(gw, auth, warehouse_id)
    reply = await call(
        gw.clients.inventory.SuggestReorders,
        inventory_pb2.SuggestReordersRequest(warehouse_id=warehouse_id, window_days=window_days),
    )
    items = [
        {
            "part_number": x.part_number,
            "available": x.available,
            "in_transit": x.in_transit,
            "on_order": x.on_order,
            "daily_consumption": x.daily_consumption,
            "reorder_point": x.reorder_point,
            "quantity": x.quantity,
        }
        for x in reply.suggestions
    ]
    return json_response({"items": items})


@router.post(
    "/warehouses/{warehouse_id}/purchase-orders",
    status_code=201,
    response_model=schemas_inventory.PurchaseOrder,
    responses=WRITE_RESPONSES,
)
async def create_purchase_order(
    warehouse_id: str,
    body: schemas_inventory.PurchaseOrderIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """采购单 for the warehouse."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        await check_warehouse(gw, auth, warehouse_id)
        message = inventory_pb2.CreatePurchaseOrderRequest(
            warehouse_id=warehouse_id,
            supplier=body.supplier,
            lines=[
                inventory_pb2.PurchaseLine(
                    part_number=x.part_number, quantity=x.quantity, unit_cost_fen=x.unit_cost_fen
                )
                for x in body.lines
            ],
        )
        order = await call(gw.clients.inventory.CreatePurchaseOrder, message)
        return json_response(purchase_order_json(order), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.post(
    "/purchase-orders/{purchase_order_id}/receive",
    response_model=schemas_inventory.PurchaseOrder,
    responses=WRITE_RESPONSES,
)
async def receive_purchase_order(
    purchase_order_id: str,
    body: schemas_inventory.PurchaseReceiptIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """到货入库: into stock as receipts at the order's unit cost."""

    async def handle() -> Response:
        require_role(auth, STOCK_DOCUMENT_ROLES)
        message = inventory_pb2.ReceivePurchaseOrderRequest(
            purchase_order_id=purchase_order_id,
            lines=[
                inventory_pb2.ReceivedQuantity(part_number=x.part_number, quantity=x.quantity)
                for x in body.lines
            ],
        )
        order = await call(gw.clients.inventory.ReceivePurchaseOrder, message)
        return json_response(purchase_order_json(order))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.put(
    "/parts/{part_number}",
    response_model=schemas_inventory.PartView,
    responses={
        403: {"model": schemas.Problem, "description": "only HQ keeps the catalog"},
        409: {"model": schemas.Problem, "description": "successors would loop; flag fixed"},
        422: {"model": schemas.Problem, "description": "invalid input, by field"},
    },
)
async def put_part(
    part_number: str, body: schemas_inventory.PartIn, auth: Auth, gw: Gw
) -> Response:
    """HQ adds a part or changes one; setting it again to the same is the same."""
    require_role(auth, CATALOG_ROLES)
    message = inventory_pb2.Part(
        part_number=part_number,
        brand=body.brand,
        description=body.description,
        category=body.category,
        compatible_models=body.compatible_models,
        serialised=body.serialised,
        standard_cost_fen=body.standard_cost_fen,
        retail_price_fen=body.retail_price_fen,
        superseded_by=body.superseded_by or "",
    )
    p = await call(gw.clients.inventory.PutPart, message)
    return json_response(part_json(p))


def serial_json(item: inventory_pb2.SerialItem) -> dict[str, Any]:
    return {
        "serial": item.serial_number,
        "part_number": item.part_number,
        "state": item.state,
        "warehouse_id": or_none(item.warehouse_id),
        "transfer_id": or_none(item.transfer_id),
        "order_id": or_none(item.order_id),
        "line_id": or_none(item.line_id),
        "unit_cost_fen": item.unit_cost_fen,
    }


@router.get(
    "/serials/{serial}",
    response_model=schemas_inventory.SerialTrace,
    responses={404: {"model": schemas.Problem, "description": "never in your scope"}},
)
async def get_serial(serial: str, auth: Auth, gw: Gw) -> Response:
    """串号: where a serialised item (mainboard, swap unit) is now, and every movement of it,
    for anyone whose scope it has passed through."""
    trace = await call(
        gw.clients.inventory.GetSerial, inventory_pb2.GetSerialRequest(serial_number=serial)
    )
    history = [movement_json(m) for m in trace.history]
    return json_response({**serial_json(trace.item), "history": history})


@router.get(
    "/warehouses/{warehouse_id}/serials",
    response_model=schemas_inventory.Serials,
    responses={404: {"model": schemas.Problem}},
)
async def list_serials(
    warehouse_id: str, auth: Auth, gw: Gw, part_number: Filter = None
) -> Response:
    """The serials in stock in the warehouse (held for an order or free), by part."""
    await check_warehouse(gw, auth, warehouse_id)
    reply = await call(
        gw.clients.inventory.ListSerials,
        inventory_pb2.ListSerialsRequest(warehouse_id=warehouse_id, part_number=part_number or ""),
    )
    return json_response({"items": [serial_json(x) for x in reply.serials]})
