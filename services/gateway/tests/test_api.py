"""The app end to end over ASGI, against fake services on a real gRPC port."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from servicekit.auth import maybe_auth
from servicekit.errors import ServiceUnavailable
from servicekit.testing import DatabaseTarget
from services.gateway.app import create_app
from services.gateway.demo import demo_user_id
from services.gateway.idempotency import IdempotencyStore
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, intake, make_settings

PROBLEM = "application/problem+json"


async def test_sign_in_and_me(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        "/api/v1/auth/token", data={"username": "sh001.clerk", "password": "demo1234"}
    )
    assert reply.status_code == 200
    token = reply.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json() == {
        "id": demo_user_id("sh001.clerk"),
        "username": "sh001.clerk",
        "display_name": "SH-001 受理员",
        "role": "clerk",
        "branch_id": "SH",
        "store_id": "SH-001",
        "org_unit": {
            "id": "SH-001",
            "kind": "store",
            "name": "上海徐汇服务厅",
            "parent_id": "SH",
            "franchised": False,
        },
    }


async def test_wrong_password_and_unknown_user_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": "hq.admin", "password": "nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/token", data={"username": "nobody", "password": "demo1234"}
    )
    for reply in (wrong, unknown):
        assert reply.status_code == 401
        assert reply.headers["content-type"] == PROBLEM
        assert reply.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_api_needs_a_valid_bearer_token(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic eDp5"}):
        reply = await client.get("/api/v1/ping", headers=headers)
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == "Bearer"
        body = reply.json()
        assert body["status"] == 401
        assert body["instance"] == "/api/v1/ping"


async def test_the_auth_context_reaches_the_service(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    reply = await client.get("/api/v1/ping", headers=await auth_headers(client, "zj002.tech"))
    assert reply.status_code == 200
    assert reply.json() == {"ok": True}
    seen = fakes.seen.auth[-1]
    assert seen.user_id == demo_user_id("zj002.tech")
    assert seen.role == "technician"
    assert (seen.branch_id, seen.store_id) == ("ZJ", "ZJ-002")


async def test_concurrent_requests_each_carry_their_own_auth_context(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    users = ["hq.admin", "sh.manager", "sh001.clerk", "zj001.keeper"] * 5
    headers = [await auth_headers(client, u) for u in users]
    replies = await asyncio.gather(*(client.get("/api/v1/ping", headers=h) for h in headers))
    assert all(r.status_code == 200 for r in replies)
    assert sorted(a.user_id for a in fakes.seen.auth) == sorted(demo_user_id(u) for u in users)


async def test_auth_context_does_not_outlive_the_request(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    await client.get("/api/v1/ping", headers=await auth_headers(client, "hq.admin"))
    # ASGITransport runs the app in this very task: a leak would show here.
    assert maybe_auth() is None


async def test_trace_context_continues_into_grpc(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = await auth_headers(client, "hq.admin")
    headers["traceparent"] = f"00-{trace_id}-00f067aa0ba902b7-01"
    await client.get("/api/v1/ping", headers=headers)
    traceparent = fakes.seen.metadata[-1]["traceparent"]
    assert traceparent.split("-")[1] == trace_id


async def test_store_user_creates_an_order_in_their_store(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    reply = await client.post(
        "/api/v1/repair-orders",
        json=intake(promised_date="2026-03-05", accessories="charger"),
        headers=headers,
    )
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert reply.headers["location"] == f"/api/v1/repair-orders/{order['id']}"
    sent = fakes.seen.requests[-1]
    assert (sent.branch_id, sent.store_id, sent.request_id) == ("SH", "SH-001", "")
    assert order["customer"] == {  # their own store: the phone unmasked
        "name": "张三",
        "phone": "13812345678",
        "message_consent": False,
        "language": "zh-CN",
    }
    assert (sent.customer.message_consent, sent.customer.language) == (False, "zh-CN")
    assert order["device"]["colour"] is None
    assert order["fault"] == {"description": "screen cracked", "symptom_code": None}
    assert order["accessories"] == "charger"
    assert order["appearance"] is None
    assert order["received_at"] == "2026-03-01T02:30:00.000Z"
    assert order["received_at_local"] == "2026-03-01T10:30:00.000+08:00"
    assert order["warranty"]["entitlements"] == ["swap", "repair"]
    assert order["timeline"][0]["store_id"] == "SH-001"
    assert order["timeline"][0]["note"] is None
    assert order["created_by"] == demo_user_id("sh001.clerk")

    # The same store's users see the phone; the branch manager sees it masked.
    fetched = await client.get(f"/api/v1/repair-orders/{order['id']}", headers=headers)
    assert fetched.json()["customer"]["phone"] == "13812345678"
    manager = await client.get(
        f"/api/v1/repair-orders/{order['id']}", headers=await auth_headers(client, "sh.manager")
    )
    assert manager.json()["customer"]["phone"] == "138****5678"


async def test_store_user_cannot_take_an_order_in_for_another_store(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    own = await client.post(
        "/api/v1/repair-orders", json=intake(store_id="SH-001"), headers=headers
    )
    assert own.status_code == 201
    other = await client.post(
        "/api/v1/repair-orders", json=intake(store_id="SH-002"), headers=headers
    )
    assert other.status_code == 404
    assert other.headers["content-type"] == PROBLEM


async def test_hq_and_branch_users_must_name_a_store_in_scope(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    manager = await auth_headers(client, "zj.manager")
    missing = await client.post("/api/v1/repair-orders", json=intake(), headers=manager)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["store_id"]
    for store in ("SH-001", "NOPE", "ZJ"):
        outside = await client.post(
            "/api/v1/repair-orders", json=intake(store_id=store), headers=manager
        )
        assert outside.status_code == 404, store
    inside = await client.post(
        "/api/v1/repair-orders", json=intake(store_id="ZJ-002"), headers=manager
    )
    assert inside.status_code == 201
    assert (fakes.seen.requests[-1].branch_id, fakes.seen.requests[-1].store_id) == (
        "ZJ",
        "ZJ-002",
    )
    admin = await auth_headers(client, "hq.admin")
    anywhere = await client.post(
        "/api/v1/repair-orders", json=intake(store_id="SH-002"), headers=admin
    )
    assert anywhere.status_code == 201
    assert anywhere.json()["customer"]["phone"] == "138****5678"


async def test_shape_errors_name_the_json_paths(client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    body = intake(
        device={"imei": 490154203237518, "brand": "huawei"}, fault={"description": "x" * 2001}
    )
    del body["customer"]
    reply = await client.post("/api/v1/repair-orders", json=body, headers=headers)
    assert reply.status_code == 422
    problem = reply.json()
    assert reply.headers["content-type"] == PROBLEM
    assert problem["title"] == "Invalid input"
    assert sorted(e["field"] for e in problem["errors"]) == [
        "customer",
        "device.imei",
        "device.model",
        "fault.description",
    ]
    assert "Traceback" not in reply.text

    broken = await client.post(
        "/api/v1/repair-orders",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "body"


async def test_service_field_errors_become_the_problem(client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    reply = await client.post(
        "/api/v1/repair-orders",
        json=intake(device={"imei": "123", "brand": "huawei", "model": "mate60"}),
        headers=headers,
    )
    assert reply.status_code == 422
    assert reply.json()["errors"] == [{"field": "device.imei", "reason": "must be 15 digits"}]
    assert reply.json()["type"] == "urn:aftersales:problem:invalid_input"


async def test_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    headers = {**await auth_headers(client, "sh002.clerk"), "Idempotency-Key": "intake-42"}
    first = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    again = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert len(fakes.orders.orders) == 1
    assert fakes.seen.requests[-1].request_id == f"{demo_user_id('sh002.clerk')}:intake-42"

    other_body = await client.post(
        "/api/v1/repair-orders", json=intake(service_type="swap"), headers=headers
    )
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["field"] == "Idempotency-Key"

    # Keys are per user: another user's same key is a new request.
    other_user = {**await auth_headers(client, "sh002.tech"), "Idempotency-Key": "intake-42"}
    theirs = await client.post("/api/v1/repair-orders", json=intake(), headers=other_user)
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers


async def test_refusals_are_replayed_too(client: httpx.AsyncClient, fakes: FakeServices) -> None:
    headers = {**await auth_headers(client, "sh001.clerk"), "Idempotency-Key": "bad-imei"}
    body = intake(device={"imei": "123", "brand": "huawei", "model": "mate60"})
    first = await client.post("/api/v1/repair-orders", json=body, headers=headers)
    calls = len(fakes.seen.requests)
    again = await client.post("/api/v1/repair-orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.content == first.content
    assert again.headers["content-type"] == PROBLEM
    assert len(fakes.seen.requests) == calls


async def test_bad_idempotency_keys_are_refused(client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    for key in ("", "x" * 201, "tab\there"):
        reply = await client.post(
            "/api/v1/repair-orders", json=intake(), headers={**headers, "Idempotency-Key": key}
        )
        assert reply.status_code == 422, key
        assert reply.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_5xx_answer_releases_the_key(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    headers = {**await auth_headers(client, "sh001.clerk"), "Idempotency-Key": "retry-me"}
    fakes.orders.fail_next = ServiceUnavailable("database restarting")
    down = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    assert down.status_code == 503
    assert down.headers["content-type"] == PROBLEM
    # Not kept: the retry runs instead of replaying the 503.
    retried = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_losing_its_own_database_is_a_503_and_the_key_stays_free(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {**await auth_headers(client, "sh001.clerk"), "Idempotency-Key": "db-blip"}
    claim = IdempotencyStore.begin

    async def database_gone(*args: object) -> None:
        monkeypatch.setattr(IdempotencyStore, "begin", claim)
        raise OperationalError("INSERT", {}, ConnectionError("closed"), connection_invalidated=True)

    monkeypatch.setattr(IdempotencyStore, "begin", database_gone)
    down = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    assert down.status_code == 503
    assert down.headers["content-type"] == PROBLEM
    assert "INSERT" not in down.text
    retried = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    assert retried.status_code == 201


async def test_stopped_services_are_503_while_the_gateway_stays_ready(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    admin = await auth_headers(client, "hq.admin")
    serving = await client.get("/api/v1/status", headers=admin)
    assert serving.json() == {
        "status": "ok",
        "database": "serving",
        "services": dict.fromkeys(("orders", "inventory", "customers", "reporting"), "serving"),
    }
    await fakes.server.stop(0)
    down = await client.post("/api/v1/repair-orders", json=intake(), headers=headers)
    assert down.status_code == 503
    assert down.json()["title"] == "Service unavailable"
    assert "127.0.0.1" not in down.text  # the gRPC failure's details stay in the log
    # The gateway's own needs are met: it stays in the load balancer, and says what is down.
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    status = await client.get("/api/v1/status", headers=admin)
    assert status.status_code == 200
    assert status.json() == {
        "status": "degraded",
        "database": "serving",
        "services": dict.fromkeys(("orders", "inventory", "customers", "reporting"), "down"),
    }


async def test_only_hq_admins_see_the_status(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/status")).status_code == 401
    clerk = await auth_headers(client, "sh001.clerk")
    assert (await client.get("/api/v1/status", headers=clerk)).status_code == 403


async def test_list_orders_scope_and_paging(client: httpx.AsyncClient, fakes: FakeServices) -> None:
    clerk = await auth_headers(client, "sh001.clerk")
    await client.post("/api/v1/repair-orders", json=intake(), headers=clerk)
    reply = await client.get(
        "/api/v1/repair-orders",
        params={"limit": 5, "cursor": "abc", "status": "received", "received_from": "2026-03-01"},
        headers=clerk,
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["next_cursor"] == "page-2"
    assert [o["store_id"] for o in body["items"]] == ["SH-001"]
    sent = fakes.seen.requests[-1]
    assert (sent.page_size, sent.page_token, sent.status, sent.received_from) == (
        5,
        "abc",
        "received",
        "2026-03-01",
    )
    own_branch = await client.get(
        "/api/v1/repair-orders", params={"branch_id": "SH"}, headers=clerk
    )
    assert own_branch.status_code == 200
    for params in ({"store_id": "SH-002"}, {"branch_id": "ZJ"}, {"store_id": "XX"}):
        outside = await client.get("/api/v1/repair-orders", params=params, headers=clerk)
        assert outside.status_code == 404, params
    for params in ({"limit": 0}, {"limit": 101}, {"received_to": "2026-13-01"}):
        bad = await client.get("/api/v1/repair-orders", params=params, headers=clerk)
        assert bad.status_code == 422, params
        assert bad.json()["errors"][0]["field"] in ("limit", "received_to")


async def test_order_outside_scope_is_404(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/repair-orders", json=intake(), headers=await auth_headers(client, "zj001.clerk")
    )
    order_id = created.json()["id"]
    reply = await client.get(
        f"/api/v1/repair-orders/{order_id}", headers=await auth_headers(client, "sh.manager")
    )
    assert reply.status_code == 404
    assert reply.json()["title"] == "Not found"


async def test_org_units_in_scope(client: httpx.AsyncClient) -> None:
    async def ids(user: str) -> list[str]:
        reply = await client.get("/api/v1/org-units", headers=await auth_headers(client, user))
        return [u["id"] for u in reply.json()["items"]]

    assert await ids("hq.analyst") == ["HQ", "SH", "SH-001", "SH-002", "ZJ", "ZJ-001", "ZJ-002"]
    assert await ids("zj.manager") == ["ZJ", "ZJ-001", "ZJ-002"]
    assert await ids("zj002.keeper") == ["ZJ-002"]


async def test_brands(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/brands", headers=await auth_headers(client, "sh001.clerk"))
    assert reply.json() == {
        "items": [
            {"code": "huawei", "name": "华为", "models": [{"code": "mate60", "name": "Mate 60"}]}
        ]
    }


async def test_customers_by_phone_or_imei(client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client, "zj001.clerk")
    by_phone = await client.get(
        "/api/v1/customers", params={"phone": "13812345678"}, headers=headers
    )
    assert by_phone.status_code == 200
    customer = by_phone.json()
    assert customer["phone"] == "13812345678"
    assert customer["devices"][0]["first_seen_at"] == "2026-03-01T02:30:00.000Z"
    assert customer["last_store_id"] == "SH-001"
    by_imei = await client.get(
        "/api/v1/customers", params={"imei": "490154203237518"}, headers=headers
    )
    assert by_imei.json()["phone"] == "138****5678"
    for params in ({}, {"phone": "13812345678", "imei": "490154203237518"}):
        bad = await client.get("/api/v1/customers/lookup", params=params, headers=headers)
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"phone", "imei"}
    unknown = await client.get(
        "/api/v1/customers", params={"phone": "13900000000"}, headers=headers
    )
    assert unknown.status_code == 404


async def test_parts(client: httpx.AsyncClient, fakes: FakeServices) -> None:
    reply = await client.get(
        "/api/v1/parts",
        params={"brand": "huawei", "category": "screen", "limit": 50},
        headers=await auth_headers(client, "sh001.keeper"),
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["next_cursor"] is None
    assert body["items"][0]["retail_price_fen"] == 89900
    assert (fakes.seen.requests[-1].brand, fakes.seen.requests[-1].page_size) == ("huawei", 50)


async def test_warehouses_follow_scope(client: httpx.AsyncClient) -> None:
    async def ids(user: str) -> list[str]:
        reply = await client.get("/api/v1/warehouses", headers=await auth_headers(client, user))
        return [w["id"] for w in reply.json()["items"]]

    assert await ids("hq.admin") == ["W-SH", "W-SH-001", "W-SH-002", "W-ZJ", "W-ZJ-001"]
    assert await ids("sh.manager") == ["W-SH", "W-SH-001", "W-SH-002"]
    assert await ids("sh002.keeper") == ["W-SH-002"]


async def test_stock_outside_scope_is_404(client: httpx.AsyncClient) -> None:
    keeper = await auth_headers(client, "sh001.keeper")
    own = await client.get("/api/v1/warehouses/W-SH-001/stock", headers=keeper)
    assert own.status_code == 200
    [level] = own.json()["levels"]
    # The exact value beside the average it is rounded down to.
    assert (level["average_cost_fen"], level["value_fen"]) == (44850, 224251)
    assert own.json()["warehouse"]["store_id"] == "SH-001"
    for warehouse in ("W-SH", "W-SH-002", "W-ZJ", "nope"):
        reply = await client.get(f"/api/v1/warehouses/{warehouse}/stock", headers=keeper)
        assert reply.status_code == 404, warehouse


async def test_health_readiness_and_unknown_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "down": []}
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["status"] == 404
    wrong_method = await client.delete("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM


async def test_metrics_are_labelled_by_route_template(client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client, "hq.admin")
    await client.get("/api/v1/repair-orders/some-id-123", headers=headers)
    await client.get("/no/such/path")
    text = (await client.get("/metrics")).text
    assert (
        'aftersales_http_requests_total{method="GET",route="/api/v1/repair-orders/{order_id}",'
        'status="404"}' in text
    )
    assert 'route="unmatched"' in text
    assert "some-id-123" not in text
    assert "aftersales_http_request_duration_seconds_bucket" in text


async def test_openapi_describes_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "After-sales gateway"
    assert "/api/v1/repair-orders" in spec["paths"]
    assert "Idempotency-Key" in str(spec["paths"]["/api/v1/repair-orders"]["post"])


async def test_rate_limit_per_user(db_target: DatabaseTarget, fakes: FakeServices) -> None:
    app = create_app(make_settings(db_target, fakes.address, rate_limit_per_second=1))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        headers = await auth_headers(http, "hq.admin")
        replies = [await http.get("/api/v1/ping", headers=headers) for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 429]
        assert replies[2].headers["retry-after"] == "1"
        assert replies[2].headers["content-type"] == PROBLEM
        other = await http.get("/api/v1/ping", headers=await auth_headers(http, "hq.analyst"))
        assert other.status_code == 200
