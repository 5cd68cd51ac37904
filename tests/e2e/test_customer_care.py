"""Customer care on the real processes, through the gateway: a follow-up call after pickup and
a low score that opens a complaint only its branch sees; a customer found from another store by
exact phone, masked in lists; export and erasure (PIPL), audited; bad input named by field and
changing nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from servicekit.testing import eventually
from tests.e2e.conftest import Api, repair_order
from tests.e2e.test_repair_lifecycle import ORDERS, Desk, diagnosed_and_quoted, part_in_stock

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def taken_in(api: Api, store_clerk: str = "sh001.clerk") -> Desk:
    """An out-of-warranty repair with the customer's consent to messages."""
    body = repair_order()
    body["device"]["purchase_date"] = None
    body["customer"]["message_consent"] = True
    created = await api.post(store_clerk, ORDERS, body)
    assert created.status_code == 201, created.text
    read = await api.get(store_clerk, f"{ORDERS}/{created.json()['id']}")
    return Desk(api, read.json(), read.headers["ETag"])


async def picked_up(api: Api) -> Desk:
    """An order at SH-001 walked from intake to closed (paid and picked up)."""
    part, _ = await part_in_stock(api)
    desk = await taken_in(api)
    order = await diagnosed_and_quoted(desk, part, labour=5_000)
    await desk.take("sh001.clerk", "approval", {"accepted": True})
    await desk.take("sh001.tech", "repair/start", {})
    await desk.take(
        "sh001.tech", "repair/finish", {"actions_done": ["replace_screen"], "repair_level": "L2"}
    )
    await desk.take("sh001.clerk", "qc", {"passed": True})
    due = order["quote"]["total_fen"]
    order = await desk.take("sh001.clerk", "pickup", {"method": "cash", "amount_fen": due})
    assert order["status"] == "closed"
    return desk


async def follow_up_of(api: Api, username: str, order_id: str) -> dict[str, Any] | None:
    reply = await api.get(username, "/api/v1/follow-ups", limit="100")
    assert reply.status_code == 200, reply.text
    return next((f for f in reply.json()["items"] if f["order_id"] == order_id), None)


async def customer_id_of(api: Api, phone: str) -> str:
    async def known() -> str | None:
        reply = await api.get("sh001.clerk", "/api/v1/customers/lookup", phone=phone)
        return reply.json()["id"] if reply.status_code == 200 else None

    return await eventually(known, within=15)


def fields(reply: httpx.Response) -> set[str]:
    return {e["field"] for e in reply.json()["errors"]}


