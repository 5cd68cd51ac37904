"""A reporting runtime (database migrated to head, bus connected) for the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.reporting.service import SPEC


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(SPEC, service_settings("reporting", db_target, nats_server.url))
    yield runtime
    await close_runtime(runtime)
