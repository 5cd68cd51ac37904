"""What an order taken in costs customers' database: the statements its OrderReceived makes in
the customer records and in the notices, pinned, so a change that adds a round trip to every
order is a decision, not an accident."""

from __future__ import annotations

import pytest

from servicekit.runtime import Runtime
from servicekit.testing import statements_sent
from services.customers import handlers
from services.customers.notifications import handlers as notices
from services.customers.notifications.settings import NotificationSettings
from services.customers.tests.support import Lane, order_received

pytestmark = pytest.mark.service("customers")


async def test_an_order_of_a_new_customer_and_then_of_a_known_one(
    runtime: Runtime, lane: Lane
) -> None:
    async def recorded() -> list[str]:
        with statements_sent(runtime.db) as sent:
            async with runtime.uow() as uow:
                await handlers.record_order_received(
                    uow, order_received(lane), personal_keys=lane.keys
                )
                await uow.commit()
        return sent

    # Is the order known; the customer, the device and the order added.
    assert len(await recorded()) == 4
    # The same phone and device again: each insert yields to the row there, read and updated.
    assert len(await recorded()) == 8


async def test_the_notice_of_an_order_taken_in(runtime: Runtime, lane: Lane) -> None:
    settings = NotificationSettings.from_env()
    with statements_sent(runtime.db) as sent:
        async with runtime.uow() as uow:
            await notices.order_received(uow, order_received(lane), settings)
            await uow.commit()
    # The tracking row looked for and made, its step, the notice.
    assert len(sent) == 4, sent
