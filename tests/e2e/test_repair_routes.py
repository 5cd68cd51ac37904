"""The routes off a repair's happy path, on the real processes through the gateway: a send-out
to another store and back, a factory return, a swap from swap stock by IMEI, a short
superseded part taking its successor (替代料), a mainboard replacement found by both IMEIs,
quick orders, a declined unit picked up with an inspection fee, a second warranty repair of one
fault that offers a swap, and the guards (409 naming the status, 412 on a stale ETag, 403 at
the wrong store, 404 outside the scope)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Api, new_imei, repair_order
from tests.e2e.test_repair_lifecycle import ORDERS, Desk

PARTNER_WAREHOUSE = "WH-ZJ-001"
STORE_WAREHOUSE = "WH-SH-001"
SCREEN = "HW-SCR-P60"  # stocked at every store authorised for Huawei (demo data)
SWAP_UNIT = "HW-SWAP-P60"  # serialised: three at WH-SH-001, their IMEIs as serials (demo data)
# The old P60 battery, superseded by the current one: only the branch centrals hold it (demo).
OLD_BATTERY, BATTERY = "HW-BAT-P60-A", "HW-BAT-P60"


async def open_order(api: Api, clerk: str = "sh001.clerk", **changes: Any) -> Desk:
    created = await api.post(clerk, ORDERS, repair_order(**changes))
    assert created.status_code == 201, created.text
    read = await api.get(clerk, f"{ORDERS}/{created.json()['id']}")
    return Desk(api, read.json(), read.headers["ETag"])


def out_of_warranty(imei: str | None = None) -> dict[str, Any]:
    """A Huawei P60 with no proof of purchase: chargeable."""
    return {
        "imei": imei or new_imei(),
        "brand": "huawei",
        "model": "p60",
        "purchase_date": None,
    }


def diagnosis(fault: str = "F-LCD", actions: tuple[str, ...] = (), parts: int = 0) -> dict:
    return {
        "symptom_code": "S01",
        "fault_code": fault,
        "cause_code": "C-DROP",
        "actions": list(actions or ("replace_screen",)),
        "parts": [{"part_id": SCREEN, "quantity": 1}] if parts else [],
        "repair_level": "L2",
    }


async def available(api: Api, keeper: str, warehouse: str, part: str) -> int:
    reply = await api.get(keeper, f"/api/v1/warehouses/{warehouse}/stock")
    assert reply.status_code == 200, reply.text
    levels = {lv["part_number"]: lv["available"] for lv in reply.json()["levels"]}
    return levels.get(part, 0)


async def walk_warranty_repair_to_closed(desk: Desk, fault: str = "F-LCD") -> dict[str, Any]:
    """Diagnosed, quoted free, approved, repaired, checked and picked up at SH-001."""
    await desk.take("sh001.tech", "diagnosis", diagnosis(fault))
    await desk.take("sh001.clerk", "quote", {"labour_fen": 0})
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    await desk.take("sh001.tech", "repair/start", {})
    report = {"actions_done": ["replace_screen"], "repair_level": "L2"}
    await desk.take("sh001.tech", "repair/finish", report)
    await desk.take("sh001.clerk", "qc", {"passed": True})
    return await desk.take("sh001.clerk", "pickup", {})


async def test_intake_keeps_the_customers_consent_and_language(api: Api) -> None:
    body = repair_order()
    body["customer"] |= {"message_consent": True, "language": "en"}
    created = await api.post("sh001.clerk", ORDERS, body)
    assert created.status_code == 201, created.text
    customer = created.json()["customer"]
    assert (customer["message_consent"], customer["language"]) == (True, "en")
    body["customer"]["language"] = "fr"
    refused = await api.post("sh001.clerk", ORDERS, body)
    assert refused.status_code == 422
    assert "customer" in str(refused.json()["errors"])


async def test_a_send_out_to_another_store_and_back(api: Api) -> None:
    # In warranty at SH-001; ZJ-001 (another branch, authorised for Huawei) repairs it.
    desk = await open_order(api)
    assert desk.order["warranty"]["status"] == "in_warranty"
    order_id = desk.order["id"]
    unauthorised = await desk.step("sh001.clerk", "send-out", {"store_id": "SH-002"})
    assert unauthorised.status_code == 422, unauthorised.text
    hidden = await api.get("zj001.clerk", f"{ORDERS}/{order_id}")
    assert hidden.status_code == 404  # not sent yet: ZJ-001 does not see it

    order = await desk.take("sh001.clerk", "send-out", {"store_id": "ZJ-001", "note": "skill"})
    assert order["status"] == "sent_out"
    assert order["partner"] == {
        "branch_id": "ZJ",
        "store_id": "ZJ-001",
        "at_partner": False,
        "repaired": False,
    }
    seen = await api.get("zj001.clerk", f"{ORDERS}/{order_id}")
    assert seen.status_code == 200
    assert "****" in seen.json()["customer"]["phone"]  # the partner sees a masked phone
    listed = await api.get("zj001.clerk", ORDERS, status="sent_out", limit="100")
    assert order_id in [o["id"] for o in listed.json()["items"]]
    assert (await api.get("sh002.clerk", f"{ORDERS}/{order_id}")).status_code == 404

    wrong_store = await desk.step("sh001.clerk", "receive", {})
    assert wrong_store.status_code == 403
    order = await desk.take("zj001.clerk", "receive", {})
    assert order["status"] == "at_partner" and order["holder_store_id"] == "ZJ-001"
    intake_tech = await desk.step("sh001.tech", "diagnosis", diagnosis(parts=1))
    assert intake_tech.status_code == 403
    no_cancel = await desk.step("sh001.clerk", "cancel", {"reason": "customer left"})
    assert no_cancel.status_code == 409

    before = await available(api, "zj001.keeper", PARTNER_WAREHOUSE, SCREEN)
    order = await desk.take("zj001.tech", "diagnosis", diagnosis(parts=1))
    assert order["lines"][0]["store_id"] == "ZJ-001"
    order = await desk.take("zj001.clerk", "quote", {"labour_fen": 0})
    assert order["quote"]["store_id"] == "ZJ-001"
    order = await desk.take("zj001.clerk", "approval", {"accepted": True})
    assert order["status"] == "approved"
    # The partner's part comes from the partner's warehouse: its cost is booked there.
    assert await available(api, "zj001.keeper", PARTNER_WAREHOUSE, SCREEN) == before - 1
    order = await desk.take("zj001.tech", "repair/start", {})
    assert order["lines"][0]["issued"] == 1
    report = {"actions_done": ["replace_screen"], "repair_level": "L2"}
    await desk.take("zj001.tech", "repair/finish", report)
    order = await desk.take("zj001.clerk", "qc", {"passed": True})
    assert order["status"] == "at_partner" and order["partner"]["repaired"] is True
    early_pickup = await desk.step("sh001.clerk", "pickup", {})
    assert early_pickup.status_code == 409 and "at_partner" in early_pickup.json()["detail"]

    order = await desk.take("zj001.clerk", "return", {})
    assert order["status"] == "returned_from_partner"
    order = await desk.take("sh001.clerk", "receive", {"note": "screen fine"})
    assert order["status"] == "ready_for_pickup" and order["holder_store_id"] == "SH-001"
    partner_pickup = await desk.step("zj001.clerk", "pickup", {})
    assert partner_pickup.status_code == 403  # the intake store hands it back
    order = await desk.take("sh001.clerk", "pickup", {})
    assert order["status"] == "closed"
    stores = [(e["step"], e["store_id"]) for e in order["timeline"]]
    assert ("receive", "ZJ-001") in stores and ("repair/start", "ZJ-001") in stores
    assert stores[-1] == ("pickup", "SH-001")


async def test_a_factory_return_replaced_by_a_new_unit(api: Api) -> None:
    desk = await open_order(api, device=out_of_warranty())
    old_imei = desk.order["device"]["imei"]
    missing = await desk.step(
        "sh001.clerk", "factory-return", {"carrier": "SF", "tracking_number": ""}
    )
    assert missing.status_code == 422
    shipment = {"carrier": "SF Express", "tracking_number": "SF1234567890"}
    order = await desk.take("sh001.clerk", "factory-return", shipment)
    assert order["status"] == "at_factory"
    assert order["factory"]["tracking_number"] == "SF1234567890"
    no_imei = await desk.step("sh001.clerk", "factory-receive", {"outcome": "replaced"})
    assert no_imei.status_code == 422
    new = new_imei()
    back = {"outcome": "replaced", "new_imei": new}
    order = await desk.take("sh001.clerk", "factory-receive", back)
    assert order["status"] == "quality_check"
    assert (order["current_imei"], order["factory"]["outcome"]) == (new, "replaced")
    await desk.take("sh001.clerk", "qc", {"passed": True})
    order = await desk.take("sh001.clerk", "pickup", {})
    assert order["status"] == "closed"

    passport = await api.get("sh001.clerk", f"/api/v1/devices/{new}")
    assert passport.status_code == 200, passport.text
    assert set(passport.json()["imeis"]) == {old_imei, new}
    assert passport.json()["links"][0]["kind"] == "factory"


async def free_swap_unit(api: Api) -> str:
    """The IMEI of a demo swap unit free in SH-001's swap stock."""
    reply = await api.get(
        "sh001.keeper", f"/api/v1/warehouses/{STORE_WAREHOUSE}/serials", part_number=SWAP_UNIT
    )
    assert reply.status_code == 200, reply.text
    free = [x["serial"] for x in reply.json()["items"] if not x["order_id"]]
    assert free, "the demo's swap units are all taken"
    return str(free[0])


