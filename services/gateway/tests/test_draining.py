"""The gateway stops without failing a request (services/gateway/draining): the real process,
sent SIGTERM with a request in flight, answers /readyz 503 at once and keeps serving for its
drain pause, then closes its port, lets the request finish with its 200 and exits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from aftersales.customers.v1 import customers_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2_grpc
from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from aftersales.reporting.v1 import reporting_pb2_grpc
from servicekit.demo import DEMO_PASSWORD
from servicekit.grpc_server import SERVING, new_server
from servicekit.testing import DatabaseTarget, eventually, free_port, session_keys
from services.gateway.draining import Draining, DrainingMiddleware
from services.gateway.settings import SERVICES
from services.gateway.tests.fakes import (
    FakeCustomers,
    FakeInventory,
    FakeOrders,
    FakeReporting,
    Seen,
)

ROOT = Path(__file__).resolve().parents[3]
DRAIN_PAUSE_SECONDS = 2


class HeldOrders(FakeOrders):
    """Orders whose Ping answers only when the test lets it."""

    def __init__(self, seen: Seen) -> None:
        super().__init__(seen)
        self.arrived = asyncio.Event()
        self.answer = asyncio.Event()

    async def Ping(self, request: Any, context: Any) -> orders_pb2.PingResponse:
        self.arrived.set()
        await self.answer.wait()
        return await super().Ping(request, context)


@contextlib.asynccontextmanager
async def held_services() -> AsyncIterator[tuple[str, HeldOrders]]:
    seen = Seen()
    server, health = new_server("fakes")
    orders = HeldOrders(seen)
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(orders, server)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(FakeInventory(seen), server)
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(FakeCustomers(seen), server)
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(FakeReporting(seen), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    try:
        yield f"127.0.0.1:{port}", orders
    finally:
        await server.stop(0)


@contextlib.contextmanager
def gateway_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def refused(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


@pytest.mark.e2e
async def test_sigterm_drains_readiness_503_then_the_request_in_flight_answers_200(
    db_target: DatabaseTarget, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    async with held_services() as (address, orders):
        env = {
            "GATEWAY_PORT": str(port),
            "DATABASE_URL": db_target.url,
            "DB_SCHEMA": db_target.schema or "",
            "DEMO_DATA": "1",
            "JWT_SECRET": "test-secret-of-enough-length-for-hs256",
            "RATE_LIMIT_PER_SECOND": "0",
            "INTERNAL_TOKEN_KEYS": str(session_keys()),
            "DRAIN_PAUSE_SECONDS": str(DRAIN_PAUSE_SECONDS),
            "SHUTDOWN_GRACE_SECONDS": "30",
            **{f"{name.upper()}_ADDR": address for name in SERVICES},
        }
        with gateway_process(env, log) as process:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:

                async def up() -> bool:
                    assert process.poll() is None, log.read_text()
                    with contextlib.suppress(httpx.HTTPError):
                        return (await client.get("/readyz")).status_code == 200
                    return False

                await eventually(up, within=60, interval=0.1)
                token = await client.post(
                    "/api/v1/auth/token",
                    data={"username": "zj001.clerk", "password": DEMO_PASSWORD},
                )
                assert token.status_code == 200, token.text
                bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
                in_flight = asyncio.create_task(client.get("/api/v1/ping", headers=bearer))
                await asyncio.wait_for(orders.arrived.wait(), 10)

                process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()

                async def draining() -> httpx.Response | None:
                    # A connection of its own each time, as a probe or a balancer opens.
                    async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
                        answer = await probe.get("/readyz")
                    return answer if answer.status_code == 503 else None

                readiness = await eventually(draining, within=DRAIN_PAUSE_SECONDS)
                assert readiness.json()["status"] == "draining"
                assert readiness.headers["connection"] == "close"
                # Everything else is still served during the pause, each answer closing its
                # connection so that the client's next request goes to another replica.
                async with httpx.AsyncClient(base_url=base, timeout=5) as other:
                    served = await other.get("/healthz")
                assert (served.status_code, served.headers["connection"]) == (200, "close")

                # After the pause the port closes, with the request still in flight.
                await eventually(lambda: refused(port), within=DRAIN_PAUSE_SECONDS + 10)
                assert time.monotonic() - signalled >= DRAIN_PAUSE_SECONDS - 0.5
                assert not in_flight.done()
                orders.answer.set()
                answer = await in_flight
                assert answer.status_code == 200, answer.text
            process.wait(30)
            output = log.read_text()
            assert process.returncode in {0, -signal.SIGTERM}, output
            assert "Application shutdown complete" in output


async def test_the_middleware_answers_only_readiness_while_draining() -> None:
    async def hello(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    draining = Draining()
    app = DrainingMiddleware(
        Starlette(routes=[Route("/readyz", hello), Route("/hello", hello)]), draining
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://gw"
    ) as client:
        before = await client.get("/readyz")
        assert (before.status_code, before.text) == (200, "hello")
        assert "connection" not in before.headers
        draining.begin()
        after = await client.get("/readyz")
        assert after.status_code == 503
        assert after.json() == {"status": "draining", "down": ["draining"]}
        hello_reply = await client.get("/hello")
        assert (hello_reply.status_code, hello_reply.text) == (200, "hello")
        assert hello_reply.headers["connection"] == "close"
    assert draining.seconds() >= 0
