"""Serialised items (串号) and superseded parts (替代料) on the real processes, through the
gateway: a receipt names its serials and each can be found; a transfer of serials with one
short; a repair order issues a serialised mainboard, recorded against the order; a serial is
never in two places, even when two warehouses book it at once; the catalog shows superseded
chains and refuses a loop. Serials are made up per run, so the tests share the system."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.e2e.conftest import Api
from tests.e2e.test_repair_lifecycle import diagnosed_and_quoted, take_in

STORE, CENTRAL, PART = "WH-ZJ-001", "WH-ZJ", "SS-MAI-GALAXYS24"  # a mainboard: serialised


def new_serials(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:10].upper()
    return [f"SS{tag}{i}" for i in range(n)]


async def receive(api: Api, user: str, warehouse: str, serials: list[str], part: str = PART) -> Any:
    body = {"part_number": part, "quantity": len(serials), "unit_cost_fen": 118_000}
    reply = await api.post(
        user,
        f"/api/v1/warehouses/{warehouse}/receipts",
        {**body, "serials": serials},
        str(uuid.uuid4()),
    )
    return reply


async def serial(api: Api, value: str, user: str = "hq.admin") -> dict[str, Any]:
    reply = await api.get(user, f"/api/v1/serials/{value}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def balanced(api: Api, part: str = PART) -> None:
    reply = await api.get("hq.admin", "/api/v1/inventory/conservation", part_number=part)
    assert reply.status_code == 200, reply.text
    [report] = reply.json()["parts"]
    assert reply.json()["balanced"] is True, report
    assert report["serials_off"] == [] and report["warehouses_off"] == []


async def test_a_receipt_names_its_serials_and_each_can_be_found(api: Api) -> None:
    serials = new_serials(3)
    body = {"part_number": PART, "quantity": 3, "unit_cost_fen": 118_000, "serials": serials}
    key = str(uuid.uuid4())
    reply = await api.post("zj001.keeper", f"/api/v1/warehouses/{STORE}/receipts", body, key)
    assert reply.status_code == 201, reply.text
    movement = reply.json()
    assert (movement["kind"], movement["quantity"], movement["serials"]) == ("receipt", 3, serials)
    replay = await api.post("zj001.keeper", f"/api/v1/warehouses/{STORE}/receipts", body, key)
    assert replay.status_code == 201 and replay.json() == movement

    listed = await api.get("zj001.keeper", f"/api/v1/warehouses/{STORE}/serials", part_number=PART)
    assert listed.status_code == 200, listed.text
    assert set(serials) <= {x["serial"] for x in listed.json()["items"]}
    found = await serial(api, serials[0], "zj001.keeper")
    assert (found["state"], found["warehouse_id"], found["part_number"]) == (
        "in_stock",
        STORE,
        PART,
    )
    assert [(m["kind"], m["quantity"], m["serials"]) for m in found["history"]] == [
        ("receipt", 1, [serials[0]])
    ]
    # Another branch never had it: it does not exist for them.
    assert (await api.get("sh.manager", f"/api/v1/serials/{serials[0]}")).status_code == 404
    ledger = await api.get(
        "zj001.keeper", f"/api/v1/warehouses/{STORE}/movements", part_number=PART, limit="3"
    )
    assert [m["serials"] for m in ledger.json()["items"]] == [[s] for s in reversed(serials)]

    # Bad input names the field; a serial already in stock is a conflict.
    duplicate = {**body, "serials": [*new_serials(2), "bad serial"]}
    reply = await api.post("zj001.keeper", f"/api/v1/warehouses/{STORE}/receipts", duplicate)
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["serials[2]"]
    reply = await api.post(
        "zj001.keeper", f"/api/v1/warehouses/{STORE}/receipts", {**body, "serials": serials[:2]}
    )
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "serials"
    reply = await receive(api, "zj.manager", CENTRAL, [serials[1]])
    assert reply.status_code == 409 and serials[1] in reply.json()["detail"], reply.text
    await balanced(api)


async def test_a_transfer_of_serials_arrives_with_one_short(api: Api) -> None:
    serials = new_serials(3)
    assert (await receive(api, "zj.manager", CENTRAL, serials)).status_code == 201
    body = {
        "from_warehouse_id": CENTRAL,
        "to_warehouse_id": STORE,
        "lines": [{"part_number": PART, "quantity": 3}],
    }
    reply = await api.post("zj001.keeper", "/api/v1/transfers", body, str(uuid.uuid4()))
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "lines[0].serials"
    body["lines"][0]["serials"] = serials  # type: ignore[index]
    reply = await api.post("zj001.keeper", "/api/v1/transfers", body, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    path = f"/api/v1/transfers/{reply.json()['id']}"
    assert reply.json()["lines"][0]["serials"] == serials
    for step in ("approve", "ship"):
        reply = await api.post("zj.manager", f"{path}/{step}", {}, str(uuid.uuid4()))
        assert reply.status_code == 200, reply.text
    moving = await serial(api, serials[0])
    assert (moving["state"], moving["warehouse_id"]) == ("in_transit", None)
    assert path.endswith(moving["transfer_id"])
    # On its way, it is in no warehouse: the sender cannot write it off.
    scrap = {
        "part_number": PART,
        "quantity": 1,
        "kind": "scrap",
        "reason": "x",
        "serials": serials[:1],
    }
    reply = await api.post("zj.manager", f"/api/v1/warehouses/{CENTRAL}/write-offs", scrap)
    assert reply.status_code == 409, reply.text
    await balanced(api)

    wrong = {"discrepancies": [{"part_number": PART, "short_serials": ["NOT-ON-IT"]}]}
    reply = await api.post("zj001.keeper", f"{path}/receive", wrong, str(uuid.uuid4()))
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"] == "discrepancies[0].short_serials[0]"
    short = {"discrepancies": [{"part_number": PART, "short": 1, "short_serials": serials[1:2]}]}
    reply = await api.post("zj001.keeper", f"{path}/receive", short, str(uuid.uuid4()))
    assert reply.status_code == 200, reply.text
    [line] = reply.json()["lines"]
    assert (line["received"], line["short"], line["short_serials"]) == (2, 1, serials[1:2])
    arrived, lost = await serial(api, serials[0]), await serial(api, serials[1])
    assert (arrived["state"], arrived["warehouse_id"]) == ("in_stock", STORE)
    assert [m["kind"] for m in arrived["history"]] == ["receipt", "transfer_out", "transfer_in"]
    assert (lost["state"], lost["warehouse_id"]) == ("missing", None)
    assert [m["kind"] for m in lost["history"]][-1] == "adjustment"
    await balanced(api)


async def test_a_repair_order_issues_a_serialised_mainboard(api: Api) -> None:
    """The order reserves any free serial of the mainboard at approval and issues it when the
    repair starts; the serial is then consumed by that order."""
    part, warehouse = "HW-MAI-P60", "WH-SH-001"
    path = f"/api/v1/warehouses/{warehouse}/serials"
    [mine] = new_serials(1)
    assert (await receive(api, "sh001.keeper", warehouse, [mine], part)).status_code == 201
    before = await api.get("sh001.keeper", path, part_number=part)
    free = {x["serial"] for x in before.json()["items"] if x["order_id"] is None}
    assert mine in free

    desk = await take_in(api)
    await diagnosed_and_quoted(desk, part, labour=8_000)
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    if order["status"] == "awaiting_approval":  # a mainboard costs more than SH's threshold
        order = await desk.take("sh.manager", "manager-approval", {"approved": True})
    assert order["status"] == "approved" and order["lines"][0]["reserved"] == 1
    held = [
        x
        for x in (await api.get("sh001.keeper", path, part_number=part)).json()["items"]
        if x["order_id"] == order["id"]
    ]
    assert len(held) == 1 and held[0]["serial"] in free

    order = await desk.take("sh001.tech", "repair/start", {})
    assert order["lines"][0]["issued"] == 1
    consumed = await serial(api, held[0]["serial"], "sh001.keeper")
    assert (consumed["state"], consumed["warehouse_id"]) == ("consumed", None)
    assert (consumed["order_id"], consumed["line_id"]) == (order["id"], held[0]["line_id"])
    assert [(m["kind"], m["document_id"]) for m in consumed["history"]][-1] == (
        "issue",
        order["id"],
    )
    after = await api.get("sh001.keeper", path, part_number=part)
    assert held[0]["serial"] not in {x["serial"] for x in after.json()["items"]}
    await balanced(api, part)


async def test_a_serial_is_never_in_two_places(api: Api) -> None:
    [once] = new_serials(1)
    assert (await receive(api, "zj001.keeper", STORE, [once])).status_code == 201
    assert (await receive(api, "zj.manager", CENTRAL, [once])).status_code == 409
    # Written off where it is not: refused; where it is: gone, and it can come back only as
    # the manufacturer's return.
    rtm = {"part_number": PART, "quantity": 1, "kind": "return_to_manufacturer", "reason": "坏"}
    reply = await api.post(
        "zj.manager", f"/api/v1/warehouses/{CENTRAL}/write-offs", {**rtm, "serials": [once]}
    )
    assert reply.status_code == 409, reply.text
    reply = await api.post(
        "zj001.keeper", f"/api/v1/warehouses/{STORE}/write-offs", {**rtm, "serials": [once]}
    )
    assert reply.status_code == 201, reply.text
    assert (await serial(api, once))["state"] == "returned_to_manufacturer"
    assert (await receive(api, "zj.manager", CENTRAL, [once])).status_code == 201
    assert (await serial(api, once))["warehouse_id"] == CENTRAL

    # Two warehouses book the same new serial at the same moment: one of them has it.
    [raced] = new_serials(1)
    replies = await asyncio.gather(
        receive(api, "zj001.keeper", STORE, [raced]),
        receive(api, "zj.manager", CENTRAL, [raced]),
    )
    assert sorted(r.status_code for r in replies) == [201, 409], [r.text for r in replies]
    where = await serial(api, raced)
    winner = STORE if replies[0].status_code == 201 else CENTRAL
    assert (where["state"], where["warehouse_id"]) == ("in_stock", winner)
    assert [m["warehouse_id"] for m in where["history"]] == [winner]
    await balanced(api)


async def test_the_catalog_shows_superseded_chains_and_refuses_a_loop(api: Api) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    a, b, c = (f"SS-BCK-{tag}-{x}" for x in "ABC")
    admin = await api.as_user("hq.admin")

    def part(successor: str | None) -> dict[str, Any]:
        return {
            "brand": "samsung",
            "description": "后盖 back cover",
            "category": "back-cover",
            "standard_cost_fen": 3_000,
            "retail_price_fen": 9_900,
            "superseded_by": successor,
        }

    for number, successor in ((c, None), (b, c), (a, b)):
        reply = await api.client.put(f"/api/v1/parts/{number}", json=part(successor), headers=admin)
        assert reply.status_code == 200, reply.text
    assert reply.json()["superseded_chain"] == [b, c]
    looped = await api.client.put(f"/api/v1/parts/{c}", json=part(a), headers=admin)
    assert looped.status_code == 409, looped.text

    reply = await api.get("zj001.clerk", f"/api/v1/parts/{a}")
    assert reply.status_code == 200, reply.text
    assert (reply.json()["superseded_by"], reply.json()["current_part_number"]) == (b, c)
    listed = await api.get("zj001.clerk", "/api/v1/parts", brand="samsung", category="back-cover")
    chains = {p["part_number"]: p["superseded_chain"] for p in listed.json()["items"]}
    assert (chains[a], chains[b], chains[c]) == ([b, c], [c], [])
    assert (await api.get("zj001.clerk", "/api/v1/parts/NO-SUCH-PART")).status_code == 404