async def test_a_swap_from_swap_stock_keeps_both_imeis(api: Api) -> None:
    desk = await open_order(api, service_type="swap")
    faulty = desk.order["device"]["imei"]
    assert desk.order["warranty"]["status"] == "in_warranty"
    too_early = await desk.step("sh001.clerk", "swap", {"imei": new_imei(), "part_id": SWAP_UNIT})
    assert too_early.status_code == 409 and "received" in too_early.json()["detail"]
    await desk.take("sh001.tech", "diagnosis", diagnosis("F-MB", ("swap",)))
    order = await desk.take("sh001.clerk", "quote", {"labour_fen": 0})
    assert order["quote"]["manager_approval_required"] is True  # an in-warranty swap
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert order["status"] == "awaiting_approval"
    order = await desk.take("sh.manager", "manager-approval", {"approved": True})
    assert order["status"] == "approved"

    # A swap names the unit it issues: none named is 422 naming the field.
    unnamed = await desk.step("sh001.clerk", "swap", {"imei": new_imei()})
    assert unnamed.status_code == 422, unnamed.text
    assert [e["field"] for e in unnamed.json()["errors"]] == ["part_id"]

    # A unit not in the store's swap stock: 409 naming its IMEI, and the order as it was.
    stranger = new_imei()
    refused = await desk.step("sh001.clerk", "swap", {"imei": stranger, "part_id": SWAP_UNIT})
    assert refused.status_code == 409 and stranger in refused.json()["detail"], refused.text
    assert desk.order["status"] == "approved"

    # A demo unit by its IMEI: exactly that one leaves swap stock, consumed by the order.
    before = await available(api, "sh001.keeper", STORE_WAREHOUSE, SWAP_UNIT)
    replacement = await free_swap_unit(api)
    order = await desk.take("sh001.clerk", "swap", {"imei": replacement, "part_id": SWAP_UNIT})
    assert order["status"] == "ready_for_pickup"
    assert order["swap"] == {
        "imei": replacement,
        "part_id": SWAP_UNIT,
        "faulty_imei": faulty,
        "faulty_return_owed": True,
    }
    [unit] = [x for x in order["lines"] if x["line_id"] == "S1"]
    assert (unit["issued"], unit["serials"]) == (1, [replacement])
    assert order["current_imei"] == replacement and order["device"]["imei"] == faulty
    assert await available(api, "sh001.keeper", STORE_WAREHOUSE, SWAP_UNIT) == before - 1
    trace = await api.get("sh001.keeper", f"/api/v1/serials/{replacement}")
    assert trace.status_code == 200, trace.text
    assert (trace.json()["state"], trace.json()["order_id"], trace.json()["line_id"]) == (
        "consumed",
        order["id"],
        "S1",
    )
    order = await desk.take("sh001.clerk", "pickup", {})
    assert order["status"] == "closed"

    # The unit is gone: another order naming it is refused.
    other = await open_order(api, service_type="swap")
    await other.take("sh001.tech", "diagnosis", diagnosis("F-MB", ("swap",)))
    await other.take("sh001.clerk", "quote", {"labour_fen": 0})
    await other.take("sh001.clerk", "approval", {"accepted": True})
    await other.take("sh.manager", "manager-approval", {"approved": True})
    taken = await other.step("sh001.clerk", "swap", {"imei": replacement, "part_id": SWAP_UNIT})
    assert taken.status_code == 409 and replacement in taken.json()["detail"], taken.text
    assert (await api.get("sh001.clerk", f"{ORDERS}/{other.order['id']}")).json()[
        "status"
    ] == "approved"

    passport = await api.get("hq.analyst", f"/api/v1/devices/{faulty}")
    assert passport.status_code == 200, passport.text
    assert replacement in passport.json()["imeis"]


