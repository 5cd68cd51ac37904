"""The console's inventory lists end to end: the gateway over ASGI in front of the real
inventory service (its own database, real gRPC); the other services are fakes. Documents are
made through the API itself; every answer is checked against the route's response model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from servicekit.grpc_server import SERVING, new_server
from servicekit.runtime import close_runtime, open_runtime
from servicekit.testing import (
    DatabaseTarget,
    NatsServer,
    database_target,
    drop_schema,
    service_settings,
    session_trust,
)
from services.gateway.app import create_app
from services.gateway.schemas_inventory import PurchaseOrder
from services.gateway.schemas_inventory_lists import PurchaseOrderPage, StocktakePage, TransferPage
from services.gateway.settings import SERVICES
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, make_settings
from services.inventory.service import SPEC

PART = "HW-BAT-P60"
pytestmark = pytest.mark.service("gateway")


@pytest.fixture
async def inventory_address(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[str]:
    target = database_target("inventory", tmp_path)
    runtime = await open_runtime(
        SPEC, service_settings("inventory", target, nats_server.url, demo_data=True)
    )
    server, health = new_server(SPEC.name, session_trust())
    SPEC.register(server, runtime)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    yield f"127.0.0.1:{port}"
    await server.stop(None)
    await close_runtime(runtime)
    await drop_schema(target)


@pytest.fixture
async def api(
    db_target: DatabaseTarget, fakes: FakeServices, inventory_address: str
) -> AsyncIterator[httpx.AsyncClient]:
    addresses = dict.fromkeys(SERVICES, fakes.address) | {"inventory": inventory_address}
    app = create_app(make_settings(db_target, fakes.address, service_addresses=addresses))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http


async def get(
    api: httpx.AsyncClient, path: str, headers: dict[str, str], model: type[BaseModel]
) -> dict[str, Any]:
    reply = await api.get(path, headers=headers)
    assert reply.status_code == 200, reply.text
    model.model_validate(reply.json(), strict=True)
    body: dict[str, Any] = reply.json()
    return body


async def every_page(
    api: httpx.AsyncClient, path: str, headers: dict[str, str], model: type[BaseModel]
) -> tuple[list[str], int]:
    """The ids over every page of a list, and how many pages it took."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"&cursor={cursor}" if cursor else ""
        body = await get(api, f"{path}{query}", headers, model)
        ids += [x["id"] for x in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


async def post(api: httpx.AsyncClient, path: str, body: object, headers: dict[str, str]) -> str:
    reply = await api.post(path, json=body, headers=headers)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def transfer(source: str, target: str) -> dict[str, object]:
    return {
        "from_warehouse_id": source,
        "to_warehouse_id": target,
        "lines": [{"part_number": PART, "quantity": 1}],
    }


async def test_transfers_page_through_scope_and_the_branch_queue(api: httpx.AsyncClient) -> None:
    keeper = await auth_headers(api, "sh001.keeper")
    made = [
        await post(api, "/api/v1/transfers", transfer("WH-SH-001", "WH-SH-002"), keeper)
        for _ in range(5)
    ]
    ids, pages = await every_page(
        api, "/api/v1/transfers?warehouse_id=WH-SH-001&limit=2", keeper, TransferPage
    )
    assert (ids, pages) == (list(reversed(made)), 3)

    # Another branch's keeper: the warehouse is unknown, and their own list is empty.
    other = await auth_headers(api, "zj001.keeper")
    hidden = await api.get("/api/v1/transfers?warehouse_id=WH-SH-001", headers=other)
    assert hidden.status_code == 404
    assert (await get(api, "/api/v1/transfers", other, TransferPage))["items"] == []

    manager = await auth_headers(api, "sh.manager")
    queue = await get(api, "/api/v1/transfers?pending_branch=SH&limit=100", manager, TransferPage)
    assert [x["id"] for x in queue["items"]] == list(reversed(made))
    assert all(x["pending_branches"] == ["SH"] for x in queue["items"])
    approved = await api.post(f"/api/v1/transfers/{made[0]}/approve", headers=manager)
    assert approved.status_code == 200, approved.text
    queue = await get(api, "/api/v1/transfers?pending_branch=SH", manager, TransferPage)
    assert made[0] not in [x["id"] for x in queue["items"]]
    done = await get(api, "/api/v1/transfers?status=approved", manager, TransferPage)
    assert [x["id"] for x in done["items"]] == [made[0]]
    zj = await auth_headers(api, "zj.manager")
    assert (await api.get("/api/v1/transfers?pending_branch=SH", headers=zj)).status_code == 404


async def test_stocktakes_and_purchase_orders_page_by_warehouse(api: httpx.AsyncClient) -> None:
    keeper = await auth_headers(api, "sh001.keeper")
    counts = {"lines": [{"part_number": PART, "counted": 900}]}
    waiting = [
        await post(api, "/api/v1/warehouses/WH-SH-001/stocktakes", counts, keeper) for _ in range(3)
    ]
    manager = await auth_headers(api, "sh.manager")
    ids, pages = await every_page(
        api,
        "/api/v1/warehouses/WH-SH-001/stocktakes?status=pending_approval&limit=2",
        manager,
        StocktakePage,
    )
    assert (ids, pages) == (list(reversed(waiting)), 2)

    order = {
        "supplier": "华为配件",
        "lines": [{"part_number": PART, "quantity": 3, "unit_cost_fen": 9000}],
    }
    orders = [
        await post(api, "/api/v1/warehouses/WH-SH-001/purchase-orders", order, keeper)
        for _ in range(3)
    ]
    ids, pages = await every_page(
        api,
        "/api/v1/warehouses/WH-SH-001/purchase-orders?status=open&limit=1",
        keeper,
        PurchaseOrderPage,
    )
    assert (ids, pages) == (list(reversed(orders)), 3)
    one = await get(api, f"/api/v1/purchase-orders/{orders[1]}", manager, PurchaseOrder)
    assert (one["id"], one["status"], one["lines"][0]["quantity"]) == (orders[1], "open", 3)

    other = await auth_headers(api, "sh002.keeper")
    for path in (
        "/api/v1/warehouses/WH-SH-001/stocktakes",
        "/api/v1/warehouses/WH-SH-001/purchase-orders",
        f"/api/v1/purchase-orders/{orders[1]}",
    ):
        assert (await api.get(path, headers=other)).status_code == 404, path


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/transfers?status=lost", "status"),
        ("/api/v1/transfers?limit=0", "limit"),
        ("/api/v1/transfers?limit=101", "limit"),
        ("/api/v1/warehouses/WH-SH-001/stocktakes?status=open", "status"),
        ("/api/v1/warehouses/WH-SH-001/purchase-orders?status=posted", "status"),
        ("/api/v1/warehouses/WH-SH-001/purchase-orders?cursor=nonsense", "cursor"),
    ],
)
async def test_bad_filters_are_problems_naming_the_field(
    api: httpx.AsyncClient, path: str, field: str
) -> None:
    keeper = await auth_headers(api, "sh001.keeper")
    reply = await api.get(path, headers=keeper)
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in reply.json()["errors"]] == [field]
