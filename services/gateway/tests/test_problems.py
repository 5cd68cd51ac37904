"""Problem details for failures: a database that is unavailable, in whichever form its driver
raises it, is a 503 with Retry-After; so is a service's ServiceUnavailable; a bug is a 500 that
says nothing about itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from servicekit.errors import ServiceUnavailable
from services.gateway import problems

FAILURES: dict[str, Exception] = {
    "refused": ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)"),
    "invalidated": OperationalError("SELECT 1", {}, ConnectionResetError(), True),
    "pool-timeout": PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
    "starting-up": asyncpg.CannotConnectNowError("the database system is starting up"),
    "wrapped": RuntimeError("loading the org tree failed"),
    "service-down": ServiceUnavailable("orders: connection refused"),
    "bug": ValueError("a bug at 10.0.0.5"),
    "constraint": IntegrityError("INSERT", {}, Exception("duplicate key at 10.0.0.5")),
}


def app_failing() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/fail/{name}")
    async def fail(name: str) -> None:
        if name == "wrapped":
            try:
                raise ConnectionResetError(104, "Connection reset by peer")
            except OSError as error:
                raise FAILURES[name] from error
        raise FAILURES[name]

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Starlette re-raises what reached its last-resort handler after answering: not our concern.
    transport = httpx.ASGITransport(app_failing(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


@pytest.mark.parametrize(
    "name", ["refused", "invalidated", "pool-timeout", "starting-up", "wrapped", "service-down"]
)
async def test_anything_unavailable_is_a_503_with_retry_after(
    client: httpx.AsyncClient, name: str
) -> None:
    reply = await client.get(f"/fail/{name}")
    assert reply.status_code == 503
    assert reply.headers["content-type"] == problems.PROBLEM_JSON
    assert int(reply.headers["retry-after"]) >= 1
    assert reply.json()["status"] == 503
    assert "10.0.0.5" not in reply.text


@pytest.mark.parametrize("name", ["bug", "constraint"])
async def test_a_bug_is_a_500_that_says_nothing(client: httpx.AsyncClient, name: str) -> None:
    reply = await client.get(f"/fail/{name}")
    assert reply.status_code == 500
    assert reply.headers["content-type"] == problems.PROBLEM_JSON
    assert "retry-after" not in reply.headers
    assert "10.0.0.5" not in reply.text
