"""The door on the real processes (SQLite, or PostgreSQL with TEST_DATABASE_URL): a number typed
on a Chinese keyboard is stored as ASCII and found again; a date at the edge of the calendar is a
422 naming the field, never a 500; a user moved elsewhere is refused with their old token at
once; guessing a username's password locks the guesser's address, not the username."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import httpx

from tests.e2e.conftest import Api, new_imei, new_phone, repair_order

TOKEN = "/api/v1/auth/token"

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
CALENDAR = "must be between 1990-01-01 and 2099-12-31"


async def test_a_full_width_imei_and_phone_are_kept_as_ascii_and_found_again(api: Api) -> None:
    imei, phone = new_imei(), new_phone()
    order = repair_order()
    order["customer"]["phone"] = phone.translate(FULL_WIDTH)
    order["device"]["imei"] = imei.translate(FULL_WIDTH)
    created = await api.post("sh001.clerk", "/api/v1/repair-orders", order)
    assert created.status_code == 201, created.text
    assert (created.json()["device"]["imei"], created.json()["customer"]["phone"]) == (imei, phone)

    passport = await api.get("sh001.clerk", f"/api/v1/devices/{imei}")
    assert passport.status_code == 200, passport.text
    assert [o["id"] for o in passport.json()["orders"]] == [created.json()["id"]]
    listed = await api.get("sh001.clerk", "/api/v1/repair-orders", imei=imei, phone=phone)
    assert [o["id"] for o in listed.json()["items"]] == [created.json()["id"]]


async def test_days_outside_the_calendar_are_422_naming_the_field(api: Api) -> None:
    for field, day in (("received_from", "0001-01-01"), ("received_to", "9999-12-31")):
        reply = await api.get("sh001.clerk", "/api/v1/repair-orders", **{field: day})
        assert reply.status_code == 422, reply.text
        assert reply.json()["errors"] == [{"field": field, "reason": CALENDAR}]

    order = repair_order(promised_date="9999-12-31")
    order["device"]["purchase_date"] = "0001-01-01"
    refused = await api.post("sh001.clerk", "/api/v1/repair-orders", order)
    assert refused.status_code == 422, refused.text
    assert sorted(e["field"] for e in refused.json()["errors"]) == [
        "device.purchase_date",
        "promised_date",
    ]


async def test_a_user_moved_to_another_store_is_refused_with_the_old_token_at_once(
    api: Api,
) -> None:
    username = f"door.clerk{uuid.uuid4().hex[:8]}"
    user = {
        "display_name": "调店受理员",
        "role": "clerk",
        "org_unit_id": "SH-001",
        "password": "s3cret-pass",
    }
    assert (await put(api, f"/api/v1/admin/users/{username}", user)).status_code == 200
    old = await bearer(api, username, "s3cret-pass")
    assert (await api.client.get("/api/v1/me", headers=old)).json()["store_id"] == "SH-001"

    moved = await put(api, f"/api/v1/admin/users/{username}", {**user, "org_unit_id": "SH-002"})
    assert moved.status_code == 200, moved.text
    refused = await api.client.get("/api/v1/repair-orders", headers=old)
    assert refused.status_code == 401, refused.text
    new = await bearer(api, username, "s3cret-pass")
    assert (await api.client.get("/api/v1/me", headers=new)).json()["store_id"] == "SH-002"


async def test_guessing_a_username_locks_the_guesser_not_its_owner(api: Api) -> None:
    username = f"door.tech{uuid.uuid4().hex[:8]}"
    user = {
        "display_name": "被猜的工程师",
        "role": "technician",
        "org_unit_id": "SH-001",
        "password": "s3cret-pass",
    }
    assert (await put(api, f"/api/v1/admin/users/{username}", user)).status_code == 200
    # The local gateway trusts its own host as the proxy, which names each client here.
    guesser, owner = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
    for n in range(5):
        wrong = {"username": username, "password": f"guess-{n}"}
        assert (await api.client.post(TOKEN, data=wrong, headers=guesser)).status_code == 401
    right = {"username": username, "password": "s3cret-pass"}
    assert (await api.client.post(TOKEN, data=right, headers=guesser)).status_code == 429
    assert (await api.client.post(TOKEN, data=right, headers=owner)).status_code == 200


async def put(api: Api, path: str, body: Mapping[str, object]) -> httpx.Response:
    return await api.client.put(path, json=body, headers=await api.as_user("hq.admin"))


async def bearer(api: Api, username: str, password: str) -> dict[str, str]:
    reply = await api.client.post(TOKEN, data={"username": username, "password": password})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}
