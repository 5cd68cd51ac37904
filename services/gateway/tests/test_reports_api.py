"""The report centre's routes over a fake reporting service on a real gRPC port: the caller's
scope is checked before anything is asked, the answer keeps its older fields and carries every
figure, the drill-down pages through the service's cursor, and the OpenAPI page describes each
figure in the contract's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from servicekit.errors import invalid
from servicekit.grpc_server import SERVING, new_server
from servicekit.testing import DatabaseTarget
from servicekit.timeutil import to_timestamp
from services.gateway.app import create_app
from services.gateway.settings import SERVICES
from services.gateway.tests.fakes import RECEIVED_AT, FakeServices, Seen
from services.gateway.tests.helpers import auth_headers, make_settings


class FakeReports(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetKpis(self, request: Any, context: Any) -> reporting_pb2.Kpis:
        auth = self.seen.note(request, context)
        branch, store = auth.narrow(request.branch_id or None, request.store_id or None)
        figures = reporting_pb2.Figures(received=3, closed=2, repeat_received=1, ready=2)
        figures.repeat_repair_rate = 1 / 3
        figures.turnaround_median_hours = 25.0
        return reporting_pb2.Kpis(
            branch_id=branch or "",
            store_id=store or "",
            date_from=request.date_from,
            date_to=request.date_to,
            orders_received=3,
            by_store=[
                reporting_pb2.StoreKpis(branch_id="SH", store_id="SH-001", orders_received=3)
            ],
            by_service_type=[
                reporting_pb2.ServiceTypeKpis(service_type="repair", orders_received=2),
                reporting_pb2.ServiceTypeKpis(service_type="swap", orders_received=1),
            ],
            figures=figures,
            by_split=[
                reporting_pb2.SplitFigures(
                    service_type="repair",
                    brand="huawei",
                    figures=reporting_pb2.Figures(received=2),
                )
            ],
            by_unit=[
                reporting_pb2.UnitFigures(branch_id="SH", figures=reporting_pb2.Figures(closed=2))
            ],
            backlog=reporting_pb2.Backlog(
                open=[reporting_pb2.AgeBucket(age="0-2", orders=4)], swap_limit_near=1
            ),
            technicians=[
                reporting_pb2.TechnicianFigures(
                    technician_id="u-tech",
                    branch_id="SH",
                    store_id="SH-001",
                    completed=5,
                    came_back=1,
                    repeat_rate=0.2,
                )
            ],
        )

    async def ListFigureOrders(self, request: Any, context: Any) -> reporting_pb2.FigureOrders:
        self.seen.note(request, context)
        if request.figure == "everything":
            raise invalid("figure", "must be one of received, closed")
        order = reporting_pb2.FigureOrder(
            order_id="o-1",
            number="SH-001-260301-0001",
            branch_id="SH",
            store_id="SH-001",
            service_type="repair",
            brand="huawei",
            warranty_status="in_warranty",
            status="closed",
            received_at=to_timestamp(RECEIVED_AT),
            technician_id="u-tech",
            satisfaction=4,
        )
        token = "" if request.page_token else "page-2"
        return reporting_pb2.FigureOrders(orders=[order], next_page_token=token)


@pytest.fixture
async def reports() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    server, health = new_server("fake-reporting")
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(FakeReports(seen), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    yield f"127.0.0.1:{port}", seen
    await server.stop(0)


@pytest.fixture
async def client(
    db_target: DatabaseTarget, fakes: FakeServices, reports: tuple[str, Seen]
) -> AsyncIterator[httpx.AsyncClient]:
    addresses = {**dict.fromkeys(SERVICES, fakes.address), "reporting": reports[0]}
    app = create_app(make_settings(db_target, fakes.address, service_addresses=addresses))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http


async def test_kpis_keep_their_fields_and_carry_every_figure(
    client: httpx.AsyncClient, reports: tuple[str, Seen]
) -> None:
    manager = await auth_headers(client, "sh.manager")
    reply = await client.get(
        "/api/v1/reports/kpis",
        params={"store_id": "SH-001", "date_from": "2026-03-01", "date_to": "2026-03-31"},
        headers=manager,
    )
    assert reply.status_code == 200
    body = reply.json()
    assert {name: body[name] for name in list(body)[:7]} == {
        "branch_id": "SH",
        "store_id": "SH-001",
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
        "orders_received": 3,
        "by_store": [{"branch_id": "SH", "store_id": "SH-001", "orders_received": 3}],
        "by_service_type": [
            {"service_type": "repair", "orders_received": 2},
            {"service_type": "swap", "orders_received": 1},
        ],
    }
    figures = body["figures"]
    assert (figures["received"], figures["closed"], figures["repeat_received"]) == (3, 2, 1)
    assert figures["repeat_repair_rate"] == pytest.approx(1 / 3)
    assert figures["turnaround_median_hours"] == 25.0
    # Nothing to divide by: null, not 0.
    assert figures["on_time_rate"] is None and figures["average_satisfaction"] is None
    assert body["by_split"][0]["figures"]["received"] == 2
    assert body["by_unit"] == [
        {"branch_id": "SH", "store_id": None, "figures": body["by_unit"][0]["figures"]}
    ]
    assert body["backlog"]["open"] == [{"age": "0-2", "orders": 4}]
    assert body["backlog"]["swap_limit_near"] == 1
    assert body["technicians"] == [
        {
            "technician_id": "u-tech",
            "branch_id": "SH",
            "store_id": "SH-001",
            "completed": 5,
            "turnaround_mean_hours": None,
            "came_back": 1,
            "repeat_rate": 0.2,
            "average_satisfaction": None,
        }
    ]
    request = reports[1].requests[-1]
    # The store as asked; the reporting service narrows it to the caller's branch.
    assert (request.branch_id, request.store_id) == ("", "SH-001")


async def test_out_of_scope_and_bad_input_are_refused_before_asking(
    client: httpx.AsyncClient, reports: tuple[str, Seen]
) -> None:
    manager = await auth_headers(client, "sh.manager")
    for path in ("/api/v1/reports/kpis", "/api/v1/reports/kpis/orders"):
        for params in (
            {"branch_id": "ZJ"},
            {"store_id": "ZJ-001"},
            {"branch_id": "SH", "store_id": "ZJ-001"},
        ):
            outside = await client.get(
                path, params={"figure": "received", **params}, headers=manager
            )
            assert outside.status_code == 404, (path, params)
        bad = await client.get(
            path, params={"figure": "received", "date_to": "31/3/2026"}, headers=manager
        )
        assert bad.status_code == 422
        assert bad.json()["errors"] == [{"field": "date_to", "reason": "must be a date YYYY-MM-DD"}]
    assert reports[1].requests == []
    no_figure = await client.get("/api/v1/reports/kpis/orders", headers=manager)
    assert no_figure.status_code == 422
    clerk = await auth_headers(client, "sh001.clerk")
    other_store = await client.get(
        "/api/v1/reports/kpis", params={"store_id": "SH-002"}, headers=clerk
    )
    assert other_store.status_code == 404


async def test_the_orders_behind_a_figure_page_through_the_services_cursor(
    client: httpx.AsyncClient, reports: tuple[str, Seen]
) -> None:
    manager = await auth_headers(client, "sh.manager")
    first = await client.get(
        "/api/v1/reports/kpis/orders",
        params={"figure": "closed", "store_id": "SH-001", "limit": 1},
        headers=manager,
    )
    assert first.status_code == 200
    assert first.json() == {
        "items": [
            {
                "order_id": "o-1",
                "number": "SH-001-260301-0001",
                "branch_id": "SH",
                "store_id": "SH-001",
                "service_type": "repair",
                "brand": "huawei",
                "warranty_status": "in_warranty",
                "status": "closed",
                "received_at": "2026-03-01T02:30:00.000Z",
                "ready_at": None,
                "closed_at": None,
                "promised_date": None,
                "technician_id": "u-tech",
                "satisfaction": 4,
            }
        ],
        "next_cursor": "page-2",
    }
    request = reports[1].requests[-1]
    assert (request.figure, request.branch_id, request.store_id, request.page_size) == (
        "closed",
        "",
        "SH-001",
        1,
    )
    second = await client.get(
        "/api/v1/reports/kpis/orders",
        params={"figure": "closed", "cursor": "page-2"},
        headers=manager,
    )
    assert second.json()["next_cursor"] is None
    assert reports[1].requests[-1].page_token == "page-2"
    unknown = await client.get(
        "/api/v1/reports/kpis/orders", params={"figure": "everything"}, headers=manager
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "figure"


async def test_the_openapi_page_describes_each_figure_as_the_contract_defines_it(
    client: httpx.AsyncClient,
) -> None:
    components = (await client.get("/openapi.json")).json()["components"]["schemas"]
    figures = components["Figures"]["properties"]
    contract = reporting_pb2.Figures.DESCRIPTOR.fields_by_name
    for name, schema in figures.items():
        options = contract[name].GetOptions()
        title = options.Extensions[reporting_pb2.kpi_title]
        assert schema["description"].startswith(f"{title}: "), name
        assert options.Extensions[reporting_pb2.kpi_definition] in schema["description"]
    assert figures["repeat_repair_rate"]["description"].startswith("返修率: ")
    assert "swap_limit_near" in components["Backlog"]["properties"]
