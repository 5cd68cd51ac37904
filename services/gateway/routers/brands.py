"""Brands and their models, as the intake form offers them (orders service base data)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from aftersales.orders.v1 import orders_pb2
from servicekit.grpc_client import call
from services.gateway import schemas
from services.gateway.deps import Auth, Gw
from services.gateway.render import DocumentedRoute, json_response

router = APIRouter(prefix="/api/v1", tags=["brands"], route_class=DocumentedRoute)


@router.get("/brands", response_model=schemas.Brands)
async def list_brands(auth: Auth, gw: Gw) -> Response:
    reply = await call(gw.clients.orders.ListBrands, orders_pb2.ListBrandsRequest())
    items = [
        {
            "code": brand.code,
            "name": brand.name,
            "models": [{"code": m.code, "name": m.name} for m in brand.models],
        }
        for brand in reply.brands
    ]
    return json_response({"items": items})
