"""Fixtures the servicekit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from servicekit import bus
from servicekit.testing import NatsServer


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[bus.JetStreamContext]:
    """A JetStream context on the session's NATS server, with our streams in place."""
    nc = await bus.connect(nats_server.url, "test", nats_server.auth())
    context = nc.jetstream()
    await bus.ensure_streams(context)
    yield context
    await nc.close()
