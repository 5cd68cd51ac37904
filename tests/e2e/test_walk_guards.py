"""Walked as a shop would, on the real processes through the gateway: a paid repair quoted over
the manager's threshold and then short of its part. The customer gets one quote SMS and one
waiting-for-parts SMS, however the clerk retries; a second yes while the manager's is awaited
is 409 with nothing written. And an in-warranty quick order at a store not authorised for the
brand is sent on, not completed on the spot for free."""

from __future__ import annotations

import uuid

import httpx

from devtools.system import LocalSystem
from servicekit.testing import eventually
from tests.e2e.conftest import Api, new_phone, repair_order
from tests.e2e.test_notifications import NOTIFICATIONS_CONSUMER, deliveries
from tests.e2e.test_repair_lifecycle import ORDERS
from tests.e2e.test_repair_routes import OLD_BATTERY, diagnosis, open_order, out_of_warranty

SH_THRESHOLD_FEN = 100_000  # the SH branch's approval threshold (demo data)


async def settled(system: LocalSystem) -> None:
    """The notifications consumer has nothing left to handle."""
    nc = await system.connect_bus()
    try:
        js = nc.jetstream()

        async def idle() -> bool:
            info = await js.consumer_info("ORDERS", NOTIFICATIONS_CONSUMER)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(idle, within=30)
    finally:
        await nc.close()


async def tracked_status(api: Api, system: LocalSystem, order_id: str) -> str:
    link = await api.get("sh001.clerk", f"{ORDERS}/{order_id}/tracking-link")
    if link.status_code != 200:
        return ""
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as public:
        shown = await public.get(f"/track/{link.json()['token']}")
    return str(shown.json()["status"]) if shown.status_code == 200 else ""


async def test_a_quote_over_the_threshold_and_a_parts_wait_text_the_customer_once_each(
    api: Api, system: LocalSystem
) -> None:
    desk = await open_order(
        api,
        device=out_of_warranty(),
        customer={"name": "王小明", "phone": new_phone(), "message_consent": True},
    )
    plan = diagnosis("F-BAT", ("replace_battery",))
    plan["parts"] = [{"part_id": OLD_BATTERY, "quantity": 1}]  # SH-001 holds none (demo)
    await desk.take("sh001.tech", "diagnosis", plan)
    order = await desk.take("sh001.clerk", "quote", {"labour_fen": SH_THRESHOLD_FEN})
    assert order["quote"]["manager_approval_required"] is True
    order = await desk.take("sh001.clerk", "approval", {"accepted": True})
    assert order["status"] == "awaiting_approval"

    # The customer says yes again (a fresh key, the current If-Match): 409, nothing written.
    headers = {
        **await api.as_user("sh001.clerk"),
        "If-Match": desk.etag,
        "Idempotency-Key": str(uuid.uuid4()),
    }
    again = await api.client.post(
        f"{ORDERS}/{order['id']}/approval", json={"accepted": True}, headers=headers
    )
    assert again.status_code == 409, again.text
    read = await api.get("sh001.clerk", f"{ORDERS}/{order['id']}")
    assert read.headers["ETag"] == desk.etag
    assert len(read.json()["timeline"]) == len(order["timeline"])

    order = await desk.take("sh.manager", "manager-approval", {"approved": True})
    assert order["status"] == "waiting_parts"
    # Retried with nothing arrived: still waiting, the attempt in the timeline, no new SMS.
    order = await desk.take("sh001.clerk", "parts", {})
    assert order["status"] == "waiting_parts" and order["timeline"][-1]["step"] == "parts"
    order = await desk.take("sh001.clerk", "cancel", {"reason": "the customer will come back"})

    async def shown_cancelled() -> bool:
        return await tracked_status(api, system, order["id"]) == "cancelled"

    await eventually(shown_cancelled, within=30)
    await settled(system)
    kinds = sorted(row["kind"] for row in await deliveries(api, order["id"]))
    assert kinds == ["order_received", "quote_to_approve", "waiting_parts"]


async def test_an_in_warranty_quick_order_at_a_store_not_authorised_is_sent_on(api: Api) -> None:
    # SH-001 is not authorised for OPPO (demo data); bought last month: in warranty.
    device = {**repair_order()["device"], "brand": "oppo", "model": "reno11"}
    desk = await open_order(api, device=device, service_type="software")
    warranty = desk.order["warranty"]
    assert (warranty["status"], warranty["send_on_required"]) == ("in_warranty", True)
    body = {"actions_done": ["flash_firmware"], "service_fen": 0, "amount_fen": 0}
    refused = await desk.step("sh001.tech", "complete", {**body, "method": "cash"})
    assert refused.status_code == 409, refused.text
    assert "send it to an authorised store" in refused.json()["detail"]
    assert desk.order["status"] == "received" and desk.order["payments"] == []
    # SH-002 is authorised for OPPO: sent on there.
    order = await desk.take("sh001.clerk", "send-out", {"branch_id": "SH", "store_id": "SH-002"})
    assert order["status"] == "sent_out"


async def test_a_transfer_received_again_with_other_discrepancies_is_409(api: Api) -> None:
    part = "SS-BAT-GALAXYS24"  # stocked at the ZJ central (demo data)
    body = {
        "from_warehouse_id": "WH-ZJ",
        "to_warehouse_id": "WH-ZJ-001",
        "lines": [{"part_number": part, "quantity": 2}],
    }
    reply = await api.post("zj001.keeper", "/api/v1/transfers", body, str(uuid.uuid4()))
    assert reply.status_code == 201, reply.text
    path = f"/api/v1/transfers/{reply.json()['id']}"
    for user, step in (("zj.manager", "approve"), ("zj.manager", "ship")):
        reply = await api.post(user, f"{path}/{step}", {}, str(uuid.uuid4()))
        assert reply.status_code == 200, reply.text
    short = {"discrepancies": [{"part_number": part, "short": 1}]}
    received = await api.post("zj001.keeper", f"{path}/receive", short, str(uuid.uuid4()))
    assert received.status_code == 200, received.text

    same = await api.post("zj001.keeper", f"{path}/receive", short, str(uuid.uuid4()))
    assert same.status_code == 200 and same.json() == received.json(), same.text
    damaged = {"discrepancies": [{"part_number": part, "damaged": 1}]}
    other = await api.post("zj001.keeper", f"{path}/receive", damaged, str(uuid.uuid4()))
    assert other.status_code == 409, other.text
    [error] = other.json()["errors"]
    assert error["field"] == "discrepancies" and part in error["reason"]
    assert (await api.get("zj001.keeper", path)).json() == received.json()
