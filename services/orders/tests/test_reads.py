"""What intake and a step read, and what it costs the database: the statements of one
create-order and of a step's reads are pinned, so a change that adds a round trip to every
order is a decision, not an accident."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from servicekit.auth import AuthContext
from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings, statements_sent
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.orm import repair_orders
from services.orders.domain.intake import IntakeForm
from services.orders.service import SPEC

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")


def form(imei: str) -> IntakeForm:
    return IntakeForm(
        customer_name="张三",
        customer_phone="13812345678",
        imei=imei,
        brand="huawei",
        model="p60",
        colour="black",
        purchase_date="",
        fault_description="screen cracked",
        symptom_code="",
        service_type="repair",
        accessories="",
        appearance="",
        promised_date="",
    )


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("orders", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("orders")
async def test_create_order_statements(runtime: Runtime) -> None:
    keys, base = InMemoryKeys(), repository.BaseDataCache()

    async def intake(imei: str) -> None:
        await handlers.create_repair_order(
            runtime.uow, base, CLERK, form(imei), "SH", "SH-001", None, personal_keys=keys
        )

    await intake("490154203237518")  # the first loads the base data
    with statements_sent(runtime.db) as sent:
        await intake("356938035643809")
    assert len(sent) == 5, sent


@pytest.mark.service("orders")
async def test_intake_reads_find_the_last_closed_repair_by_any_imei(runtime: Runtime) -> None:
    keys, base = InMemoryKeys(), repository.BaseDataCache()
    first = await handlers.create_repair_order(
        runtime.uow, base, CLERK, form("490154203237518"), "SH", "SH-001", None, personal_keys=keys
    )
    closed_at = datetime(2026, 11, 2, 8, tzinfo=UTC)
    async with runtime.db.begin() as session:
        await session.execute(
            update(repair_orders).where(repair_orders.c.id == first.id).values(closed_at=closed_at)
        )
        # A new board (B), then a swap (C), linked back to front to walk both ways.
        await repository.add_imei_link(
            session, "490154203237518", "356938035643809", "mainboard", first.id, closed_at
        )
        await repository.add_imei_link(
            session, "353918050000003", "356938035643809", "swap", first.id, closed_at
        )
    async with runtime.db.session() as session:
        version = await repository.base_data.current_version(session)
        for imei in ("490154203237518", "356938035643809", "353918050000003"):
            reads = await repository.intake_reads(session, imei)
            assert reads.base_version == version
            assert reads.last_closed == repository.ClosedRepair(first.id, first.number, closed_at)
        elsewhere = await repository.intake_reads(session, "864000000000009")
    assert elsewhere == repository.IntakeReads(version, None)


@pytest.mark.service("orders")
async def test_a_step_reads_the_order_and_the_base_data_version_together(runtime: Runtime) -> None:
    keys, base = InMemoryKeys(), repository.BaseDataCache()
    order = await handlers.create_repair_order(
        runtime.uow, base, CLERK, form("490154203237518"), "SH", "SH-001", None, personal_keys=keys
    )
    with statements_sent(runtime.db) as sent:
        context = await handlers.step_context(runtime.uow, base, CLERK, order.id, "cancel")
    # The order with the base data's version, then its timeline; the base data is cached.
    assert len(sent) == 2, sent
    assert context.order.id == order.id
    assert [e.step for e in context.order.timeline] == ["intake"]
