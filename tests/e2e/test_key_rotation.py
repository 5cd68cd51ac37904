"""The gateway's signing key rotated under load, on the real processes, in the runbook's order
(servicekit.keys): the new public key published, then the gateway switched to it, then the old
key retired. Clients call through the gateway the whole time and not one call fails; after the
retirement the services refuse a token of the old key, so the calls after it did run on the
new one. Nothing restarts."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from devtools.system import LocalSystem, SystemConfig
from servicekit.auth import AuthContext
from servicekit.caller_token import GATEWAY, METADATA_KEY, CallerTokenSigner
from servicekit.keys import activate, publish_new_key, retire, signing_key
from tests.e2e.conftest import Api, repair_order

USERS = ("sh001.clerk", "hq.admin")
WORKERS = 4


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[LocalSystem]:
    """A system of its own: its keys are the test's to rotate."""
    local = LocalSystem(SystemConfig.for_tests(tmp_path / "system"))
    try:
        await local.start()
        yield local
    finally:
        local.stop()
        await local.drop_schemas()


class Load:
    """Clients calling through the gateway until stopped: every answer's status, by the
    rotation step it came in."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.step = "before"
        self.answers: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []
        self._running = True
        self._minimum = 0
        self._enough = asyncio.Event()

    async def worker(self, number: int) -> None:
        turn = 0
        while self._running:
            user = USERS[(number + turn) % len(USERS)]
            step = self.step
            if turn % 3 == 0:
                reply = await self.api.get(user, "/api/v1/ping")
            elif turn % 3 == 1:
                reply = await self.api.get(user, "/api/v1/reports/kpis")
            else:
                reply = await self.api.post("sh001.clerk", "/api/v1/repair-orders", repair_order())
            self.answers[(step, reply.status_code)] += 1
            if reply.status_code >= 300:
                self.failures.append(
                    f"{step}: {reply.request.url} {reply.status_code} {reply.text}"
                )
            if self.served(self.step) >= self._minimum:
                self._enough.set()
            turn += 1

    def stop(self) -> None:
        self._running = False

    def served(self, step: str) -> int:
        return sum(count for (seen, status), count in self.answers.items() if seen == step)

    async def run_until(self, step: str, minimum: int) -> None:
        """Go on to `step` once the step before has had `minimum` answers."""
        self._minimum = minimum
        self._enough.clear()
        await asyncio.wait_for(self._enough.wait(), 60)
        self.step = step


async def gateway_signs_with(client: httpx.AsyncClient, kid: str, timeout: float = 30) -> None:
    """Until the gateway's metrics show it signing with `kid`."""
    deadline = time.monotonic() + timeout
    while f'kid="{kid}"' not in (await client.get("/metrics")).text:
        assert time.monotonic() < deadline, f"the gateway never took up {kid}"
        await asyncio.sleep(0.1)


async def orders_answers(system: LocalSystem, token: str) -> grpc.StatusCode:
    address = f"127.0.0.1:{system.config.grpc_ports['orders']}"
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await orders_pb2_grpc.OrdersServiceStub(channel).ListRepairOrders(
                orders_pb2.ListRepairOrdersRequest(), metadata=((METADATA_KEY, token),), timeout=5
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_the_gateways_key_rotates_under_load_without_a_failed_call(
    system: LocalSystem,
) -> None:
    keys = system.keys_dir
    old_key = signing_key(keys, GATEWAY).value
    old_signer = CallerTokenSigner(GATEWAY, old_key)
    before = old_signer.token_for(AuthContext("u-hq-admin", "hq_admin"), "orders")
    assert await orders_answers(system, before) == grpc.StatusCode.OK
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        api = Api(client)
        load = Load(api)
        workers = [asyncio.create_task(load.worker(number)) for number in range(WORKERS)]
        try:
            await load.run_until("published", 20)
            new_key = publish_new_key(keys, GATEWAY)
            await load.run_until("switched", 20)
            activate(keys, new_key.kid)
            await gateway_signs_with(client, new_key.kid)
            await load.run_until("retired", 20)
            # Once the gateway took up the new key it signs every token anew, so none of the
            # old key's leaves it any more; the runbook's wait of a token's lifetime covers
            # pods that read a Secret later, and tokens other processes still hold.
            retire(keys, old_key.kid)
            await load.run_until("after", 20)
            await load.run_until("done", 20)
        finally:
            load.stop()
            await asyncio.gather(*workers)

    assert load.failures == []
    for step in ("before", "published", "switched", "retired", "after"):
        assert load.served(step) >= 20, load.answers
    # The services refuse the old key now: a token they have not seen makes them look at the
    # JWKS again, if they last did a second ago or more.
    await asyncio.sleep(1.1)
    after = old_signer.token_for(AuthContext("u-hq-analyst", "hq_analyst"), "orders")
    assert await orders_answers(system, after) == grpc.StatusCode.UNAUTHENTICATED
    assert system.dead() == []
