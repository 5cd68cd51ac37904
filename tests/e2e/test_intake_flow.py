"""SPEC's first walk-through on the real processes: a clerk takes in a repair; orders stores
it, customers learns the customer and device, reporting counts it for the store, its branch
and HQ; each role sees exactly its own part."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from servicekit.testing import eventually
from servicekit.timeutil import shanghai_day, utc_now
from tests.e2e.conftest import Api, repair_order


def days_ago(days: int) -> str:
    """A date relative to the test's today in Shanghai, the day the stores go by."""
    today = shanghai_day(utc_now())
    return (today - timedelta(days=days)).isoformat()


def bought_recently(**changes: Any) -> dict[str, Any]:
    """A repair order for a phone bought a month ago: in warranty whenever the test runs."""
    order = repair_order(**changes)
    order["device"]["purchase_date"] = days_ago(30)
    return order


async def kpi_settles(api: Api, username: str, expected: int, **params: str) -> int:
    async def reached() -> int | None:
        value = await api.orders_received(username, **params)
        return value if value >= expected else None

    return await eventually(reached, within=15)


async def test_clerk_intake_reaches_orders_customers_and_reporting(api: Api) -> None:
    before = {
        "store": await api.orders_received("sh.manager", store_id="SH-001"),
        "branch": await api.orders_received("sh.manager"),
        "chain": await api.orders_received("hq.analyst"),
        "zj": await api.orders_received("zj.manager"),
    }
    body = bought_recently()
    created = await api.post("sh001.clerk", "/api/v1/repair-orders", body)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "received"
    assert order["store_id"] == "SH-001"
    assert order["number"].startswith("SH-001-")
    assert order["warranty"]["status"] == "in_warranty"
    assert order["customer"]["phone"] == body["customer"]["phone"]

    fetched = await api.get("sh001.clerk", f"/api/v1/repair-orders/{order['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["id"] == order["id"]

    async def customer_known() -> dict[str, Any] | None:
        reply = await api.get("sh001.clerk", "/api/v1/customers", imei=body["device"]["imei"])
        return reply.json() if reply.status_code == 200 else None

    customer = await eventually(customer_known, within=15)
    assert customer["name"] == "王小明"
    assert [d["imei"] for d in customer["devices"]] == [body["device"]["imei"]]

    await kpi_settles(api, "sh.manager", before["store"] + 1, store_id="SH-001")
    await kpi_settles(api, "sh.manager", before["branch"] + 1)
    await kpi_settles(api, "hq.analyst", before["chain"] + 1)
    assert await api.orders_received("zj.manager") == before["zj"]


async def test_each_role_sees_only_its_own_unit(api: Api) -> None:
    created = await api.post("sh001.clerk", "/api/v1/repair-orders", bought_recently())
    order_id = created.json()["id"]
    # Another store, another branch: not even the order's existence shows.
    for outsider in ("sh002.clerk", "zj.manager", "zj001.clerk"):
        reply = await api.get(outsider, f"/api/v1/repair-orders/{order_id}")
        assert reply.status_code == 404, (outsider, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
    for insider in ("sh.manager", "hq.analyst"):
        reply = await api.get(insider, f"/api/v1/repair-orders/{order_id}")
        assert reply.status_code == 200, (insider, reply.text)
        # Outside the store that holds the order, the customer's number is masked.
        assert "****" in reply.json()["customer"]["phone"]

    listed = await api.get("zj.manager", "/api/v1/repair-orders", limit="100")
    # ZJ's own orders, and those another branch sent to a ZJ store to repair (送修).
    for item in listed.json()["items"]:
        assert "ZJ" in (item["branch_id"], (item["partner"] or {}).get("branch_id")), item
    assert (await api.get("zj.manager", "/api/v1/reports/kpis", branch_id="SH")).status_code == 404
    assert (
        await api.get("sh002.clerk", "/api/v1/reports/kpis", store_id="SH-001")
    ).status_code == 404


async def test_branch_user_takes_in_for_a_store_in_scope_only(api: Api) -> None:
    ok = await api.post("sh.manager", "/api/v1/repair-orders", bought_recently(store_id="SH-002"))
    assert ok.status_code == 201, ok.text
    assert ok.json()["store_id"] == "SH-002"
    outside = await api.post(
        "sh.manager", "/api/v1/repair-orders", bought_recently(store_id="ZJ-001")
    )
    assert outside.status_code == 404


async def test_listing_pages_with_a_cursor(api: Api) -> None:
    for _ in range(3):
        reply = await api.post(
            "sh002.clerk",
            "/api/v1/repair-orders",
            bought_recently(device={"imei": "490154203237518", "brand": "oppo", "model": "reno11"}),
        )
        assert reply.status_code == 201, reply.text
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", "imei": "490154203237518"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("sh002.clerk", "/api/v1/repair-orders", **params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 3


async def test_without_a_token_nothing_is_served(api: Api) -> None:
    assert (await api.client.get("/api/v1/repair-orders")).status_code == 401
    wrong = await api.client.post(
        "/api/v1/auth/token", data={"username": "sh001.clerk", "password": "wrong"}
    )
    assert wrong.status_code == 401
