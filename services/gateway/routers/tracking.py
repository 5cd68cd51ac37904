"""The tracking link (进度查询): `GET /track/{token}` answers without signing in, with the
order's status, steps, store and promised date and nothing personal; rate-limited per client
address; an unknown or expired token is 404 alike."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from aftersales.customers.v1 import notifications_pb2
from servicekit.auth import PUBLIC_CALLER, set_auth
from servicekit.errors import NotFound, TooManyRequests
from servicekit.grpc_client import call
from services.gateway import console, schemas, schemas_notifications
from services.gateway.deps import Gw
from services.gateway.render import DocumentedRoute, iso_shanghai, iso_utc, json_response, or_none

router = APIRouter(tags=["tracking"], route_class=DocumentedRoute)

MAX_TOKEN_LENGTH = 64
Token = Annotated[str, Path(max_length=200)]


@router.get(
    "/track/{token}",
    response_model=schemas_notifications.Tracking,
    responses={404: {"model": schemas.Problem}, 429: {"model": schemas.Problem}},
)
async def track(token: Token, request: Request, gw: Gw) -> Response:
    """A browser (Accept: text/html) gets the console's tracking page, which asks this same
    address for the JSON; programs get the JSON."""
    if console.wants_page(request):
        return console.console_of(request).page()
    address = request.client.host if request.client else "unknown"
    wait = gw.public_limiter.acquire(f"track:{address}")
    if wait:
        error = TooManyRequests("too many look-ups from your address, slow down")
        error.retry_after_seconds = math.ceil(wait)
        raise error
    if len(token) > MAX_TOKEN_LENGTH:
        raise NotFound("no such tracking link, or it has expired")
    # The public's caller: GetTracking serves it (the token in the URL is the credential),
    # every other RPC refuses it.
    set_auth(PUBLIC_CALLER)
    shown = await call(
        gw.clients.notifications.GetTracking, notifications_pb2.GetTrackingRequest(token=token)
    )
    body = {
        "number": shown.number,
        "status": shown.status,
        "service_type": shown.service_type,
        "branch_id": shown.branch_id,
        "store_id": shown.store_id,
        "promised_date": or_none(shown.promised_date),
        "received_at": iso_utc(shown.received_at),
        "steps": [
            {"status": s.status, "at": iso_utc(s.at), "at_local": iso_shanghai(s.at)}
            for s in shown.steps
        ],
        "updated_at": iso_utc(shown.updated_at),
        "expires_at": iso_utc(shown.expires_at),
    }
    # The token is in the URL: keep it out of caches and out of other sites' Referer.
    return json_response(
        body,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Vary": "Accept"},
    )
