"""The whole system as real processes (NATS, four services, gateway) for the end-to-end tests,
started once per session on free ports, with the demo data."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

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


SPEC_URI = "urn:aftersales:openapi"
JSON_TYPES = ("application/json", "application/problem+json")


class DocumentedAnswers:
    """Every JSON answer the e2e client gets, checked against the schema the gateway's OpenAPI
    documents for its route, method and status: the generated web client relies on them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self.routes = [
            (re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$"), path, item)
            # A fixed path before a template that also matches it: /orders/export, /orders/{id}.
            for path, item in sorted(spec["paths"].items(), key=lambda p: p[0].count("{"))
        ]
        self.problem = self.validator("#/components/schemas/Problem")

    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": SPEC_URI + pointer}, registry=self.registry)

    def schema_of(self, method: str, url_path: str, status: int) -> str | None:
        """The JSON pointer of the documented body, "" when the route is not in the OpenAPI."""
        for pattern, path, item in self.routes:
            if pattern.match(url_path) and method.lower() in item:
                responses = item[method.lower()]["responses"]
                answer = responses.get(str(status))
                if answer is None:
                    return None
                media = next((m for m in JSON_TYPES if m in answer.get("content", {})), None)
                if media is None:
                    return None
                steps = (path, method.lower(), "responses", str(status), "content", media, "schema")
                return "#/paths/" + "/".join(s.replace("~", "~0").replace("/", "~1") for s in steps)
        return ""

    async def check(self, response: httpx.Response) -> None:
        media = response.headers.get("content-type", "").split(";")[0]
        if media not in JSON_TYPES:
            return
        await response.aread()
        request = response.request
        pointer = self.schema_of(request.method, request.url.path, response.status_code)
        if pointer == "":
            return  # not an API route (the console, /openapi.json)
        where = f"{request.method} {request.url.path} -> {response.status_code}"
        if pointer is None:
            # Every error is a problem; a success's shape must be documented.
            assert response.status_code >= 400, f"{where}: this status is not documented"
            validator = self.problem
        else:
            validator = self.validator(pointer)
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in validator.iter_errors(response.json())
        ]
        assert not errors, f"{where}: the answer is not as documented:\n" + "\n".join(errors[:10])


@pytest.fixture(scope="session")
async def api(system: LocalSystem) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as plain:
        spec = (await plain.get("/openapi.json")).json()
    answers = DocumentedAnswers(spec)
    async with httpx.AsyncClient(
        base_url=system.gateway_url, timeout=10, event_hooks={"response": [answers.check]}
    ) as client:
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
