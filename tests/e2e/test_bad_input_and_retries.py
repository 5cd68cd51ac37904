"""Bad input gets a problem-details 422 naming the field and changes nothing; a retried POST
with the same Idempotency-Key creates one order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api, new_imei, repair_order


async def orders_for_imei(api: Api, imei: str) -> int:
    reply = await api.get("sh001.clerk", "/api/v1/repair-orders", imei=imei, limit="100")
    assert reply.status_code == 200, reply.text
    return len(reply.json()["items"])


def fields(reply_json: dict[str, Any]) -> set[str]:
    return {e["field"] for e in reply_json["errors"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"device": {"imei": "490154203237519", "brand": "huawei", "model": "p60"}}, "device.imei"),
        ({"device": {"imei": "12345", "brand": "huawei", "model": "p60"}}, "device.imei"),
        ({"customer": {"name": "李四", "phone": "12345678901"}}, "customer.phone"),
        (
            {"device": {"imei": "490154203237518", "brand": "nokia", "model": "3310"}},
            "device.brand",
        ),
        (
            {"device": {"imei": "490154203237518", "brand": "huawei", "model": "iphone15"}},
            "device.model",
        ),
        ({"service_type": "teleport"}, "service_type"),
    ],
)
async def test_bad_values_are_refused_by_field(
    api: Api, change: dict[str, object], field: str
) -> None:
    body = repair_order(**change)
    imei = body["device"]["imei"]
    before = await orders_for_imei(api, imei)
    reply = await api.post("sh001.clerk", "/api/v1/repair-orders", body)
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["status"] == 422
    assert field in fields(problem)
    assert await orders_for_imei(api, imei) == before


@pytest.mark.parametrize("missing", ["customer", "device", "fault", "service_type"])
async def test_missing_fields_are_named(api: Api, missing: str) -> None:
    body = repair_order()
    del body[missing]
    reply = await api.post("sh001.clerk", "/api/v1/repair-orders", body)
    assert reply.status_code == 422, reply.text
    assert any(f == missing or f.startswith(f"{missing}.") for f in fields(reply.json()))


async def test_a_retried_post_creates_one_order(api: Api) -> None:
    body = repair_order()
    imei = body["device"]["imei"]
    key = str(uuid.uuid4())
    first = await api.post("sh001.clerk", "/api/v1/repair-orders", body, key=key)
    again = await api.post("sh001.clerk", "/api/v1/repair-orders", body, key=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert await orders_for_imei(api, imei) == 1

    other = dict(body, fault={"description": "battery drains"})
    reused = await api.post("sh001.clerk", "/api/v1/repair-orders", other, key=key)
    assert reused.status_code == 422
    assert fields(reused.json()) == {"Idempotency-Key"}
    assert await orders_for_imei(api, imei) == 1


async def test_concurrent_retries_create_one_order(api: Api) -> None:
    body = repair_order(device={"imei": new_imei(), "brand": "xiaomi", "model": "xiaomi14"})
    key = str(uuid.uuid4())
    replies = await asyncio.gather(
        *(api.post("sh001.clerk", "/api/v1/repair-orders", body, key=key) for _ in range(5))
    )
    assert {r.status_code for r in replies} <= {201, 409}
    ids = {r.json()["id"] for r in replies if r.status_code == 201}
    assert len(ids) == 1
    assert await orders_for_imei(api, body["device"]["imei"]) == 1
