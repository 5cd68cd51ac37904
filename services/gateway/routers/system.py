"""Health, readiness, metrics, and the benchmark's baseline ping."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from aftersales.orders.v1 import orders_pb2
from servicekit.auth import require_role
from servicekit.grpc_client import call
from services.gateway import schemas
from services.gateway.deps import Auth, Gateway, Gw
from services.gateway.render import DocumentedRoute, json_response

router = APIRouter(tags=["system"], route_class=DocumentedRoute)


@router.get("/healthz", response_model=schemas.Health)
async def healthz() -> Response:
    return json_response({"status": "ok"})


# An answer a probe can wait for; the kubelet's own timeout is longer.
CHECK_SECONDS = 2.0
STATUS_ROLES = ("hq_admin",)


async def _database_up(gw: Gateway) -> bool:
    try:
        await asyncio.wait_for(gw.db.ping(), CHECK_SECONDS)
    except Exception:
        return False
    return True


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    responses={503: {"model": schemas.Readiness, "description": "the database does not answer"}},
)
async def readyz(gw: Gw) -> Response:
    """Ready when what the gateway itself needs answers: its database. The services are not
    asked: one of them down (reporting, say) must not take intake down with it; their health
    is on /api/v1/status."""
    if not await _database_up(gw):
        return json_response({"status": "unavailable", "down": ["database"]}, 503)
    return json_response({"status": "ok", "down": []})


async def _services_down(gw: Gateway) -> list[str]:
    try:
        return await asyncio.wait_for(gw.clients.down(), CHECK_SECONDS)
    except TimeoutError:
        return list(gw.clients.channels)


@router.get("/api/v1/status", response_model=schemas.SystemStatus)
async def status(auth: Auth, gw: Gw) -> Response:
    """What answers and what does not, for HQ's administrators: each service's health and the
    gateway's database. Always 200: it reports, it does not fail."""
    require_role(auth, STATUS_ROLES)
    database_up, services_down = await asyncio.gather(_database_up(gw), _services_down(gw))
    services = {
        name: "down" if name in services_down else "serving" for name in gw.clients.channels
    }
    healthy = database_up and not services_down
    return json_response(
        {
            "status": "ok" if healthy else "degraded",
            "database": "serving" if database_up else "down",
            "services": services,
        }
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/ping", response_model=schemas.Pong)
async def ping(auth: Auth, gw: Gw) -> Response:
    """The gateway -> gRPC path doing no work: what the benchmark measures the rest against."""
    await call(gw.clients.orders.Ping, orders_pb2.PingRequest())
    return json_response({"ok": True})
