"""Crashes lose nothing and duplicate nothing: the orders process killed right after accepting
an order still gets its event to reporting exactly once after a restart; reporting killed and
restarted counts nothing twice. Only these tests take orders in at ZJ-001, so its count moves
with them alone."""

from __future__ import annotations

import asyncio
import time

from devtools.system import LocalSystem
from servicekit.testing import eventually
from tests.e2e.conftest import Api, repair_order


async def settled_count(api: Api, expected: int) -> int:
    async def reached() -> int | None:
        value = await api.orders_received("zj.manager", store_id="ZJ-001")
        return value if value >= expected else None

    return await eventually(reached, within=30)


async def test_orders_killed_after_accepting_still_announces_once(
    system: LocalSystem, api: Api
) -> None:
    before = await api.orders_received("zj.manager", store_id="ZJ-001")
    # Hold committed events in the outbox long enough that the kill surely comes first.
    system.kill("orders")
    await system.restart("orders", env={"ORDERS_OUTBOX_PUBLISH_DELAY_SECONDS": "30"})
    await api.wait_for_state("orders", "serving")
    created = await api.post("zj001.clerk", "/api/v1/repair-orders", repair_order())
    assert created.status_code == 201, created.text
    system.kill("orders")
    await asyncio.sleep(1)
    assert await api.orders_received("zj.manager", store_id="ZJ-001") == before

    await system.restart("orders", env={})
    await api.wait_for_state("orders", "serving")
    assert await settled_count(api, before + 1) == before + 1
    await asyncio.sleep(2)  # any duplicate would have arrived by now
    assert await api.orders_received("zj.manager", store_id="ZJ-001") == before + 1
    fetched = await api.get("zj001.clerk", f"/api/v1/repair-orders/{created.json()['id']}")
    assert fetched.status_code == 200


async def test_reporting_killed_and_restarted_counts_nothing_twice(
    system: LocalSystem, api: Api
) -> None:
    before = await api.orders_received("zj.manager", store_id="ZJ-001")
    system.kill("reporting")
    for _ in range(3):
        reply = await api.post("zj001.clerk", "/api/v1/repair-orders", repair_order())
        assert reply.status_code == 201, reply.text
    await system.restart("reporting")
    await api.wait_for_state("reporting", "serving")
    assert await settled_count(api, before + 3) == before + 3
    await asyncio.sleep(2)
    assert await api.orders_received("zj.manager", store_id="ZJ-001") == before + 3


async def test_a_stopped_service_answers_503_at_once_not_a_stack_trace(
    system: LocalSystem, api: Api
) -> None:
    system.terminate("reporting")
    try:
        started = time.monotonic()
        reply = await api.get("sh.manager", "/api/v1/reports/kpis")
        # Fail fast: well before the 5 s gRPC deadline a waiting call would run into.
        assert time.monotonic() - started < 4
        assert reply.status_code == 503
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert reply.headers["Retry-After"].isdigit()
    finally:
        await system.restart("reporting")
        await api.wait_for_state("reporting", "serving")


async def test_a_broker_restart_loses_nothing(system: LocalSystem, api: Api) -> None:
    assert system.nats is not None
    before = await api.orders_received("zj.manager", store_id="ZJ-001")
    system.nats.stop()
    try:
        # Intake does not need the broker: the order and its event wait in the outbox.
        reply = await api.post("zj001.clerk", "/api/v1/repair-orders", repair_order())
        assert reply.status_code == 201, reply.text
    finally:
        system.nats.start()
    assert await settled_count(api, before + 1) == before + 1
    await asyncio.sleep(2)
    assert await api.orders_received("zj.manager", store_id="ZJ-001") == before + 1
