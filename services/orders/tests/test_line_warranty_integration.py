"""Warranty per part line through the servicer: the diagnosis asks inventory's catalog for each
planned part's category, and the quote charges only the lines out of warranty."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from aftersales.orders.v1 import orders_pb2
from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.service import SPEC
from services.orders.tests.fake_parts import FakeParts
from services.orders.tests.test_intake_integration import form
from services.orders.tests.test_lifecycle_integration import CLERK, TECH, Desk

SCREEN, EARPHONES = "HW-SCR-001", "HW-EAR-001"
# Sold on Jan 10, in on Jun 1: the phone's year runs, the earphones' 3 months do not.
TAKEN_IN = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("orders", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("orders")
async def test_a_phone_in_warranty_pays_only_for_its_earphones_past_their_months(
    runtime: Runtime,
) -> None:
    parts = FakeParts(
        stock={SCREEN: 1, EARPHONES: 1},
        prices={SCREEN: 20_000, EARPHONES: 3_000},
        categories={EARPHONES: "earphone"},
    )
    desk = Desk(runtime, parts)
    created = await handlers.create_repair_order(
        runtime.uow,
        repository.BaseDataCache(),
        CLERK,
        form(purchase_date="2025-01-10"),
        "SH",
        "SH-001",
        None,
        clock=lambda: TAKEN_IN,
        personal_keys=InMemoryKeys(),
    )
    order = await desk.get(created.id)
    assert order.warranty.status == "in_warranty"
    diagnosis = orders_pb2.Diagnosis(
        fault_code="F-LCD",
        actions=["replace_screen"],
        parts=[
            orders_pb2.PlannedPart(part_id=SCREEN, quantity=1),
            orders_pb2.PlannedPart(part_id=EARPHONES, quantity=1),
        ],
        repair_level="L2",
    )
    order = await desk.step(TECH, order, "diagnosis", diagnosis=diagnosis)
    assert [(x.part_id, x.warranty) for x in order.lines] == [(SCREEN, True), (EARPHONES, False)]
    order = await desk.step(CLERK, order, "quote", quote=orders_pb2.QuoteRequest(labour_fen=500))
    assert (order.quote.parts_fen, order.quote.total_fen) == (3_000, 3_500)
