"""The stock ledger on the real processes: a keeper books a receipt and sees the stock and its
moving-average cost follow, books an adjustment, reads the movements; HQ's conservation check
answers balanced. Store ZJ-001's warehouse, changes asserted relative to what was there."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Api

WAREHOUSE, PART = "WH-ZJ-001", "SS-SCR-GALAXYS24"
BASE = f"/api/v1/warehouses/{WAREHOUSE}"


async def stock(api: Api) -> dict[str, Any]:
    reply = await api.get("zj001.keeper", f"{BASE}/stock", part_number=PART)
    assert reply.status_code == 200, reply.text
    [level] = reply.json()["levels"]
    return dict(level)


async def test_a_receipt_moves_stock_and_average_and_an_adjustment_follows(api: Api) -> None:
    before = await stock(api)
    receipt = {"part_number": PART, "quantity": 4, "unit_cost_fen": 52000, "document_id": "GRN-7"}
    key = str(uuid.uuid4())
    reply = await api.post("zj001.keeper", f"{BASE}/receipts", receipt, key)
    assert reply.status_code == 201, reply.text
    movement = reply.json()
    assert (movement["kind"], movement["quantity"], movement["unit_cost_fen"]) == (
        "receipt",
        4,
        52000,
    )
    assert (movement["document_type"], movement["document_id"]) == ("receipt", "GRN-7")
    assert movement["occurred_at"].endswith("Z")
    # The same key again is the same answer, and the stock rises once.
    replay = await api.post("zj001.keeper", f"{BASE}/receipts", receipt, key)
    assert replay.status_code == 201 and replay.json() == movement
    assert replay.headers["Idempotent-Replayed"] == "true"

    after = await stock(api)
    assert after["on_hand"] == before["on_hand"] + 4
    # The stock's value is kept exactly; the average is derived from it.
    assert after["value_fen"] == before["value_fen"] + 4 * 52000
    assert after["average_cost_fen"] == after["value_fen"] // after["on_hand"]
    assert after["available"] == after["on_hand"] - after["reserved"]

    adjustment = {"part_number": PART, "quantity": -1, "reason": "盘亏: 碎屏一片"}
    reply = await api.post("zj.manager", f"{BASE}/adjustments", adjustment, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    assert (reply.json()["kind"], reply.json()["unit_cost_fen"]) == (
        "adjustment",
        after["average_cost_fen"],
    )
    assert (await stock(api))["on_hand"] == after["on_hand"] - 1

    scrap = {"part_number": PART, "quantity": 1, "kind": "scrap", "reason": "屏幕漏液"}
    reply = await api.post("zj001.keeper", f"{BASE}/write-offs", scrap, str(uuid.uuid4()))
    assert reply.status_code == 201 and reply.json()["kind"] == "scrap", reply.text

    reply = await api.get("zj001.keeper", f"{BASE}/movements", part_number=PART, limit="3")
    assert reply.status_code == 200, reply.text
    listed = reply.json()
    assert [(m["kind"], m["quantity"]) for m in listed["items"]] == [
        ("scrap", -1),
        ("adjustment", -1),
        ("receipt", 4),
    ]
    assert listed["next_cursor"]  # the demo's opening receipt is further down

    reply = await api.get("hq.admin", "/api/v1/inventory/conservation", part_number=PART)
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report["balanced"] is True
    [part] = report["parts"]
    assert part["part_number"] == PART and part["expected"] == part["on_hand"]
    assert part["scrapped"] >= 1 and part["warehouses_off"] == []
    held = part["value_held_fen"] + part["value_in_transit_fen"]
    assert part["value_in_fen"] - part["value_out_fen"] == held > 0


async def test_stock_documents_are_scoped_and_kept_to_their_roles(api: Api) -> None:
    receipt = {"part_number": PART, "quantity": 1, "unit_cost_fen": 100}
    # Another store's keeper: the warehouse does not exist for them.
    reply = await api.post("sh001.keeper", f"{BASE}/receipts", receipt, str(uuid.uuid4()))
    assert reply.status_code == 404, reply.text
    assert (await api.get("sh001.keeper", f"{BASE}/movements")).status_code == 404
    # A clerk of the store may not book stock; an analyst may not run the check.
    reply = await api.post("zj001.clerk", f"{BASE}/receipts", receipt, str(uuid.uuid4()))
    assert reply.status_code == 403, reply.text
    reply = await api.get("hq.analyst", "/api/v1/inventory/conservation")
    assert reply.status_code == 403, reply.text
    # Bad input names the field.
    bad = {"part_number": PART, "quantity": 0, "reason": "x"}
    reply = await api.post("zj001.keeper", f"{BASE}/adjustments", bad, str(uuid.uuid4()))
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["quantity"]
    unknown = {"part_number": "NO-SUCH", "quantity": 1, "unit_cost_fen": 1}
    reply = await api.post("zj001.keeper", f"{BASE}/receipts", unknown, str(uuid.uuid4()))
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["part_number"]


async def test_a_transfer_is_approved_shipped_and_received_short(api: Api) -> None:
    part = "SS-BAT-GALAXYS24"

    async def on_hand(username: str, warehouse_id: str) -> int:
        reply = await api.get(
            username, f"/api/v1/warehouses/{warehouse_id}/stock", part_number=part
        )
        assert reply.status_code == 200, reply.text
        return int(reply.json()["levels"][0]["on_hand"])

    central, store = await on_hand("zj.manager", "WH-ZJ"), await on_hand("zj001.keeper", WAREHOUSE)
    body = {
        "from_warehouse_id": "WH-ZJ",
        "to_warehouse_id": WAREHOUSE,
        "lines": [{"part_number": part, "quantity": 3}],
        "note": "补货",
    }
    reply = await api.post("zj001.keeper", "/api/v1/transfers", body, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    doc = reply.json()
    assert (doc["status"], doc["pending_branches"]) == ("requested", ["ZJ"])
    path = f"/api/v1/transfers/{doc['id']}"
    assert (await api.get("sh.manager", path)).status_code == 404
    assert (
        await api.post("zj001.keeper", f"{path}/approve", {}, str(uuid.uuid4()))
    ).status_code == 403
    reply = await api.post("zj.manager", f"{path}/approve", {}, str(uuid.uuid4()))
    assert reply.status_code == 200 and reply.json()["status"] == "approved", reply.text
    reply = await api.post("zj.manager", f"{path}/ship", {}, str(uuid.uuid4()))
    assert reply.status_code == 200 and reply.json()["status"] == "shipped", reply.text
    assert await on_hand("zj.manager", "WH-ZJ") == central - 3
    reply = await api.get("hq.admin", "/api/v1/inventory/conservation", part_number=part)
    assert reply.json()["balanced"] is True and reply.json()["parts"][0]["in_transit"] == 3

    received = {"discrepancies": [{"part_number": part, "short": 1}]}
    reply = await api.post("zj001.keeper", f"{path}/receive", received, str(uuid.uuid4()))
    assert reply.status_code == 200, reply.text
    line = reply.json()["lines"][0]
    assert (reply.json()["status"], line["received"], line["short"]) == ("received", 2, 1)
    assert await on_hand("zj001.keeper", WAREHOUSE) == store + 2
    reply = await api.get("hq.admin", "/api/v1/inventory/conservation", part_number=part)
    assert reply.json()["balanced"] is True and reply.json()["parts"][0]["in_transit"] == 0
    reply = await api.post("zj.manager", f"{path}/cancel", {}, str(uuid.uuid4()))
    assert reply.status_code == 409, reply.text


async def test_the_franchised_store_zj002_is_refused_over_its_quota(api: Api) -> None:
    quota_path = "/api/v1/warehouses/WH-ZJ-002/quota"
    reply = await api.get("zj002.clerk", quota_path)
    assert reply.status_code == 200, reply.text
    use = reply.json()
    assert use["used_fen"] == use["held_fen"] + use["in_transit_fen"] + use["old_parts_owed_fen"]
    assert (await api.get("sh.manager", quota_path)).status_code == 404
    assert (await api.get("zj.manager", "/api/v1/warehouses/WH-ZJ-001/quota")).status_code == 404

    # Its branch sets the quota to what it uses now: nothing more may come in.
    reply = await api.client.put(
        quota_path, json={"quota_fen": use["used_fen"]}, headers=await api.as_user("zj.manager")
    )
    assert reply.status_code == 200 and reply.json()["headroom_fen"] == 0, reply.text
    forbidden = await api.client.put(
        quota_path, json={"quota_fen": 1}, headers=await api.as_user("zj002.keeper")
    )
    assert forbidden.status_code == 403, forbidden.text

    body = {
        "from_warehouse_id": "WH-ZJ",
        "to_warehouse_id": "WH-ZJ-002",
        "lines": [{"part_number": "MI-BAT-XIAOMI14", "quantity": 1}],
    }
    reply = await api.post("zj002.keeper", "/api/v1/transfers", body, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    path = f"/api/v1/transfers/{reply.json()['id']}"
    reply = await api.post("zj.manager", f"{path}/approve", {}, str(uuid.uuid4()))
    assert reply.status_code == 200, reply.text
    reply = await api.post("zj.manager", f"{path}/ship", {}, str(uuid.uuid4()))
    assert reply.status_code == 409, reply.text
    detail = reply.json()["detail"]
    assert "franchise quota of WH-ZJ-002" in detail and f"quota {use['used_fen']} fen" in detail
    receipt = {"part_number": "MI-BAT-XIAOMI14", "quantity": 1, "unit_cost_fen": 100}
    reply = await api.post(
        "zj002.keeper", "/api/v1/warehouses/WH-ZJ-002/receipts", receipt, str(uuid.uuid4())
    )
    assert reply.status_code == 409 and "headroom 0" in reply.json()["detail"], reply.text

    # Raised again, the transfer ships.
    reply = await api.client.put(
        quota_path,
        json={"quota_fen": use["quota_fen"] + 10_000_000},
        headers=await api.as_user("zj.manager"),
    )
    assert reply.status_code == 200, reply.text
    reply = await api.post("zj.manager", f"{path}/ship", {}, str(uuid.uuid4()))
    assert reply.status_code == 200 and reply.json()["status"] == "shipped", reply.text


async def test_old_parts_owed_are_listed_and_a_batch_must_match_owed_lines(api: Api) -> None:
    reply = await api.get("zj001.keeper", f"{BASE}/old-parts")
    assert reply.status_code == 200, reply.text
    assert all(x["owed"] > 0 for x in reply.json()["items"])
    assert (await api.get("zj001.keeper", f"{BASE}/old-parts", overdue="true")).status_code == 200
    assert (await api.get("sh001.keeper", f"{BASE}/old-parts")).status_code == 404
    batch = {"lines": [{"order_id": "no-such-order", "line_id": "l-1", "quantity": 1}]}
    reply = await api.post("zj001.keeper", f"{BASE}/old-part-returns", batch, str(uuid.uuid4()))
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["lines[0]"]


async def test_the_slow_moving_report_covers_the_callers_scope(api: Api) -> None:
    reply = await api.get("zj.manager", "/api/v1/inventory/slow-moving", days="30")
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report["items"] and {x["warehouse_id"][:5] for x in report["items"]} == {"WH-ZJ"}
    assert report["total_value_fen"] == sum(x["value_fen"] for x in report["items"])
    values = [x["value_fen"] for x in report["items"]]
    assert values == sorted(values, reverse=True)
    reply = await api.get("zj002.clerk", "/api/v1/inventory/slow-moving", warehouse_id="WH-ZJ-001")
    assert reply.status_code == 404, reply.text
    reply = await api.get("zj.manager", "/api/v1/inventory/slow-moving", days="0")
    assert reply.status_code == 422, reply.text


async def test_a_stocktake_adjusts_the_book_and_a_large_one_waits_for_the_manager(
    api: Api,
) -> None:
    part = "SS-CHA-GALAXYS24"
    before = await api.get("zj001.keeper", f"{BASE}/stock", part_number=part)
    level = before.json()["levels"][0]
    counted = {"lines": [{"part_number": part, "counted": level["on_hand"] + 1}]}
    reply = await api.post("zj001.keeper", f"{BASE}/stocktakes", counted, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    doc = reply.json()
    assert (doc["status"], doc["lines"][0]["difference"]) == ("posted", 1)
    after = await api.get("zj001.keeper", f"{BASE}/stock", part_number=part)
    assert after.json()["levels"][0]["on_hand"] == level["on_hand"] + 1

    # Everything of it missing, and more than the threshold's worth: it waits.
    big = {"lines": [{"part_number": "SS-SCR-GALAXYS24", "counted": 0}]}
    reply = await api.post("zj001.keeper", f"{BASE}/stocktakes", big, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    pending = reply.json()
    assert pending["status"] == "pending_approval", pending
    path = f"/api/v1/stocktakes/{pending['id']}"
    assert (await api.get("sh.manager", path)).status_code == 404
    reply = await api.post("zj.manager", f"{path}/reject", {}, str(uuid.uuid4()))
    assert reply.status_code == 200 and reply.json()["status"] == "rejected", reply.text
    reply = await api.post("zj.manager", f"{path}/approve", {}, str(uuid.uuid4()))
    assert reply.status_code == 409, reply.text


async def test_a_purchase_suggestion_is_ordered_and_received(api: Api) -> None:
    part = "SS-CAM-GALAXYS24"
    stock_before = await api.get("zj001.keeper", f"{BASE}/stock", part_number=part)
    available = stock_before.json()["levels"][0]["available"]
    level = {"min_level": available + 1, "max_level": available + 6, "lead_time_days": 5}
    reply = await api.client.put(
        f"{BASE}/reorder-levels/{part}", json=level, headers=await api.as_user("zj001.keeper")
    )
    assert reply.status_code == 200, reply.text
    reply = await api.get("zj001.keeper", f"{BASE}/reorder-suggestions")
    assert reply.status_code == 200, reply.text
    [suggestion] = [x for x in reply.json()["items"] if x["part_number"] == part]
    assert suggestion["quantity"] == 6

    order = {
        "supplier": "三星配件",
        "lines": [{"part_number": part, "quantity": 6, "unit_cost_fen": 21000}],
    }
    reply = await api.post("zj001.keeper", f"{BASE}/purchase-orders", order, str(uuid.uuid4()))
    assert reply.status_code == 201 and reply.json()["status"] == "open", reply.text
    path = f"/api/v1/purchase-orders/{reply.json()['id']}/receive"
    reply = await api.post("zj001.keeper", path, {}, str(uuid.uuid4()))
    assert reply.status_code == 200 and reply.json()["status"] == "received", reply.text
    stock_after = await api.get("zj001.keeper", f"{BASE}/stock", part_number=part)
    assert (
        stock_after.json()["levels"][0]["on_hand"]
        == stock_before.json()["levels"][0]["on_hand"] + 6
    )
    reply = await api.get("zj001.keeper", f"{BASE}/reorder-suggestions")
    assert part not in [x["part_number"] for x in reply.json()["items"]]


async def test_hq_keeps_the_catalog(api: Api) -> None:
    part = {
        "brand": "samsung",
        "description": "Galaxy S24 后盖 (测试)",
        "category": "back-cover",
        "standard_cost_fen": 8000,
        "retail_price_fen": 19900,
        "compatible_models": ["galaxy-s24"],
    }
    path = "/api/v1/parts/SS-BCV-GALAXYS24-E2E"
    reply = await api.client.put(path, json=part, headers=await api.as_user("hq.admin"))
    assert reply.status_code == 200 and reply.json()["superseded_by"] is None, reply.text
    reply = await api.client.put(path, json=part, headers=await api.as_user("zj.manager"))
    assert reply.status_code == 403, reply.text
    bad = {**part, "category": "toaster"}
    reply = await api.client.put(path, json=bad, headers=await api.as_user("hq.admin"))
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "category"
    listed = await api.get("zj001.clerk", "/api/v1/parts", brand="samsung", category="back-cover")
    assert "SS-BCV-GALAXYS24-E2E" in [p["part_number"] for p in listed.json()["items"]]
