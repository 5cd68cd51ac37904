"""What operators and frontends rely on besides the resources: health, readiness, metrics,
the OpenAPI document, the brand list, graceful shutdown."""

from __future__ import annotations

import httpx

from devtools.system import SERVICES, LocalSystem
from tests.e2e.conftest import Api


async def test_health_readiness_and_openapi(api: Api) -> None:
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/readyz")).status_code == 200
    spec = (await api.client.get("/openapi.json")).json()
    assert "/api/v1/repair-orders" in spec["paths"]
    assert (await api.client.get("/docs")).status_code == 200


async def test_every_process_exposes_prometheus_metrics(system: LocalSystem, api: Api) -> None:
    gateway = (await api.client.get("/metrics")).text
    assert "aftersales_http_requests_total" in gateway
    async with httpx.AsyncClient() as client:
        for name in SERVICES:
            port = system.config.metrics_ports[name]
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            assert "aftersales_grpc_server_handled_total" in text, name


async def test_brands_list_feeds_the_intake_form(api: Api) -> None:
    reply = await api.get("sh001.clerk", "/api/v1/brands")
    assert reply.status_code == 200
    brands = {b["code"]: b for b in reply.json()["items"]}
    assert {"huawei", "xiaomi", "oppo", "vivo", "honor", "apple", "samsung"} <= set(brands)
    assert any(m["code"] == "p60" for m in brands["huawei"]["models"])


async def test_demo_stock_is_readable_within_scope(api: Api) -> None:
    warehouses = (await api.get("sh001.keeper", "/api/v1/warehouses")).json()["items"]
    assert [w["id"] for w in warehouses] == ["WH-SH-001"]
    stock = await api.get("sh001.keeper", "/api/v1/warehouses/WH-SH-001/stock")
    assert stock.status_code == 200
    assert stock.json()["levels"], "demo stock is loaded"
    assert (await api.get("sh001.keeper", "/api/v1/warehouses/WH-ZJ-001/stock")).status_code == 404
    parts = await api.get("sh001.keeper", "/api/v1/parts", brand="huawei")
    assert parts.status_code == 200 and parts.json()["items"]


async def test_services_stop_gracefully_on_sigterm(system: LocalSystem) -> None:
    assert system.terminate("customers") == 0
    await system.restart("customers")
