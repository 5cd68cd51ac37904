"""Health, readiness, metrics, and the benchmark's baseline ping."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from aftersales.orders.v1 import orders_pb2
from servicekit.grpc_client import call
from services.gateway.deps import Auth, Gateway, Gw
from services.gateway.render import json_response

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


async def _database_up(gw: Gateway) -> bool:
    try:
        await asyncio.wait_for(gw.db.ping(), 2.0)
    except Exception:
        return False
    return True


@router.get("/readyz")
async def readyz(gw: Gw) -> Response:
    """Ready when the database and every service answer; 503 naming those that do not."""
    database_up, services_down = await asyncio.gather(_database_up(gw), gw.clients.down())
    down = services_down if database_up else ["database", *services_down]
    if down:
        return json_response({"status": "unavailable", "down": down}, 503)
    return json_response({"status": "ok", "down": []})


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/ping")
async def ping(auth: Auth, gw: Gw) -> Response:
    """The gateway -> gRPC path doing no work: what the benchmark measures the rest against."""
    await call(gw.clients.orders.Ping, orders_pb2.PingRequest())
    return json_response({"ok": True})
