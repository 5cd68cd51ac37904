"""Fixtures every test folder may use: a real NATS server for the session, a database target
(SQLite, or PostgreSQL when TEST_DATABASE_URL is set) per test, and the session's caller-token
keys as INTERNAL_TOKEN_KEYS, so servers and gateways built from the environment trust each
other."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from servicekit.testing import (
    DatabaseTarget,
    NatsServer,
    database_target,
    drop_schema,
    session_keys,
)


@pytest.fixture(scope="session", autouse=True)
def caller_token_keys() -> Iterator[Path]:
    before = os.environ.get("INTERNAL_TOKEN_KEYS")
    os.environ["INTERNAL_TOKEN_KEYS"] = str(session_keys())
    yield session_keys()
    if before is None:
        del os.environ["INTERNAL_TOKEN_KEYS"]
    else:
        os.environ["INTERNAL_TOKEN_KEYS"] = before


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
async def db_target(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[DatabaseTarget]:
    """A fresh place for one service's data; name the service with @pytest.mark.service(...)
    or get 'svc'."""
    marker = request.node.get_closest_marker("service")
    target = database_target(marker.args[0] if marker else "svc", tmp_path)
    yield target
    await drop_schema(target)
