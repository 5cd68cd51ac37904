"""A swap names the unit it issues from swap stock: the gateway refuses one without `part_id`
(422 naming the field) before orders is asked, and its OpenAPI says the field is required."""

from __future__ import annotations

import httpx

from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.test_lifecycle_api import taken_in


async def test_a_swap_without_its_unit_is_422_naming_part_id(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    order_id, clerk = await taken_in(client)
    asked = len(fakes.seen.requests)
    reply = await client.post(
        f"/api/v1/repair-orders/{order_id}/swap",
        json={"imei": "356938035643809"},
        headers={**clerk, "If-Match": '"1"'},
    )
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["part_id"]
    assert len(fakes.seen.requests) == asked  # orders was not asked


async def test_the_swap_body_requires_part_id(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert "part_id" in schemas["SwapIn"]["required"]
