"""Work orders (维修工单): intake, look-up and listing, served by the orders service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from aftersales.orders.v1 import orders_pb2
from servicekit.auth import AuthContext
from servicekit.errors import invalid
from servicekit.grpc_client import call
from servicekit.idempotency import request_hash
from services.gateway import schemas
from services.gateway.deps import Auth, Gw
from services.gateway.idempotency import HEADER, run_once
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.privacy import phone_for
from services.gateway.render import iso_shanghai, iso_utc, json_response, or_none
from services.gateway.scope import OrgTree

router = APIRouter(prefix="/api/v1", tags=["repair orders"])

PATH = "/api/v1/repair-orders"
Filter = Annotated[str | None, Query(max_length=50)]


def order_json(order: orders_pb2.RepairOrder, auth: AuthContext) -> dict[str, Any]:
    device, fault, warranty = order.device, order.fault, order.warranty
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "service_type": order.service_type,
        "branch_id": order.branch_id,
        "store_id": order.store_id,
        "customer": {
            "name": order.customer.name,
            "phone": phone_for(auth, order.store_id, order.customer.phone),
        },
        "device": {
            "imei": device.imei,
            "brand": device.brand,
            "model": device.model,
            "colour": or_none(device.colour),
            "purchase_date": or_none(device.purchase_date),
        },
        "fault": {
            "description": fault.description,
            "symptom_code": or_none(fault.symptom_code),
        },
        "warranty": {
            "status": warranty.status,
            "entitlements": list(warranty.entitlements),
            "reason": or_none(warranty.reason),
            "expires_on": or_none(warranty.expires_on),
            "send_on_required": warranty.send_on_required,
        },
        "brand_authorised": order.brand_authorised,
        "repeat_repair": order.repeat_repair,
        "accessories": or_none(order.accessories),
        "appearance": or_none(order.appearance),
        "promised_date": or_none(order.promised_date),
        "received_at": iso_utc(order.received_at),
        "received_at_local": iso_shanghai(order.received_at),
        "created_by": order.created_by,
        "timeline": [
            {
                "status": entry.status,
                "at": iso_utc(entry.at),
                "user_id": entry.user_id,
                "store_id": or_none(entry.store_id),
                "note": or_none(entry.note),
            }
            for entry in order.timeline
        ],
    }


def intake_store(tree: OrgTree, auth: AuthContext, store_id: str | None) -> tuple[str, str]:
    """(branch, store) an order is taken in: a store user's own store; HQ and branch users
    must name a store within their scope."""
    if auth.store_id:
        return tree.store_in_scope(auth, store_id or auth.store_id)
    if not store_id:
        raise invalid("store_id", "name the store that takes the order in")
    return tree.store_in_scope(auth, store_id)


@router.post(
    "/repair-orders",
    status_code=201,
    response_model=schemas.RepairOrder,
    responses={
        404: {"model": schemas.Problem, "description": "store outside your scope"},
        409: {"model": schemas.Problem, "description": "same Idempotency-Key still in flight"},
        422: {"model": schemas.Problem, "description": "invalid input, by field"},
    },
)
async def create_repair_order(
    body: schemas.RepairOrderIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: Annotated[str | None, Header(alias=HEADER)] = None,
) -> Response:
    async def handle() -> Response:
        branch_id, store_id = intake_store(gw.tree, auth, body.store_id)
        device, fault = body.device, body.fault
        message = orders_pb2.CreateRepairOrderRequest(
            branch_id=branch_id,
            store_id=store_id,
            customer=orders_pb2.Customer(name=body.customer.name, phone=body.customer.phone),
            device=orders_pb2.Device(
                imei=device.imei,
                brand=device.brand,
                model=device.model,
                colour=device.colour or "",
                purchase_date=device.purchase_date or "",
            ),
            fault=orders_pb2.Fault(
                description=fault.description, symptom_code=fault.symptom_code or ""
            ),
            service_type=body.service_type,
            accessories=body.accessories or "",
            appearance=body.appearance or "",
            promised_date=body.promised_date or "",
        )
        if idempotency_key:
            # orders honours the key for the same lifetime, and only for this same request.
            message.request_id = f"{auth.user_id}:{idempotency_key}"
            message.request_hash = request_hash(message)
        order = await call(gw.clients.orders.CreateRepairOrder, message)
        return json_response(order_json(order, auth), 201, {"Location": f"{PATH}/{order.id}"})

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/repair-orders/{order_id}",
    response_model=schemas.RepairOrder,
    responses={404: {"model": schemas.Problem}},
)
async def get_repair_order(order_id: str, auth: Auth, gw: Gw) -> Response:
    order = await call(
        gw.clients.orders.GetRepairOrder, orders_pb2.GetRepairOrderRequest(id=order_id)
    )
    return json_response(order_json(order, auth))


@router.get("/repair-orders", response_model=schemas.RepairOrderPage)
async def list_repair_orders(
    auth: Auth,
    gw: Gw,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Filter = None,
    service_type: Filter = None,
    imei: Filter = None,
    phone: Filter = None,
    store_id: Filter = None,
    branch_id: Filter = None,
    received_from: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
    received_to: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")] = None,
) -> Response:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = orders_pb2.ListRepairOrdersRequest(
        page_size=limit,
        page_token=cursor or "",
        branch_id=branch,
        store_id=store,
        status=status or "",
        service_type=service_type or "",
        imei=imei or "",
        phone=phone or "",
        received_from=schemas.check_day("received_from", received_from),
        received_to=schemas.check_day("received_to", received_to),
    )
    reply = await call(gw.clients.orders.ListRepairOrders, request)
    return json_response(page([order_json(o, auth) for o in reply.orders], reply.next_page_token))