async def test_a_short_superseded_part_is_offered_its_successor_and_takes_it(api: Api) -> None:
    # SH-001 holds none of the old P60 battery (superseded, demo data); one of its successor
    # is booked in so the offer does not hang on what other tests used.
    receipt = {"part_number": BATTERY, "quantity": 1, "unit_cost_fen": 12_000}
    booked = await api.post(
        "sh001.keeper",
        f"/api/v1/warehouses/{STORE_WAREHOUSE}/receipts",
        receipt,
        key=str(uuid.uuid4()),
    )
    assert booked.status_code in (200, 201), booked.text
    desk = await open_order(api, device=out_of_warranty())
    plan = diagnosis("F-BAT", ("replace_battery",))
    plan["parts"] = [{"part_id": OLD_BATTERY, "quantity": 1}]
    await desk.take("sh001.tech", "diagnosis", plan)
    order = await desk.take("sh001.clerk", "quote", {"labour_fen": 5_000})
    assert order["quote"]["total_fen"] == 5_000 + 22_900
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert order["status"] == "waiting_parts"
    [line] = order["lines"]
    assert (line["part_id"], line["short"], line["successor_part_id"]) == (OLD_BATTERY, 1, BATTERY)
    assert line["successor_available"] >= 1
    assert f"替代料 {BATTERY}" in order["timeline"][-1]["note"]

    # A part off the old one's chain: inventory refuses it, and nothing changes.
    off_chain = {"substitutes": [{"line_id": "L1", "part_id": SCREEN}]}
    refused = await desk.step("sh001.tech", "parts", off_chain)
    assert refused.status_code == 409, refused.text
    assert desk.order["lines"][0]["part_id"] == OLD_BATTERY

    # The successor, dearer: held at once, priced anew, and approved again.
    taken = {"substitutes": [{"line_id": "L1", "part_id": BATTERY}]}
    order = await desk.take("sh001.tech", "parts", taken)
    [line] = order["lines"]
    assert (line["part_id"], line["reserved"], line["retail_price_fen"]) == (BATTERY, 1, 24_900)
    assert line["successor_part_id"] is None
    assert order["status"] == "awaiting_approval"
    assert order["quote"]["total_fen"] == 5_000 + 24_900
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert order["status"] == "approved"
    order = await desk.take("sh001.tech", "repair/start", {})
    assert order["lines"][0]["issued"] == 1