async def test_a_low_follow_up_score_opens_a_complaint_only_its_branch_manager_sees(
    api: Api,
) -> None:
    desk = await picked_up(api)
    order_id = desk.order["id"]
    task = await eventually(lambda: follow_up_of(api, "sh.manager", order_id), within=15)
    assert (task["state"], task["attempts"], task["store_id"]) == ("open", 0, "SH-001")
    assert task["customer_name"] == "王小明" and task["due_at"] > task["picked_up_at"]
    # Not yet taken: the phone stays masked even for the manager.
    assert "****" in task["customer_phone"]
    assert await follow_up_of(api, "zj.manager", order_id) is None
    outside = await api.get("zj.manager", f"/api/v1/follow-ups/{task['id']}")
    assert outside.status_code == 404

    attempts = f"/api/v1/follow-ups/{task['id']}/attempts"
    bad = await api.post("sh.manager", attempts, {"reached": True, "score": 7}, str(uuid.uuid4()))
    assert bad.status_code == 422 and fields(bad) == {"score"}
    missing = await api.post("sh.manager", attempts, {"reached": True}, str(uuid.uuid4()))
    assert missing.status_code == 422 and fields(missing) == {"score"}
    unknown = await api.post(
        "sh.manager", f"/api/v1/follow-ups/{UNKNOWN}/attempts", {"reached": False}
    )
    assert unknown.status_code == 404
    unchanged = await api.get("sh.manager", f"/api/v1/follow-ups/{task['id']}")
    assert (unchanged.json()["attempts"], unchanged.json()["state"]) == (0, "open")

    taken = await api.post("sh.manager", f"/api/v1/follow-ups/{task['id']}/take", {})
    assert taken.status_code == 200, taken.text
    assert taken.json()["customer_phone"] == desk.order["customer"]["phone"]  # theirs to call
    missed = await api.post("sh.manager", attempts, {"reached": False}, str(uuid.uuid4()))
    assert missed.status_code == 201, missed.text
    assert (missed.json()["state"], missed.json()["attempts"]) == ("open", 1)

    key = str(uuid.uuid4())
    call = {"reached": True, "score": 1, "comments": "screen flickers again"}
    done = await api.post("sh.manager", attempts, call, key)
    assert done.status_code == 201, done.text
    again = await api.post("sh.manager", attempts, call, key)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == done.json()
    result = done.json()
    assert (result["state"], result["score"], result["attempts"]) == ("done", 1, 2)
    complaint_id = result["complaint_id"]
    assert complaint_id

    listed = await api.get("sh.manager", "/api/v1/complaints", state="open", limit="100")
    [case] = [c for c in listed.json()["items"] if c["id"] == complaint_id]
    assert (case["order_id"], case["score"], case["comments"]) == (
        order_id,
        1,
        "screen flickers again",
    )
    theirs = await api.get("zj.manager", "/api/v1/complaints", limit="100")
    assert complaint_id not in [c["id"] for c in theirs.json()["items"]]
    for outsider in ("zj.manager", "sh001.clerk"):
        hidden = await api.get(outsider, f"/api/v1/complaints/{complaint_id}")
        assert hidden.status_code == 404, outsider
    hq = await api.get("hq.analyst", f"/api/v1/complaints/{complaint_id}")
    assert hq.status_code == 200

    noted = await api.post(
        "sh.manager", f"/api/v1/complaints/{complaint_id}/notes", {"note": "called, apologised"}
    )
    assert noted.status_code == 201 and noted.json()["notes"][0]["note"] == "called, apologised"
    empty = await api.post(
        "sh.manager", f"/api/v1/complaints/{complaint_id}/close", {"outcome": " "}
    )
    assert empty.status_code == 422 and fields(empty) == {"outcome"}
    closed = await api.post(
        "sh.manager", f"/api/v1/complaints/{complaint_id}/close", {"outcome": "screen redone free"}
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["outcome"]) == ("closed", "screen redone free")


async def test_a_customer_is_found_from_another_store_by_exact_phone_and_masked_in_lists(
    api: Api,
) -> None:
    desk = await taken_in(api)
    phone = desk.order["customer"]["phone"]
    imei = desk.order["device"]["imei"]
    masked = f"{phone[:3]}****{phone[-4:]}"
    customer_id = await customer_id_of(api, phone)

    found = await api.get("sh002.clerk", "/api/v1/customers/lookup", phone=phone)
    assert found.status_code == 200 and found.json()["phone"] == phone  # they typed it
    by_imei = await api.get("zj001.clerk", "/api/v1/customers/lookup", imei=imei)
    assert by_imei.json()["id"] == customer_id and by_imei.json()["phone"] == masked

    async def listed(username: str) -> dict[str, Any] | None:
        reply = await api.get(username, "/api/v1/customers", limit="100")
        assert reply.status_code == 200, reply.text
        return next((c for c in reply.json()["items"] if c["id"] == customer_id), None)

    assert (await listed("sh001.clerk") or {}).get("phone") == phone  # holds the open order
    assert (await listed("sh.manager") or {}).get("phone") == masked
    assert await listed("sh002.clerk") is None  # no order there: not in its list
    assert await listed("zj.manager") is None

    detail = await api.get("sh002.clerk", f"/api/v1/customers/{customer_id}")
    assert detail.status_code == 200 and detail.json()["phone"] == masked
    [record] = detail.json()["history"]
    assert (record["order_id"], record["store_id"], record["status"]) == (
        desk.order["id"],
        "SH-001",
        "received",
    )
    assert detail.json()["message_consent"] is True

    bad = await api.get("sh002.clerk", "/api/v1/customers/lookup", phone="12345")
    assert bad.status_code == 422 and fields(bad) == {"phone"}
    headers = {**await api.as_user("sh001.clerk"), "If-Match": detail.headers["ETag"]}
    path = f"/api/v1/customers/{customer_id}"
    wrong = await api.client.put(path, json={"phone": "2345", "name": "王大明"}, headers=headers)
    assert wrong.status_code == 422 and fields(wrong) == {"phone"}
    still = await api.get("sh001.clerk", path)
    assert (still.json()["name"], still.json()["phone"]) == ("王小明", phone)
    nobody = await api.get("sh001.clerk", f"/api/v1/customers/{UNKNOWN}")
    assert nobody.status_code == 404
    edited = await api.client.put(path, json={"email": "wang@example.com"}, headers=headers)
    assert edited.status_code == 200, edited.text
    assert edited.json()["email"] == "wang@example.com"
    stale = await api.client.put(path, json={"name": "王大明"}, headers=headers)
    assert stale.status_code == 412


