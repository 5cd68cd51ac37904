"""The whole system as real processes (NATS, four services, gateway) for the end-to-end tests,
started once per session on free ports, with the demo data."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.system import LocalSystem, SystemConfig
from servicekit.demo import DEMO_PASSWORD
from servicekit.identifiers import luhn_valid
from servicekit.timeutil import shanghai_day, utc_now


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    folder: Path = tmp_path_factory.mktemp("system")
    local = LocalSystem(SystemConfig.for_tests(folder, env={"RATE_LIMIT_PER_SECOND": "0"}))
    try:
        await local.start()
        yield local
    finally:
        local.stop()
        await local.drop_schemas()
    # Each service runs as its own NATS user: one that reached outside its permissions fails.
    assert local.bus_refusals() == []


class Api:
    """An HTTP client of the gateway that logs demo users in on demand."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            reply = await self.client.post(
                "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
            )
            assert reply.status_code == 200, reply.text
            self.tokens[username] = reply.json()["access_token"]
        return self.tokens[username]

    async def as_user(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(username)}"}

    async def get(self, username: str, path: str, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=await self.as_user(username))

    async def post(
        self, username: str, path: str, body: object, key: str | None = None
    ) -> httpx.Response:
        headers = await self.as_user(username)
        if key:
            headers["Idempotency-Key"] = key
        return await self.client.post(path, json=body, headers=headers)

    async def orders_received(self, username: str, **params: str) -> int:
        reply = await self.get(username, "/api/v1/reports/kpis", **params)
        assert reply.status_code == 200, reply.text
        return int(reply.json()["orders_received"])

    async def services_state(self) -> dict[str, str]:
        """Each service as the gateway sees it (its status endpoint): serving or down."""
        reply = await self.get("hq.admin", "/api/v1/status")
        assert reply.status_code == 200, reply.text
        services: dict[str, str] = reply.json()["services"]
        return services

    async def wait_for_state(self, service: str, state: str, timeout: float = 30.0) -> None:
        """Until the gateway sees `service` in `state`: a restarted service takes calls again
        only once the gateway's channel has reconnected to it."""
        deadline = time.monotonic() + timeout
        while (await self.services_state())[service] != state:
            assert time.monotonic() < deadline, f"{service} never showed {state}"
            await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
async def api(system: LocalSystem) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as client:
        yield Api(client)


def new_imei() -> str:
    body = "86" + "".join(random.choices("0123456789", k=12))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def new_phone() -> str:
    return "139" + "".join(random.choices("0123456789", k=8))


def repair_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "customer": {"name": "王小明", "phone": new_phone()},
        "device": {
            "imei": new_imei(),
            "brand": "huawei",
            "model": "p60",
            "colour": "black",
            "purchase_date": (shanghai_day(utc_now()) - timedelta(days=30)).isoformat(),
        },
        "fault": {"description": "屏幕碎裂 screen cracked", "symptom_code": ""},
        "service_type": "repair",
    }
    order.update(changes)
    return order