async def test_a_mainboard_replacement_and_the_passport_by_both_imeis(api: Api) -> None:
    desk = await open_order(api)
    old_imei = desk.order["device"]["imei"]
    await desk.take("sh001.tech", "diagnosis", diagnosis("F-MB", ("mainboard_replacement",)))
    order = await desk.take("sh001.clerk", "quote", {"labour_fen": 0})
    assert order["quote"]["manager_approval_required"] is True  # in-warranty mainboard
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    await desk.take("sh.manager", "manager-approval", {"approved": True})
    await desk.take("sh001.tech", "repair/start", {})
    report: dict[str, Any] = {"actions_done": ["mainboard_replacement"], "repair_level": "L3"}
    no_imei = await desk.step("sh001.tech", "repair/finish", report)
    assert no_imei.status_code == 422 and "new_imei" in str(no_imei.json()["errors"])
    new = new_imei()
    order = await desk.take("sh001.tech", "repair/finish", {**report, "new_imei": new})
    assert order["current_imei"] == new
    await desk.take("sh001.clerk", "qc", {"passed": True})
    await desk.take("sh001.clerk", "pickup", {})

    for imei in (old_imei, new):
        passport = await api.get("sh001.clerk", f"/api/v1/devices/{imei}")
        assert passport.status_code == 200, passport.text
        body = passport.json()
        assert body["imeis"][0] == imei and set(body["imeis"]) == {old_imei, new}
        assert [o["id"] for o in body["orders"]] == [desk.order["id"]]
        assert body["links"] == [
            {
                "old_imei": old_imei,
                "new_imei": new,
                "kind": "mainboard",
                "order_id": desk.order["id"],
                "at": body["links"][0]["at"],
            }
        ]
        assert body["warranty"]["status"] == "in_warranty"
    # A device back under its new IMEI is a repeat repair of the same device.
    again = await api.post("sh001.clerk", ORDERS, repair_order(device=out_of_warranty(new)))
    assert again.status_code == 201 and again.json()["repeat_repair"] is True
    passport = (await api.get("sh001.clerk", f"/api/v1/devices/{old_imei}")).json()
    assert len(passport["orders"]) == 2
    # Outside the scope the device is unknown; HQ sees it.
    assert (await api.get("zj001.clerk", f"/api/v1/devices/{new}")).status_code == 404
    assert (await api.get("hq.analyst", f"/api/v1/devices/{new}")).status_code == 200


