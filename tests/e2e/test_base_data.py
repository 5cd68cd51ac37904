"""HQ base data on the real processes, through the gateway: hq_admin changes a warranty policy,
an approval threshold and a fault code, and the next intake, quote and diagnosis obey it
without a restart; store staff may not write; a user made by the admin signs in, and once
deactivated is refused. Each test puts back what it changed (the system is shared)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from servicekit.demo import DEMO_PASSWORD
from servicekit.paging import encode_page_token
from servicekit.timeutil import shanghai_day, utc_now
from tests.e2e.conftest import Api, repair_order

ORDERS = "/api/v1/repair-orders"


async def put(api: Api, username: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return await api.client.put(path, json=body, headers=await api.as_user(username))


async def take_in_samsung(api: Api, bought_days_ago: int | None) -> dict[str, Any]:
    """At ZJ-001, authorised for Samsung."""
    body = repair_order()
    body["device"].update(brand="samsung", model="galaxy-s24")
    body["device"]["purchase_date"] = (
        (shanghai_day(utc_now()) - timedelta(days=bought_days_ago)).isoformat()
        if bought_days_ago is not None
        else None
    )
    created = await api.post("zj001.clerk", ORDERS, body)
    assert created.status_code == 201, created.text
    order: dict[str, Any] = created.json()
    return order


async def step(
    api: Api, username: str, order: dict[str, Any], name: str, body: dict[str, Any]
) -> httpx.Response:
    headers = {**await api.as_user(username), "If-Match": f'"{order["version"]}"'}
    return await api.client.post(f"{ORDERS}/{order['id']}/{name}", json=body, headers=headers)


@pytest.fixture
async def samsung_policy(api: Api) -> AsyncIterator[dict[str, Any]]:
    reply = await api.get("zj001.clerk", "/api/v1/warranty-policies")
    assert reply.status_code == 200, reply.text
    policy = next(p for p in reply.json()["items"] if p["brand"] == "samsung")
    yield policy
    put_back = await put(api, "hq.admin", "/api/v1/warranty-policies/samsung", policy)
    assert put_back.status_code == 200, put_back.text


async def test_the_next_intake_obeys_a_changed_warranty_policy(
    api: Api, samsung_policy: dict[str, Any]
) -> None:
    assert samsung_policy["main_unit_months"] == 12
    before = await take_in_samsung(api, bought_days_ago=400)
    assert before["warranty"]["status"] == "out_of_warranty"

    longer = {**samsung_policy, "main_unit_months": 24}
    longer.pop("brand")
    changed = await put(api, "hq.admin", "/api/v1/warranty-policies/samsung", longer)
    assert changed.status_code == 200, changed.text
    assert changed.json()["main_unit_months"] == 24

    after = await take_in_samsung(api, bought_days_ago=400)
    assert after["warranty"]["status"] == "in_warranty"


async def test_the_next_quote_obeys_a_changed_threshold(api: Api) -> None:
    listed = await api.get("zj.manager", "/api/v1/approval-thresholds")
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == [{"branch_id": "ZJ", "amount_fen": 80_000}]
    etag = listed.headers["ETag"]

    async def quoted() -> dict[str, Any]:
        order = await take_in_samsung(api, bought_days_ago=None)  # out of warranty
        diagnosed = await step(
            api, "zj001.tech", order, "diagnosis", {"fault_code": "F-LCD", "repair_level": "L1"}
        )
        assert diagnosed.status_code == 200, diagnosed.text
        reply = await step(api, "zj001.clerk", diagnosed.json(), "quote", {"labour_fen": 10_000})
        assert reply.status_code == 200, reply.text
        quote: dict[str, Any] = reply.json()["quote"]
        return quote

    assert (await quoted())["manager_approval_required"] is False
    lower = await api.client.put(
        "/api/v1/approval-thresholds/ZJ",
        json={"amount_fen": 5_000},
        headers={**await api.as_user("hq.admin"), "If-Match": etag},
    )
    assert lower.status_code == 200, lower.text
    try:
        # The ETag read before the change is stale now.
        stale = await api.client.put(
            "/api/v1/approval-thresholds/ZJ",
            json={"amount_fen": 6_000},
            headers={**await api.as_user("hq.admin"), "If-Match": etag},
        )
        assert stale.status_code == 412, stale.text
        assert (await quoted())["manager_approval_required"] is True
    finally:
        back = await put(api, "hq.admin", "/api/v1/approval-thresholds/ZJ", {"amount_fen": 80_000})
        assert back.status_code == 200, back.text


async def test_the_next_diagnosis_obeys_the_fault_code_table(api: Api) -> None:
    code = f"F-E2E{random.randrange(10**6)}"
    path = f"/api/v1/fault-codes/samsung/fault/{code}"
    added = await put(api, "hq.admin", path, {"description_zh": "测试故障", "active": True})
    assert added.status_code == 200, added.text
    listed = await api.get("zj001.tech", "/api/v1/fault-codes", brand="samsung", kind="fault")
    assert code in [c["code"] for c in listed.json()["items"]]

    diagnosis = {"fault_code": code, "repair_level": "L1"}
    first = await take_in_samsung(api, bought_days_ago=None)
    assert (await step(api, "zj001.tech", first, "diagnosis", diagnosis)).status_code == 200

    retired = await put(api, "hq.admin", path, {"description_zh": "测试故障", "active": False})
    assert retired.status_code == 200, retired.text
    second = await take_in_samsung(api, bought_days_ago=None)
    refused = await step(api, "zj001.tech", second, "diagnosis", diagnosis)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["fault_code"]
    # Another manufacturer's code is no code of this one.
    elsewhere = await step(api, "zj001.tech", second, "diagnosis", {**diagnosis, "fault_code": "X"})
    assert elsewhere.status_code == 422


async def test_only_hq_admin_writes_and_staff_read_their_scope(api: Api) -> None:
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("zj001.clerk", "/api/v1/approval-thresholds/ZJ", {"amount_fen": 1}),
        ("zj.manager", "/api/v1/labour-prices/huawei/L1", {"amount_fen": 1}),
        ("sh001.tech", "/api/v1/fault-codes/huawei/fault/F-LCD", {"description_zh": "x"}),
        ("sh001.clerk", "/api/v1/authorisations/SH-001/samsung/repair", {"authorised": True}),
    ]
    for username, path, body in writes:
        reply = await put(api, username, path, body)
        assert reply.status_code == 403, (path, reply.text)

    bad = await put(api, "hq.admin", "/api/v1/labour-prices/huawei/L9", {"amount_fen": 1})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["repair_level"]

    mine = await api.get("sh001.clerk", "/api/v1/authorisations")
    assert {a["store_id"] for a in mine.json()["items"]} == {"SH-001"}
    branch = await api.get("sh.manager", "/api/v1/authorisations")
    assert {a["store_id"] for a in branch.json()["items"]} == {"SH-001", "SH-002"}
    assert (
        await api.get("sh001.clerk", "/api/v1/authorisations", store_id="ZJ-001")
    ).status_code == 404


async def sign_in(api: Api, username: str, password: str) -> httpx.Response:
    return await api.client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )


async def test_a_new_store_and_user_sign_in_until_deactivated(api: Api) -> None:
    store = f"ZJ-9{random.randrange(100):02d}"
    unit = {"kind": "store", "parent_id": "ZJ", "name": "温州鹿城加盟网点", "franchised": True}
    made = await put(api, "hq.admin", f"/api/v1/admin/org-units/{store}", unit)
    assert made.status_code == 200, made.text
    moved = await put(
        api, "hq.admin", f"/api/v1/admin/org-units/{store}", {**unit, "parent_id": "SH"}
    )
    assert moved.status_code == 409

    username = f"e2e.clerk{random.randrange(10**6)}"
    user = {
        "display_name": "新店受理员",
        "role": "clerk",
        "org_unit_id": store,
        "password": "s3cret-pass",
    }
    # A branch manager keeps their own stores' staff only.
    assert (
        await put(api, "sh.manager", f"/api/v1/admin/users/{username}", user)
    ).status_code == 404
    created = await put(api, "zj.manager", f"/api/v1/admin/users/{username}", user)
    assert created.status_code == 200, created.text
    promoted = await put(
        api, "zj.manager", f"/api/v1/admin/users/{username}", {**user, "role": "branch_manager"}
    )
    assert promoted.status_code in (403, 422)

    signed_in = await sign_in(api, username, "s3cret-pass")
    assert signed_in.status_code == 200, signed_in.text
    token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    me = await api.client.get("/api/v1/me", headers=token)
    assert me.status_code == 200, me.text
    units = await api.client.get("/api/v1/org-units", headers=token)
    assert [u["id"] for u in units.json()["items"]] == [store]

    gone = await put(
        api,
        "hq.admin",
        f"/api/v1/admin/users/{username}",
        {**user, "active": False, "password": None},
    )
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert (await sign_in(api, username, "s3cret-pass")).status_code == 401
    assert (await sign_in(api, "hq.admin", DEMO_PASSWORD)).status_code == 200


async def test_a_new_manufacturer_and_model_are_taken_in_at_once(api: Api) -> None:
    brand = f"e2e{random.randrange(10**6)}"
    made = await put(api, "hq.admin", f"/api/v1/brands/{brand}", {"name": "E2E Mobile"})
    assert made.status_code == 200, made.text
    model = await put(api, "hq.admin", f"/api/v1/brands/{brand}/models/m1", {"name": "M1"})
    assert model.status_code == 200, model.text
    assert (await put(api, "hq.admin", "/api/v1/brands/Bad Code", {"name": "x"})).status_code == 422

    body = repair_order()
    body["device"].update(brand=brand, model="m1")
    created = await api.post("sh001.clerk", ORDERS, body)
    assert created.status_code == 201, created.text
    order = created.json()
    # Bought 30 days ago, under the national defaults; no store is authorised for it yet.
    assert order["warranty"]["status"] == "in_warranty"
    assert order["brand_authorised"] is False


async def test_hq_reads_who_changed_the_base_data_and_the_users(api: Api) -> None:
    code = f"F-AUDIT{random.randrange(10**6)}"
    path = f"/api/v1/fault-codes/samsung/fault/{code}"
    for active in (True, False):  # added, then retired: nothing is left in use
        reply = await put(api, "hq.admin", path, {"description_zh": "审计", "active": active})
        assert reply.status_code == 200, reply.text
    version = int(reply.headers["ETag"].strip('"'))
    me = await api.get("hq.admin", "/api/v1/me")
    hq_user_id = me.json()["id"]

    changes = "/api/v1/base-data/changes"
    key = f"samsung/fault/{code}"
    first = await api.get("hq.admin", changes, what="fault_code", key=key, limit="1")
    assert first.status_code == 200, first.text
    [newest] = first.json()["items"]
    assert (newest["what"], newest["key"], newest["user_id"]) == ("fault_code", key, hq_user_id)
    assert newest["value"]["active"] is False and newest["version"] == version
    assert newest["at"].endswith("Z") and newest["at_local"].endswith("+08:00")
    cursor = first.json()["next_cursor"]
    second = await api.get("hq.admin", changes, what="fault_code", key=key, cursor=cursor)
    assert second.status_code == 200, second.text
    assert [c["value"]["active"] for c in second.json()["items"]] == [True]
    assert second.json()["next_cursor"] is None

    username = f"e2e.audit{random.randrange(10**6)}"
    user = {
        "display_name": "审计受理员",
        "role": "clerk",
        "org_unit_id": "ZJ-001",
        "password": "s3cret-pass",
        "active": False,  # never signs in
    }
    made = await put(api, "hq.admin", f"/api/v1/admin/users/{username}", user)
    assert made.status_code == 200, made.text
    audit = await api.get("hq.admin", "/api/v1/admin/changes", what="user", key=username)
    assert audit.status_code == 200, audit.text
    [change] = audit.json()["items"]
    assert change["user_id"] == hq_user_id
    assert change["value"]["role"] == "clerk" and change["value"]["active"] is False
    assert "password" not in change["value"] and "password_hash" not in change["value"]
    assert "version" not in change

    for username in ("zj001.clerk", "zj.manager"):
        for audit_path in (changes, "/api/v1/admin/changes"):
            refused = await api.get(username, audit_path)
            assert refused.status_code == 403, (username, audit_path, refused.text)
    for audit_path in (changes, "/api/v1/admin/changes"):
        not_a_seq = encode_page_token("²")
        for params in ({"limit": "0"}, {"limit": "201"}, {"cursor": "x!"}, {"cursor": not_a_seq}):
            bad = await api.get("hq.admin", audit_path, **params)
            assert bad.status_code == 422, (audit_path, params, bad.text)
            assert [e["field"] for e in bad.json()["errors"]] == list(params), bad.text
