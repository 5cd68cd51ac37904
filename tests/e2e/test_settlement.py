"""Manufacturer settlement (劳务费结算) on the real processes, through the gateway: two closed
in-warranty Honor repairs of SH-001 make the month's claim; it is submitted, the manufacturer's
file (a bad one refused whole first) accepts one line and rejects the other; the accepted line
is held until the store's keeper sends its old part back (inventory announces it, orders hears
it), then paid in full."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

from servicekit.timeutil import SHANGHAI
from tests.e2e.conftest import Api, repair_order
from tests.e2e.test_repair_lifecycle import ORDERS, Desk

CLAIMS = "/api/v1/settlement/claims"
WAREHOUSE = "/api/v1/warehouses/WH-SH-001"
PART = "HN-SCR-MAGIC6"
# Honor is a brand SH-001 is authorised for and no other end-to-end test repairs at SH.
BRAND, MODEL = "honor", "magic6"


async def closed_warranty_repair(api: Api) -> dict[str, Any]:
    body = repair_order()
    body["device"].update(brand=BRAND, model=MODEL)
    created = await api.post("sh001.clerk", ORDERS, body)
    assert created.status_code == 201, created.text
    assert created.json()["warranty"]["status"] == "in_warranty"
    read = await api.get("sh001.clerk", f"{ORDERS}/{created.json()['id']}")
    desk = Desk(api, read.json(), read.headers["ETag"])
    diagnosis = {
        "fault_code": "F-LCD",
        "actions": ["replace_screen"],
        "parts": [{"part_id": PART, "quantity": 1}],
        "repair_level": "L2",
    }
    await desk.take("sh001.tech", "diagnosis", diagnosis)
    await desk.take("sh001.clerk", "quote", {"labour_fen": 0})
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    order = await desk.take("sh001.tech", "repair/start", {})
    assert order["lines"][0]["warranty"] and order["lines"][0]["issued"] == 1
    line_id = order["lines"][0]["line_id"]
    report = {"actions_done": ["replace_screen"], "repair_level": "L2", "old_parts_kept": [line_id]}
    await desk.take("sh001.tech", "repair/finish", report)
    await desk.take("sh001.clerk", "qc", {"passed": True})
    order = await desk.take("sh001.clerk", "pickup", {})
    assert order["status"] == "closed"
    return order


async def step(
    api: Api, path: str, etag: str, *, json: Any = None, csv: bytes | None = None
) -> Any:
    headers = {**await api.as_user("sh.manager"), "If-Match": etag}
    headers["Idempotency-Key"] = str(uuid.uuid4())
    if csv is not None:
        headers["Content-Type"] = "text/csv"
        return await api.client.post(path, content=csv, headers=headers)
    return await api.client.post(path, json=json or {}, headers=headers)


async def test_a_claim_from_built_to_paid_with_a_rejected_and_a_held_line(api: Api) -> None:
    accepted = await closed_warranty_repair(api)
    rejected = await closed_warranty_repair(api)
    closed_at = datetime.fromisoformat(accepted["closed_at"].replace("Z", "+00:00"))
    month = f"{closed_at.astimezone(SHANGHAI):%Y-%m}"

    built = await api.post("sh.manager", CLAIMS, {"manufacturer": BRAND, "month": month})
    assert built.status_code == 200, built.text
    claim = built.json()
    lines = {x["order_id"]: x for x in claim["lines"]}
    assert {accepted["id"], rejected["id"]} <= set(lines)
    mine = lines[accepted["id"]]
    assert (mine["labour_fen"], mine["parts_fen"], mine["state"]) == (
        5000,  # Honor's L2 labour price in the demo base data
        accepted["lines"][0]["retail_price_fen"],
        "held",
    )
    # Building it again is the same claim; a clerk may not build one.
    again = await api.post("sh.manager", CLAIMS, {"manufacturer": BRAND, "month": month})
    assert (again.json()["id"], again.json()["version"]) == (claim["id"], claim["version"])
    clerk = await api.post("sh001.clerk", CLAIMS, {"manufacturer": BRAND, "month": month})
    assert clerk.status_code == 403
    hidden = await api.get("zj.manager", f"{CLAIMS}/{claim['id']}")
    assert hidden.status_code == 404

    path = f"{CLAIMS}/{claim['id']}"
    submitted = await step(api, f"{path}/submit", built.headers["ETag"])
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    etag = submitted.headers["ETag"]

    rows = ["order_number,decision,reason_code,amount_fen"]
    for line in claim["lines"]:
        if line["order_id"] == rejected["id"]:
            rows.append(f"{line['number']},rejected,NO-PROOF,")
        else:
            rows.append(f"{line['number']},accepted,,{line['claimed_fen']}")
    good = ("\n".join(rows) + "\n").encode()
    bad = good.replace(b"NO-PROOF", b"").replace(b",accepted,", b",accepted?,", 1)
    refused = await step(api, f"{path}/decisions", etag, csv=bad)
    assert refused.status_code == 422, refused.text
    fields = {e["field"] for e in refused.json()["errors"]}
    assert {"rows[2].decision"} <= fields and any(f.endswith(".reason_code") for f in fields)
    unchanged = await api.get("sh.manager", path)
    assert (unchanged.json()["status"], unchanged.headers["ETag"]) == ("submitted", etag)

    decided = await step(api, f"{path}/decisions", etag, csv=good)
    assert decided.status_code == 200, decided.text
    claim = decided.json()
    states = {x["order_id"]: (x["state"], x["reason_code"]) for x in claim["lines"]}
    assert states[rejected["id"]] == ("rejected", "NO-PROOF")
    assert states[accepted["id"]] == ("held", None)
    # The same file again changes nothing.
    twice = await step(api, f"{path}/decisions", etag, csv=good)
    assert twice.status_code == 200 and twice.json()["version"] == claim["version"]

    # Not payable while its old part is owed.
    everything = {"amount_fen": claim["accepted_fen"], "paid_on": month + "-01"}
    early = await step(api, f"{path}/payments", decided.headers["ETag"], json=everything)
    assert early.status_code == 422, early.text
    assert early.json()["errors"][0]["field"] == "amount_fen"

    # The keeper sends back the old parts of every held line of the claim.
    owed = await api.get("sh001.keeper", f"{WAREHOUSE}/old-parts")
    assert owed.status_code == 200, owed.text
    claimed = {x["order_id"] for x in claim["lines"]}
    batch = {
        "lines": [
            {"order_id": x["order_id"], "line_id": x["line_id"], "quantity": x["owed"]}
            for x in owed.json()["items"]
            if x["order_id"] in claimed
        ]
    }
    assert accepted["id"] in {x["order_id"] for x in batch["lines"]}
    sent = await api.post("sh001.keeper", f"{WAREHOUSE}/old-part-returns", batch, str(uuid.uuid4()))
    assert sent.status_code == 201, sent.text

    deadline = time.monotonic() + 30
    while True:
        read = await api.get("sh.manager", path)
        claim = read.json()
        if claim["payable_fen"] == claim["accepted_fen"] and claim["held_fen"] == 0:
            break
        assert time.monotonic() < deadline, f"the old part never made the line payable: {claim}"
        await asyncio.sleep(0.2)
    assert {x["order_id"]: x["state"] for x in claim["lines"]}[accepted["id"]] == "accepted"

    paid = await step(api, f"{path}/payments", read.headers["ETag"], json=everything)
    assert paid.status_code == 200, paid.text
    claim = paid.json()
    assert (claim["status"], claim["paid_fen"]) == ("paid", claim["accepted_fen"])
    final = {x["order_id"]: x["state"] for x in claim["lines"]}
    assert (final[accepted["id"]], final[rejected["id"]]) == ("paid", "rejected")
    listed = await api.get("hq.analyst", CLAIMS, manufacturer=BRAND, month=month)
    assert [c["status"] for c in listed.json()["items"]] == ["paid"]