async def test_quick_orders_close_at_once_with_payment(api: Api) -> None:
    before = await available(api, "sh001.keeper", "WH-SH-001", SCREEN)
    sale = await open_order(api, device=out_of_warranty(), service_type="accessory")
    parts = [{"part_id": SCREEN, "quantity": 1}]
    wrong = await sale.step(
        "sh001.clerk",
        "complete",
        {"actions_done": ["sell"], "parts": parts, "amount_fen": 1, "method": "cash"},
    )
    assert wrong.status_code == 422 and "amount_fen" in str(wrong.json()["errors"])
    catalog = await api.get("sh001.clerk", "/api/v1/parts", brand="huawei", limit="100")
    due = next(p["retail_price_fen"] for p in catalog.json()["items"] if p["part_number"] == SCREEN)
    order = await sale.take(
        "sh001.clerk",
        "complete",
        {"actions_done": ["sell"], "parts": parts, "amount_fen": due, "method": "cash"},
    )
    assert order["status"] == "closed" and order["payments"][0]["amount_fen"] == due
    assert order["lines"][0]["issued"] == 1
    assert await available(api, "sh001.keeper", "WH-SH-001", SCREEN) == before - 1

    flash = await open_order(api, device=out_of_warranty(), service_type="software")
    body = {"actions_done": ["flash_firmware"], "service_fen": 5_000, "amount_fen": 5_000}
    order = await flash.take("sh001.tech", "complete", {**body, "method": "alipay"})
    assert order["status"] == "closed" and order["quote"]["labour_fen"] == 5_000

    repair = await open_order(api)
    not_quick = await repair.step("sh001.clerk", "complete", {"actions_done": ["x"]})
    assert not_quick.status_code == 409


async def test_a_declined_unit_is_picked_up_with_an_inspection_fee(api: Api) -> None:
    desk = await open_order(api, device=out_of_warranty())
    await desk.take("sh001.tech", "diagnosis", diagnosis())
    await desk.take("sh001.clerk", "quote", {"labour_fen": 20_000})
    order = await desk.take("sh001.clerk", "approval", {"accepted": False, "note": "too dear"})
    assert order["status"] == "declined"
    stale = desk.etag
    order = await desk.take("sh001.clerk", "pickup", {"method": "cash", "amount_fen": 3_000})
    assert order["status"] == "closed" and order["inspection_fee_fen"] == 3_000
    assert order["payments"][0]["amount_fen"] == 3_000
    assert order["closed_at"] is None  # not repaired: its return is no repeat repair
    desk.etag = stale
    again = await desk.step("sh001.clerk", "pickup", {})
    assert again.status_code == 412
    desk.etag = f'"{order["version"]}"'
    closed = await desk.step("sh001.clerk", "pickup", {})
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


async def test_a_second_warranty_repair_of_one_fault_offers_a_swap(api: Api) -> None:
    first = await open_order(api)
    await walk_warranty_repair_to_closed(first)
    body = repair_order(device=first.order["device"])
    created = await api.post("sh001.clerk", ORDERS, body)
    assert created.status_code == 201 and created.json()["repeat_repair"] is True
    read = await api.get("sh001.clerk", f"{ORDERS}/{created.json()['id']}")
    second = Desk(api, read.json(), read.headers["ETag"])
    other_fault = await second.take("sh001.tech", "diagnosis", diagnosis("F-BAT"))
    assert other_fault["swap_offered"] is False
    order = await second.take("sh001.tech", "diagnosis", diagnosis("F-LCD"))
    assert order["swap_offered"] is True and "F-LCD" in order["swap_offer_reason"]
    assert "swap" in order["timeline"][-1]["note"]