async def test_export_and_erasure_work_and_are_audited(api: Api) -> None:
    desk = await taken_in(api)
    phone = desk.order["customer"]["phone"]
    customer_id = await customer_id_of(api, phone)
    await desk.take("sh001.clerk", "cancel", {"reason": "customer changed their mind"})

    async def history_closed() -> bool:
        reply = await api.get("sh.manager", f"/api/v1/customers/{customer_id}")
        return reply.json()["history"][0]["status"] == "cancelled"

    await eventually(history_closed, within=15)

    export = f"/api/v1/customers/{customer_id}/export"
    no_reason = await api.get("sh.manager", export)
    assert no_reason.status_code == 422 and fields(no_reason) == {"reason"}
    exported = await api.get("sh.manager", export, reason="customer request 2026-001")
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["customer"]["phone"] == phone
    assert [h["order_id"] for h in document["history"]] == [desk.order["id"]]
    assert document["consents"][0]["message_consent"] is True
    assert [d["imei"] for d in document["devices"]] == [desk.order["device"]["imei"]]

    erasure = f"/api/v1/customers/{customer_id}/erasure"
    reason = {"reason": "customer request 2026-001"}
    assert (await api.post("sh001.clerk", erasure, reason)).status_code == 403
    assert (await api.post("zj.manager", erasure, reason)).status_code == 404
    blank = await api.post("sh.manager", erasure, {"reason": ""})
    assert blank.status_code == 422 and fields(blank) == {"reason"}
    erased = await api.post("sh.manager", erasure, reason, str(uuid.uuid4()))
    assert erased.status_code == 200, erased.text
    assert (erased.json()["name"], erased.json()["phone"], erased.json()["email"]) == (
        "已删除",
        None,
        None,
    )
    gone = await api.get("sh001.clerk", "/api/v1/customers/lookup", phone=phone)
    assert gone.status_code == 404
    kept = await api.get("sh.manager", f"/api/v1/customers/{customer_id}")
    assert [h["order_id"] for h in kept.json()["history"]] == [desk.order["id"]]

    audit = await api.get("hq.admin", "/api/v1/privacy-audit", customer_id=customer_id)
    assert audit.status_code == 200, audit.text
    assert [(e["action"], e["actor_role"], e["reason"]) for e in audit.json()["items"]] == [
        ("erasure", "branch_manager", "customer request 2026-001"),
        ("export", "branch_manager", "customer request 2026-001"),
    ]
    assert (await api.get("sh.manager", "/api/v1/privacy-audit")).status_code == 403
    unknown = await api.post("hq.admin", f"/api/v1/customers/{UNKNOWN}/erasure", reason)
    assert unknown.status_code == 404
