"""The HTTP SMS provider on the real processes: customers configured with SMS_PROVIDER=http
against a stand-in SMS gateway this test starts. A gateway that fails twice and then takes the
message leaves the notice sent after its retries; one that keeps failing leaves it failed with
its last error, in the delivery log the gateway's REST shows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.system import LocalSystem, SystemConfig
from servicekit.testing import eventually
from services.customers.tests.sms_gateway import SmsGateway, sms_gateway
from tests.e2e.conftest import Api, repair_order

ORDERS = "/api/v1/repair-orders"
MAX_ATTEMPTS = 5
# The first notice is refused twice and then taken; every later request is refused.
SCRIPT = [503, 500, 200, 502]


@pytest.fixture
async def with_sms_gateway(tmp_path: Path) -> AsyncIterator[tuple[LocalSystem, SmsGateway]]:
    async with sms_gateway(SCRIPT) as (gateway, url):
        customers = {
            "SMS_PROVIDER": "http",
            "SMS_HTTP_URL": url,
            "SMS_HTTP_TOKEN": "e2e-token",
            "NOTIFY_RETRY_DELAYS_SECONDS": "0.3",
            "NOTIFY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "NOTIFY_POLL_SECONDS": "0.2",
        }
        config = SystemConfig.for_tests(
            tmp_path,
            env={"RATE_LIMIT_PER_SECOND": "0"},
            service_env={"customers": customers},
        )
        local = LocalSystem(config)
        try:
            await local.start()
            yield local, gateway
        finally:
            local.stop()
            await local.drop_schemas()


async def settled_notice(api: Api, order_id: str) -> dict[str, Any]:
    """The order's received notice once the sender is done with it (sent or failed)."""

    async def settled() -> dict[str, Any] | None:
        reply = await api.get("sh001.clerk", "/api/v1/notifications", order_id=order_id)
        assert reply.status_code == 200, reply.text
        done = [r for r in reply.json()["items"] if r["status"] in ("sent", "failed")]
        return done[0] if done else None

    return await eventually(settled, within=60, interval=0.3)


async def taken_in_with_consent(api: Api) -> str:
    body = repair_order()
    body["customer"]["message_consent"] = True
    created = await api.post("sh001.clerk", ORDERS, body, key=str(uuid.uuid4()))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_the_http_provider_retries_a_failing_gateway_and_records_the_final_status(
    with_sms_gateway: tuple[LocalSystem, SmsGateway],
) -> None:
    system, gateway = with_sms_gateway
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        api = Api(client)

        taken = await settled_notice(api, await taken_in_with_consent(api))
        tries = [r for r in gateway.received if r["reference"] == taken["id"]]
        assert taken["status"] == "sent" and taken["provider"] == "http", taken
        assert len(tries) == 3  # 503, 500, then taken
        assert taken["attempts"] >= 3 and taken["sent_at"]
        assert all(h["authorization"] == "Bearer e2e-token" for h in gateway.headers)
        assert "/track/" in tries[-1]["text"]  # the received notice carries the tracking link

        refused = await settled_notice(api, await taken_in_with_consent(api))
        tries = [r for r in gateway.received if r["reference"] == refused["id"]]
        assert refused["status"] == "failed", refused
        assert refused["attempts"] == MAX_ATTEMPTS and refused["sent_at"] is None
        assert refused["last_error"].startswith("HTTP 502")
        assert 1 <= len(tries) <= MAX_ATTEMPTS
