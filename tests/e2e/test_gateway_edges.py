"""The gateway's edges on the real processes: a burst of wrong sign-ins is throttled while the
gateway's memory stays bounded; a read-model service down leaves intake and readiness alone;
unstorable text and oversized bodies are refused before they reach a database."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psutil

from devtools.system import LocalSystem
from tests.e2e.conftest import Api, repair_order

TOKEN = "/api/v1/auth/token"
# The gateway's memory limit in k8s/base/gateway.yaml. Unbounded, 50 parallel argon2 checks
# would want 50 x 64 MiB; one at a time (the default) the gateway peaks near 180 MiB.
MEMORY_BAR = 256 * 1024 * 1024


async def peak_memory_while(pid: int, work: asyncio.Future[Any]) -> int:
    process = psutil.Process(pid)
    peak = process.memory_info().rss
    while not work.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.02)
    return max(peak, process.memory_info().rss)


async def test_parallel_wrong_logins_get_429s_and_memory_stays_bounded(
    system: LocalSystem, api: Api
) -> None:
    # A username nobody else uses: the other tests' demo users must not be locked out.
    username = f"edge.{uuid.uuid4().hex[:8]}"
    burst = asyncio.ensure_future(
        asyncio.gather(
            *(
                api.client.post(TOKEN, data={"username": username, "password": f"guess-{n}"})
                for n in range(50)
            )
        )
    )
    started = time.monotonic()
    gateway = system.processes["gateway"].pid
    before = psutil.Process(gateway).memory_info().rss
    peak = await peak_memory_while(gateway, burst)
    replies = burst.result()
    elapsed = time.monotonic() - started
    statuses = [reply.status_code for reply in replies]
    print(
        f"50 wrong sign-ins: {statuses.count(401)} x 401, {statuses.count(429)} x 429 in "
        f"{elapsed:.1f} s; gateway RSS {before / 2**20:.0f} MiB before, peak {peak / 2**20:.0f} MiB"
    )
    assert set(statuses) <= {401, 429}
    assert statuses.count(429) >= 40
    assert all(r.headers["Retry-After"].isdigit() for r in replies if r.status_code == 429)
    assert peak < MEMORY_BAR
    # Locked now, whatever the password.
    locked = await api.client.post(TOKEN, data={"username": username, "password": "any"})
    assert locked.status_code == 429


async def test_reporting_down_leaves_intake_and_readiness_alone(
    system: LocalSystem, api: Api
) -> None:
    await api.wait_for_state("reporting", "serving")
    system.terminate("reporting")
    try:
        await api.wait_for_state("reporting", "down")
        created = await api.post(
            "sh001.clerk", "/api/v1/repair-orders", repair_order(), key=str(uuid.uuid4())
        )
        assert created.status_code == 201, created.text
        assert (await api.client.get("/readyz")).status_code == 200
        status = (await api.get("hq.admin", "/api/v1/status")).json()
        assert status["status"] == "degraded"
        assert status["database"] == "serving"
        assert status["services"]["reporting"] == "down"
        assert status["services"]["orders"] == "serving"
    finally:
        await system.restart("reporting")
    await api.wait_for_state("reporting", "serving")
    assert (await api.get("hq.admin", "/api/v1/status")).json()["status"] == "ok"


def problem_fields(reply_json: dict[str, object]) -> list[str]:
    return [e["field"] for e in reply_json["errors"]]  # type: ignore[attr-defined]


async def test_nul_is_refused_by_field_in_body_query_and_path(api: Api) -> None:
    body = repair_order(customer={"name": "王\x00小明", "phone": "13812345678"})
    in_body = await api.post("sh001.clerk", "/api/v1/repair-orders", body)
    assert in_body.status_code == 422, in_body.text
    assert problem_fields(in_body.json()) == ["customer.name"]

    in_query = await api.get("sh001.clerk", "/api/v1/repair-orders", imei="8600\x00")
    assert in_query.status_code == 422, in_query.text
    assert problem_fields(in_query.json()) == ["imei"]

    headers = await api.as_user("sh001.clerk")
    in_path = await api.client.get("/api/v1/repair-orders/abc%00def", headers=headers)
    assert in_path.status_code == 422, in_path.text
    assert problem_fields(in_path.json()) == ["order_id"]


async def test_a_body_over_the_limit_is_refused(api: Api) -> None:
    body = repair_order(fault={"description": "x" * (2 * 1024 * 1024)})
    reply = await api.post("sh001.clerk", "/api/v1/repair-orders", body, key=str(uuid.uuid4()))
    assert reply.status_code == 413
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["status"] == 413
