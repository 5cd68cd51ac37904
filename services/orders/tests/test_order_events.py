"""The events an order records as it changes, and the subjects and messages they go out as."""

from __future__ import annotations

import pytest

from servicekit.personal_data import InMemoryKeys
from services.orders import events
from services.orders.domain import lifecycle
from services.orders.domain.order import OrderReceived, StepTaken
from services.orders.tests.test_lifecycle import NOW, TECH, diagnosis, new_order

PRICES = {"HW-SCR-001": 20_000}


def test_an_order_taken_in_records_its_arrival() -> None:
    order = new_order().taken_in()
    assert order.pending_events == [OrderReceived()]


def test_a_step_that_moves_the_status_records_it() -> None:
    order = new_order()
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES)
    order.step_taken("diagnosis", "received", "490154203237518", "att-1", claimed=False)
    assert order.pending_events == [
        StepTaken("diagnosis", "received", "diagnosed", "490154203237518", "att-1")
    ]


def test_a_step_that_stays_in_its_status_records_nothing_unless_it_claimed_parts() -> None:
    quiet = new_order()
    quiet.step_taken("parts", "received", "490154203237518", "att-1", claimed=False)
    assert quiet.pending_events == []
    # Inventory must hear which attempt was written, so a claim is announced all the same.
    claiming = new_order()
    claiming.step_taken("parts", "received", "490154203237518", "att-2", claimed=True)
    assert claiming.pending_events == [
        StepTaken("parts", "received", "received", "490154203237518", "att-2")
    ]


def test_the_translator_names_the_subject_after_the_status_the_step_reached() -> None:
    order = new_order()
    lifecycle.diagnose(order, TECH, NOW, diagnosis(), PRICES)
    order.version = 2
    event = StepTaken("diagnosis", "received", "diagnosed", "490154203237518", "att-1")
    subject, message = events.translator()(order, event)
    assert subject == "orders.v1.SH.SH-001.order_diagnosed"
    expected = events.status_changed(order, "diagnosis", "received", "490154203237518", "att-1")
    message.ClearField("meta")
    expected.ClearField("meta")
    assert message == expected
    assert expected.parts_attempt == "att-1" and expected.version == 2


def test_an_arrival_goes_out_sealed_with_the_customers_key() -> None:
    order = new_order()
    key = InMemoryKeys().key_for(order.intake.customer_phone)
    subject, message = events.translator(key)(order, OrderReceived())
    assert subject == "orders.v1.SH.SH-001.order_received"
    assert message.customer.key_id == key.key_id  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        events.translator()(order, OrderReceived())
