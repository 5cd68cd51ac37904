"""Fixtures of the customers tests: a customers runtime on a real database and real NATS, and a
lane of the shared ORDERS stream of each test's own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.customers.consumers import (
    ORDER_RECEIVED_CONSUMER,
    ORDERS_STREAM,
    order_received_consumer,
)
from services.customers.service import SPEC
from services.customers.tests.support import Lane


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(SPEC, service_settings("customers", db_target, nats_server.url))
    yield runtime
    await close_runtime(runtime)


@pytest.fixture
async def lane(runtime: Runtime) -> AsyncIterator[Lane]:
    tag = uuid.uuid4().hex[:8]
    branch_id = f"T{tag}"
    keys = InMemoryKeys()
    consumer = order_received_consumer(
        runtime,
        keys,
        name=f"{ORDER_RECEIVED_CONSUMER}-{tag}",
        subject=f"orders.v1.{branch_id}.*.order_received",
    )
    yield Lane(branch_id, f"{branch_id}-001", consumer, keys)
    with contextlib.suppress(Exception):
        await runtime.js.delete_consumer(ORDERS_STREAM, consumer.name)
