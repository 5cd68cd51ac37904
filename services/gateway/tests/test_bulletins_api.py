"""Bulletins through the gateway and the real customers service (its gRPC server on its own
database and the session's NATS), with the demo org tree and users: publish, list, read,
receipts naming the scope's users, Idempotency-Key, and problem-details refusals."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from servicekit.grpc_server import new_server
from servicekit.runtime import close_runtime, open_runtime
from servicekit.testing import (
    DatabaseTarget,
    NatsServer,
    database_target,
    drop_schema,
    service_settings,
    session_trust,
)
from services.customers.service import SPEC as CUSTOMERS
from services.gateway.app import create_app
from services.gateway.settings import SERVICES
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, make_settings

pytestmark = pytest.mark.service("gateway")


@contextlib.asynccontextmanager
async def customers_service(folder: Path, nats_url: str) -> AsyncIterator[str]:
    """The customers service's gRPC API in this process, on its own database: its address."""
    target = database_target("customers", folder)
    runtime = await open_runtime(CUSTOMERS, service_settings("customers", target, nats_url))
    server, _health = new_server(CUSTOMERS.name, session_trust())
    CUSTOMERS.register(server, runtime)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
        await close_runtime(runtime)
        await drop_schema(target)


@pytest.fixture
async def api(
    db_target: DatabaseTarget,
    fakes: FakeServices,
    nats_server: NatsServer,
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    folder = tmp_path / "customers"
    folder.mkdir()
    async with customers_service(folder, nats_server.url) as address:
        addresses = dict.fromkeys(SERVICES, fakes.address)
        addresses["customers"] = address
        app = create_app(make_settings(db_target, fakes.address, service_addresses=addresses))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
        ):
            yield http


def body(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "kind": "training",
        "title": "华为 P60 屏幕排线更换培训",
        "body": "周五 14:00 线上培训，请技术员参加。",
        "attachments": [{"title": "课件", "url": "https://files.example.com/p60.pdf"}],
        "scope": {"kind": "branch", "branch_id": "SH"},
    }
    values.update(changes)
    return values


async def post(
    api: httpx.AsyncClient, user: str, path: str, json: object = None, key: str | None = None
) -> httpx.Response:
    headers = await auth_headers(api, user)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.post(path, json=json, headers=headers)


async def get(api: httpx.AsyncClient, user: str, path: str) -> httpx.Response:
    return await api.get(path, headers=await auth_headers(api, user))


async def test_a_branch_publishes_its_stores_read_and_the_manager_sees_who_has_not(
    api: httpx.AsyncClient,
) -> None:
    published = await post(api, "sh.manager", "/api/v1/bulletins", body(), key="b-1")
    assert published.status_code == 201, published.text
    bulletin = published.json()
    assert bulletin["publisher_unit"] == "SH"
    assert bulletin["scope"] == {"kind": "branch", "branch_id": "SH", "store_ids": []}
    assert (bulletin["read"], bulletin["read_at"]) == (False, None)

    mine = (await get(api, "sh001.tech", "/api/v1/bulletins")).json()
    assert [b["id"] for b in mine["items"]] == [bulletin["id"]]
    assert mine["unread_count"] == 1
    assert (await get(api, "zj001.tech", "/api/v1/bulletins")).json()["items"] == []

    read = await post(api, "sh001.tech", f"/api/v1/bulletins/{bulletin['id']}/read", key="r-1")
    assert read.status_code == 200, read.text
    again = await post(api, "sh001.tech", f"/api/v1/bulletins/{bulletin['id']}/read")
    assert read.json()["read_at"] == again.json()["read_at"] is not None
    unread = (await get(api, "sh001.tech", "/api/v1/bulletins?unread=true")).json()
    assert (unread["items"], unread["unread_count"]) == ([], 0)

    receipts = await get(api, "sh.manager", f"/api/v1/bulletins/{bulletin['id']}/receipts")
    assert receipts.status_code == 200, receipts.text
    found = receipts.json()
    # The branch's follow-up agent and the six users of its two stores; not the publisher.
    assert (found["audience"], found["read_count"], found["not_read_count"]) == (7, 1, 6)
    assert [(r["username"], r["unit_id"]) for r in found["read"]] == [("sh001.tech", "SH-001")]
    assert found["read"][0]["read_at"] == read.json()["read_at"]
    assert [r["username"] for r in found["not_read"]] == [
        "sh.followup",
        "sh001.clerk",
        "sh001.keeper",
        "sh002.clerk",
        "sh002.keeper",
        "sh002.tech",
    ]
    hq = await get(api, "hq.analyst", f"/api/v1/bulletins/{bulletin['id']}/receipts")
    assert hq.json() == found


