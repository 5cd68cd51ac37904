"""A repair's life on the real processes, through the gateway: a paid repair from intake to
closed with its part reserved and issued at the store's warehouse, a customer decline, and a
cancel that gives the reserved part back to stock."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx

from servicekit.timeutil import shanghai_day, utc_now
from tests.e2e.conftest import Api, repair_order

STORE_WAREHOUSE = "WH-SH-001"
ORDERS = "/api/v1/repair-orders"


class Desk:
    """Steps on one order, each sent with the ETag of the answer before."""

    def __init__(self, api: Api, order: dict[str, Any], etag: str) -> None:
        self.api, self.order, self.etag = api, order, etag

    async def step(self, username: str, step: str, body: dict[str, Any]) -> httpx.Response:
        headers = {**await self.api.as_user(username), "If-Match": self.etag}
        reply = await self.api.client.post(
            f"{ORDERS}/{self.order['id']}/{step}", json=body, headers=headers
        )
        if reply.status_code == 200:
            self.order, self.etag = reply.json(), reply.headers["ETag"]
        return reply

    async def take(self, username: str, step: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.step(username, step, body)
        assert reply.status_code == 200, reply.text
        return self.order


async def take_in(api: Api) -> Desk:
    """An order with no proof of purchase: out of warranty, so the customer pays."""
    body = repair_order()
    body["device"]["purchase_date"] = None
    created = await api.post("sh001.clerk", ORDERS, body)
    assert created.status_code == 201, created.text
    read = await api.get("sh001.clerk", f"{ORDERS}/{created.json()['id']}")
    return Desk(api, read.json(), read.headers["ETag"])


async def part_in_stock(api: Api) -> tuple[str, int]:
    """A Huawei part (the orders' brand) the store's warehouse has available, and how many."""
    catalog = await api.get("sh001.keeper", "/api/v1/parts", brand="huawei", limit="100")
    assert catalog.status_code == 200, catalog.text
    huawei = {part["part_number"] for part in catalog.json()["items"]}
    reply = await api.get("sh001.keeper", f"/api/v1/warehouses/{STORE_WAREHOUSE}/stock")
    assert reply.status_code == 200, reply.text
    levels = reply.json()["levels"]
    level = next(lv for lv in levels if lv["part_number"] in huawei and lv["available"] > 1)
    return level["part_number"], level["available"]


async def available(api: Api, part: str) -> int:
    reply = await api.get("sh001.keeper", f"/api/v1/warehouses/{STORE_WAREHOUSE}/stock")
    return next(lv["available"] for lv in reply.json()["levels"] if lv["part_number"] == part)


async def diagnosed_and_quoted(desk: Desk, part: str, labour: int) -> dict[str, Any]:
    """Diagnosed with one part; quoted the labour, the part added at its retail price."""
    diagnosis = {
        "fault_code": "F-LCD",
        "cause_code": "C-DROP",
        "actions": ["replace_screen"],
        "parts": [{"part_id": part, "quantity": 1}],
        "repair_level": "L2",
    }
    await desk.take("sh001.tech", "diagnosis", diagnosis)
    return await desk.take("sh001.clerk", "quote", {"labour_fen": labour})


async def test_a_paid_repair_walks_to_closed(api: Api) -> None:
    part, before = await part_in_stock(api)
    desk = await take_in(api)
    assert desk.etag == '"1"' and desk.order["warranty"]["status"] == "out_of_warranty"
    order = await diagnosed_and_quoted(desk, part, labour=8_000)
    retail = order["lines"][0]["retail_price_fen"]
    assert retail > 0 and order["quote"]["parts_fen"] == retail
    due = order["quote"]["total_fen"]
    assert due == 8_000 + retail

    early = await desk.step("sh001.tech", "repair/start", {})
    assert early.status_code == 409 and "awaiting_approval" in early.json()["detail"]
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert order["status"] == "approved"
    assert order["lines"][0]["reserved"] == 1
    assert await available(api, part) == before - 1

    order = await desk.take("sh001.tech", "repair/start", {})
    assert order["lines"][0]["issued"] == 1
    finish = {"actions_done": ["replace_screen"], "repair_level": "L2"}
    await desk.take("sh001.tech", "repair/finish", finish)
    await desk.take("sh001.clerk", "qc", {"passed": False, "note": "touch dead in a corner"})
    await desk.take("sh001.tech", "repair/finish", finish)
    await desk.take("sh001.clerk", "qc", {"passed": True})
    order = await desk.take("sh001.clerk", "pickup", {"method": "wechat_pay", "amount_fen": due})

    assert order["status"] == "closed" and order["closed_at"]
    assert order["payments"][0]["amount_fen"] == due
    timeline = (await api.get("sh001.clerk", f"{ORDERS}/{order['id']}/timeline")).json()
    assert [e["status"] for e in timeline["items"]] == [
        "received",
        "diagnosed",
        "awaiting_approval",
        "approved",
        "in_repair",
        "quality_check",
        "in_repair",
        "quality_check",
        "ready_for_pickup",
        "closed",
    ]
    assert timeline["items"][-1]["user_id"] and timeline["items"][-1]["store_id"] == "SH-001"
    listed = await api.get("sh001.clerk", ORDERS, status="closed", limit="100")
    assert order["id"] in [o["id"] for o in listed.json()["items"]]

    # The same phone back (at another store of the chain) is a repeat repair (返修).
    again = repair_order(device={**order["device"], "purchase_date": None})
    back = await api.post("sh002.clerk", ORDERS, again)
    assert back.status_code == 201, back.text
    assert back.json()["repeat_repair"] is True
    assert back.json()["repeat_of_order_id"] == order["id"]
    # Back within 30 days of the repair: repaired free whatever the warranty (返修保修).
    assert back.json()["warranty"]["status"] == "in_warranty"
    assert order["number"] in back.json()["warranty"]["reason"]
    fresh = await api.post("sh001.clerk", ORDERS, repair_order())
    assert (fresh.json()["repeat_repair"], fresh.json()["repeat_of_order_id"]) == (False, None)


async def test_a_customer_declines_the_quote(api: Api) -> None:
    part, _ = await part_in_stock(api)
    desk = await take_in(api)
    await diagnosed_and_quoted(desk, part, labour=130_000)
    assert desk.order["quote"]["manager_approval_required"] is True  # above SH's threshold
    refused = await desk.step("sh001.clerk", "manager-approval", {"approved": True})
    assert refused.status_code == 403
    order = await desk.take("sh001.clerk", "approval", {"accepted": False, "note": "too dear"})
    assert order["status"] == "declined"
    assert order["timeline"][-1]["note"] == "too dear"


async def test_a_cancel_gives_the_reserved_part_back(api: Api) -> None:
    part, before = await part_in_stock(api)
    desk = await take_in(api)
    await diagnosed_and_quoted(desk, part, labour=8_000)
    stale = desk.etag
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert await available(api, part) == before - 1

    desk.etag, current = stale, desk.etag
    late = await desk.step("sh001.clerk", "cancel", {"reason": "customer left"})
    assert late.status_code == 412
    desk.etag = current
    order = await desk.take("sh001.clerk", "cancel", {"reason": "customer left"})
    assert order["status"] == "cancelled" and order["lines"][0]["released"]
    assert await available(api, part) == before


async def test_a_warranty_repair_keeps_the_old_part_and_takes_no_payment(api: Api) -> None:
    part, _ = await part_in_stock(api)
    body = repair_order()  # bought 30 days ago, a brand SH-001 is authorised for
    created = await api.post("sh001.clerk", ORDERS, body)
    assert created.status_code == 201, created.text
    assert created.json()["warranty"]["status"] == "in_warranty"
    # 三包: still waiting for parts 60 days after intake, the customer is owed a swap.
    received = date.fromisoformat(created.json()["received_at_local"][:10])
    due = received + timedelta(days=60)
    assert created.json()["parts_wait_swap_on"] == due.isoformat()
    assert created.json()["swap_days_left"] == (due - shanghai_day(utc_now())).days
    near = await api.get("sh001.clerk", ORDERS, swap_due_by=due.isoformat(), limit="100")
    assert created.json()["id"] in [o["id"] for o in near.json()["items"]]
    early = (due - timedelta(days=1)).isoformat()
    not_yet = await api.get("sh001.clerk", ORDERS, swap_due_by=early, limit="100")
    assert created.json()["id"] not in [o["id"] for o in not_yet.json()["items"]]
    read = await api.get("sh001.clerk", f"{ORDERS}/{created.json()['id']}")
    desk = Desk(api, read.json(), read.headers["ETag"])
    charged = await desk.step("sh001.clerk", "quote", {"labour_fen": 1})
    assert charged.status_code == 409  # not diagnosed yet
    order = await diagnosed_and_quoted(desk, part, labour=0)
    assert order["quote"]["total_fen"] == 0  # the part is free under warranty
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    order = await desk.take("sh001.tech", "repair/start", {})
    line = order["lines"][0]
    assert line["warranty"] and line["issued"] == 1
    report = {"actions_done": ["replace_screen"], "repair_level": "L2", "old_parts_kept": ["L1"]}
    order = await desk.take("sh001.tech", "repair/finish", report)
    assert order["lines"][0]["old_part_kept"]
    await desk.take("sh001.clerk", "qc", {"passed": True})
    order = await desk.take("sh001.clerk", "pickup", {})
    assert order["status"] == "closed" and order["payments"] == []
    assert order["swap_days_left"] is None  # back with the customer: nothing owed


async def test_two_people_changing_one_order_at_once_cannot_both_win(api: Api) -> None:
    desk = await take_in(api)
    diagnosis = {"fault_code": "F-LCD", "repair_level": "L1"}
    rival = Desk(api, desk.order, desk.etag)
    replies = await asyncio.gather(
        desk.step("sh001.tech", "diagnosis", diagnosis),
        rival.step("sh001.clerk", "cancel", {"reason": "customer left"}),
    )
    assert sorted(r.status_code for r in replies) in ([200, 409], [200, 412])
    final = await api.get("sh001.clerk", f"{ORDERS}/{desk.order['id']}")
    assert final.headers["ETag"] == '"2"'
    assert len(final.json()["timeline"]) == 2


async def test_a_big_quote_waits_for_the_branch_manager_too(api: Api) -> None:
    part, _ = await part_in_stock(api)
    desk = await take_in(api)
    await diagnosed_and_quoted(desk, part, labour=110_000)  # above SH's 1,000 yuan
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert order["status"] == "awaiting_approval" and order["quote"]["customer_approved"]
    outsider = await desk.step("zj.manager", "manager-approval", {"approved": True})
    assert outsider.status_code == 404
    order = await desk.take("sh.manager", "manager-approval", {"approved": True})
    assert order["status"] == "approved" and order["lines"][0]["reserved"] == 1
    assert order["timeline"][-1]["user_id"] != order["timeline"][-2]["user_id"]
    assert order["timeline"][-1]["store_id"] == "SH-001"  # where: the order's store
