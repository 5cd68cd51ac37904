"""Stock value against a real database: receipts at prices that do not divide, issues, a
transfer with a short unit, write-offs; the value the ledger brought in is what it took out
plus what is held and in transit, to the fen, and the conservation check says so, and says
when a balance's value disagrees with its ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from servicekit.auth import AuthContext
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from servicekit.timeutil import utc_now
from services.inventory.adapters.orm import stock_levels
from services.inventory.domain.conservation import PartConservation
from services.inventory.domain.stock import Posting
from services.inventory.handlers import common, conservation, transfers
from services.inventory.handlers.common import MovementLine
from services.inventory.service import SPEC

PART = "VV-SCR-X100"  # stocked at the SH central and SH-002
HQ_ADMIN = AuthContext("u-hq", "hq_admin")
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH")


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def check(runtime: Runtime) -> PartConservation:
    [part] = await conservation.check_conservation(runtime.uow, HQ_ADMIN, PART)
    return part


async def post(runtime: Runtime, document_id: str, *lines: MovementLine) -> None:
    async with runtime.uow() as uow:
        await common.post_movements(
            uow, list(lines), Posting("receipt", document_id, utc_now(), "u-k")
        )
        await uow.commit()


def exact(part: PartConservation) -> bool:
    return part.value_in - part.value_out == part.value_held + part.value_in_transit


@pytest.mark.service("inventory")
async def test_value_in_is_value_out_plus_value_held_to_the_fen(runtime: Runtime) -> None:
    start = await check(runtime)
    assert start.balanced and exact(start)
    # Prices whose averages do not come out in whole fen, then odd quantities out.
    await post(
        runtime,
        "GRN-odd",
        MovementLine("WH-SH", PART, "receipt", 3, 1001),
        MovementLine("WH-SH", PART, "receipt", 7, 333),
        MovementLine("WH-SH-002", PART, "receipt", 2, 1),
        MovementLine("WH-SH-002", PART, "receipt", 3, 997),
    )
    await post(
        runtime,
        "OUT-odd",
        MovementLine("WH-SH", PART, "issue", -4),
        MovementLine("WH-SH-002", PART, "issue", -3),
        MovementLine("WH-SH", PART, "scrap", -1),
        MovementLine("WH-SH-002", PART, "return_to_manufacturer", -1),
        MovementLine("WH-SH", PART, "adjustment", -2),
    )
    after = await check(runtime)
    assert after.balanced and exact(after)
    assert after.value_in - start.value_in == 3 * 1001 + 7 * 333 + 2 * 1 + 3 * 997

    doc = await transfers.request_transfer(
        runtime.uow, SH_MANAGER, "WH-SH", "WH-SH-002", [(PART, 3)], ""
    )
    await transfers.approve_transfer(runtime.uow, SH_MANAGER, doc.id)
    doc = await transfers.ship_transfer(runtime.uow, SH_MANAGER, doc.id)
    moving = await check(runtime)
    assert moving.balanced and exact(moving)
    assert moving.value_in_transit == doc.lines[0].value_fen > 0
    await transfers.receive_transfer(runtime.uow, SH_MANAGER, doc.id, {PART: (1, 0)})
    done = await check(runtime)
    assert done.balanced and exact(done) and done.value_in_transit == 0
    assert done.value_out - moving.value_out == doc.lines[0].value_fen // 3  # the short one


@pytest.mark.service("inventory")
async def test_a_balance_whose_value_disagrees_with_its_ledger_is_unbalanced(
    runtime: Runtime,
) -> None:
    await post(runtime, "GRN-odd", MovementLine("WH-SH-002", PART, "receipt", 3, 1001))
    assert (await check(runtime)).balanced
    async with runtime.db.session() as session:
        c = stock_levels.c
        await session.execute(
            update(stock_levels)
            .where(c.warehouse_id == "WH-SH-002", c.part_number == PART)
            .values(value_fen=c.value_fen - 1)
        )
        await session.commit()
    part = await check(runtime)
    assert not part.balanced
    assert part.warehouses_off == ("WH-SH-002",)
