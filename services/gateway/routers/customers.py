"""Customers, shared chain-wide: any store finds a returning customer by exact phone or IMEI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.customers.v1 import customers_pb2
from servicekit.errors import FieldError, InvalidInput
from servicekit.grpc_client import call
from servicekit.identifiers import mask_phone
from services.gateway import schemas
from services.gateway.deps import Auth, Gw
from services.gateway.render import iso_utc, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["customers"])

Key = Annotated[str | None, Query(min_length=1, max_length=50)]


@router.get(
    "/customers",
    response_model=schemas.Customer,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def find_customer(auth: Auth, gw: Gw, phone: Key = None, imei: Key = None) -> Response:
    if (phone is None) == (imei is None):
        reason = "give exactly one of phone or imei"
        raise InvalidInput(reason, [FieldError("phone", reason), FieldError("imei", reason)])
    request = (
        customers_pb2.FindCustomerRequest(phone=phone)
        if phone is not None
        else customers_pb2.FindCustomerRequest(imei=imei or "")
    )
    customer = await call(gw.clients.customers.FindCustomer, request)
    return json_response(
        {
            "id": customer.id,
            "name": customer.name,
            # Found by phone, the caller knew the number already; found by IMEI, they did not.
            "phone": customer.phone if phone is not None else mask_phone(customer.phone),
            "devices": [
                {
                    "imei": d.imei,
                    "brand": d.brand,
                    "model": d.model,
                    "first_seen_at": iso_utc(d.first_seen_at),
                }
                for d in customer.devices
            ],
            "order_count": customer.order_count,
            "last_seen_at": iso_utc(customer.last_seen_at),
            "last_store_id": or_none(customer.last_store_id),
        }
    )
