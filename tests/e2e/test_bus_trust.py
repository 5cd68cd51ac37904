"""The running system's event bus takes nobody's word: a pod without credentials cannot
connect, and the customers service's own credentials cannot put an order event on the bus,
so no forged `order_closed` reaches the customer's SMS."""

from __future__ import annotations

import uuid

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from devtools.system import LocalSystem
from servicekit import bus
from servicekit.testing import eventually


async def test_a_connection_without_credentials_is_refused(system: LocalSystem) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(system.nats_url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_customers_credentials_cannot_forge_an_order_event(system: LocalSystem) -> None:
    forged = bus.subject("orders", "SH", f"X{uuid.uuid4().hex[:8]}", "order_closed")
    refusals: list[str] = []

    async def note(error: Exception) -> None:
        refusals.append(str(error).lower())

    customers = await nats.connect(
        system.nats_url,
        allow_reconnect=False,
        error_cb=note,
        **bus.connect_options(system.nats_url, system.bus_auth("customers")),
    )
    try:
        await customers.publish(forged, b"forged", headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await customers.flush()

        async def refused() -> bool:
            return any(f'publish to "{forged.lower()}"' in error for error in refusals)

        await eventually(refused)
    finally:
        await customers.close()
    harness = await system.connect_bus()
    try:
        with pytest.raises(NotFoundError):
            await harness.jetstream().get_last_msg("ORDERS", forged)
    finally:
        await harness.close()