async def test_a_retried_publish_with_its_key_publishes_once(api: httpx.AsyncClient) -> None:
    first = await post(api, "hq.analyst", "/api/v1/bulletins", body(), key="once")
    again = await post(api, "hq.analyst", "/api/v1/bulletins", body(), key="once")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = (await get(api, "hq.analyst", "/api/v1/bulletins")).json()
    assert len(listed["items"]) == 1


async def test_hq_publishes_to_chosen_stores_and_only_they_and_above_see_it(
    api: httpx.AsyncClient,
) -> None:
    scope = {"kind": "stores", "store_ids": ["SH-002", "ZJ-001"]}
    made = await post(api, "hq.admin", "/api/v1/bulletins", body(kind="notice", scope=scope))
    assert made.status_code == 201, made.text
    bulletin_id = made.json()["id"]
    assert made.json()["scope"]["store_ids"] == ["SH-002", "ZJ-001"]
    for user, status in (
        ("sh002.clerk", 200),
        ("zj001.keeper", 200),
        ("sh.manager", 200),
        ("zj.manager", 200),
        ("sh001.clerk", 404),
        ("zj002.tech", 404),
    ):
        got = await get(api, user, f"/api/v1/bulletins/{bulletin_id}")
        assert got.status_code == status, (user, got.text)
    receipts = (await get(api, "hq.admin", f"/api/v1/bulletins/{bulletin_id}/receipts")).json()
    assert receipts["audience"] == 6
    refused = await get(api, "sh.manager", f"/api/v1/bulletins/{bulletin_id}/receipts")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_store_staff_may_not_publish(api: httpx.AsyncClient) -> None:
    scope = {"kind": "stores", "store_ids": ["SH-001"]}
    refused = await post(api, "sh001.clerk", "/api/v1/bulletins", body(scope=scope))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_a_branch_manager_may_not_publish_beyond_its_branch(api: httpx.AsyncClient) -> None:
    for scope in (
        {"kind": "chain"},
        {"kind": "branch", "branch_id": "ZJ"},
        {"kind": "stores", "store_ids": ["SH-001", "ZJ-001"]},
    ):
        refused = await post(api, "sh.manager", "/api/v1/bulletins", body(scope=scope))
        assert refused.status_code == 404, (scope, refused.text)
    assert (await get(api, "hq.admin", "/api/v1/bulletins")).json()["items"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        # Refused at the door by the declared pattern, named as the gateway names list items.
        (
            {"attachments": [{"title": "课件", "url": "http://files.example.com/a"}]},
            "attachments.0.url",
        ),
        ({"attachments": [{"title": "课件", "url": "javascript:alert(1)"}]}, "attachments.0.url"),
        ({"scope": {"kind": "stores", "store_ids": ["SH-001", "XX-404"]}}, "scope.store_ids[1]"),
        ({"scope": {"kind": "branch", "branch_id": "XX"}}, "scope.branch_id"),
        ({"scope": {"kind": "branch"}}, "scope.branch_id"),
        ({"scope": {"kind": "region"}}, "scope.kind"),
        ({"kind": "gossip"}, "kind"),
        ({"title": ""}, "title"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ],
    ids=[
        "http-link",
        "script-link",
        "unknown-store",
        "unknown-branch",
        "branch-missing",
        "bad-scope-kind",
        "bad-kind",
        "empty-title",
        "expired",
        "no-time-zone",
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    api: httpx.AsyncClient, changes: dict[str, object], field: str
) -> None:
    refused = await post(api, "hq.admin", "/api/v1/bulletins", body(**changes))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert (await get(api, "hq.admin", "/api/v1/bulletins")).json()["items"] == []


async def test_an_unknown_bulletin_is_not_found(api: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/bulletins/00000000-0000-0000-0000-000000000000",
        "/api/v1/bulletins/nonsense/receipts",
    ):
        missing = await get(api, "hq.admin", path)
        assert missing.status_code == 404, missing.text
    assert (await post(api, "hq.admin", "/api/v1/bulletins/nonsense/read")).status_code == 404
