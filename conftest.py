"""Fixtures every test folder may use: a real NATS server for the session, and a database
target (SQLite, or PostgreSQL when TEST_DATABASE_URL is set) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from servicekit.testing import DatabaseTarget, NatsServer, database_target, drop_schema


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
