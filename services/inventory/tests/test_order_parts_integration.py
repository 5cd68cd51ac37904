"""An order's parts against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL):
reserve, issue, release and return move the balances and the ledger together, announce each
change, never double anything, and two replicas racing for the last unit give it to one."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from aftersales.events.v1 import inventory_events_pb2
from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.adapters.orm import outbox, stock_levels, stock_movements, transfers
from services.inventory.domain.stock import StockLevel
from services.inventory.handlers import (
    conservation,
    documents,
    slow_moving,
    stock,
    work_order_parts,
)
from services.inventory.handlers.transfers import get_transfer
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

WAREHOUSE, PART = "WH-SH-002", "OP-SCR-FINDX7"
TECH = AuthContext("u-t2", "technician", "SH", "SH-002")
OTHER_STORE = AuthContext("u-t1", "technician", "SH", "SH-001")
HQ_ADMIN = AuthContext("u-hq", "hq_admin")
KEEPER = AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002")


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def level(runtime: Runtime, part: str = PART) -> StockLevel:
    _, rows = await stock.get_stock(runtime.uow, HQ_ADMIN, WAREHOUSE, part)
    return rows[0].level


async def ledger_rows(runtime: Runtime, order_id: str) -> list[tuple[str, int, int]]:
    async with runtime.db.session() as session:
        m = stock_movements.c
        rows = await session.execute(
            select(m.kind, m.quantity, m.unit_cost_fen)
            .where(m.document_type == "order", m.document_id == order_id)
            .order_by(m.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def events(runtime: Runtime, name: str) -> list[bytes]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(outbox.c.payload)
            .where(outbox.c.subject == f"inventory.v1.SH.SH-002.{name}")
            .order_by(outbox.c.seq)
        )
        return list(rows)


def one(part: str = PART, quantity: int = 1, line_id: str = "l-1") -> list[PartRequest]:
    return [PartRequest(line_id, part, quantity, False)]


@pytest.mark.service("inventory")
async def test_reserve_issue_return_and_release_move_stock_and_ledger(runtime: Runtime) -> None:
    start = await level(runtime)
    assert start.on_hand >= 2

    held = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-1", WAREHOUSE, one(quantity=2)
    )
    [line] = held.lines
    assert (line.reserved, line.short, line.status) == (2, 0, "reserved")
    assert line.retail_price_fen > 0
    # A retry is answered the same and holds nothing more.
    again = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-1", WAREHOUSE, one(quantity=2)
    )
    assert again == held
    after_reserve = await level(runtime)
    assert (after_reserve.on_hand, after_reserve.reserved) == (start.on_hand, start.reserved + 2)

    issued = await work_order_parts.issue_parts(runtime.uow, TECH, "o-1", [])
    [line] = issued.lines
    assert (line.issued, line.status, line.unit_cost_fen) == (2, "issued", start.average_cost_fen)
    assert await work_order_parts.issue_parts(runtime.uow, TECH, "o-1", ["l-1"]) == issued
    after_issue = await level(runtime)
    assert (after_issue.on_hand, after_issue.reserved) == (start.on_hand - 2, start.reserved)

    returned = await work_order_parts.return_parts(runtime.uow, TECH, "o-1", "l-1", 1)
    assert (returned.lines[0].returned, returned.lines[0].status) == (1, "issued")
    assert (await level(runtime)).on_hand == start.on_hand - 1
    with pytest.raises(InvalidInput):
        await work_order_parts.return_parts(runtime.uow, TECH, "o-1", "l-1", 2)

    cost = start.average_cost_fen
    assert await ledger_rows(runtime, "o-1") == [("issue", -2, cost), ("return", 1, cost)]
    moved = [
        inventory_events_pb2.StockMoved.FromString(p) for p in await events(runtime, "stock_moved")
    ]
    assert [(e.kind, e.quantity, e.document_id) for e in moved[-2:]] == [
        ("issue", -2, "o-1"),
        ("return", 1, "o-1"),
    ]
    assert moved[-1].on_hand_after == start.on_hand - 1
    changes = [
        inventory_events_pb2.OrderPartsChanged.FromString(p).action
        for p in await events(runtime, "order_parts_changed")
    ]
    assert changes == ["reserve", "issue", "return"]

    # Release frees a second order's hold, and leaves the issued line alone.
    await work_order_parts.reserve_parts(runtime.uow, TECH, "o-2", WAREHOUSE, one())
    released = await work_order_parts.release_parts(runtime.uow, TECH, "o-2", [])
    assert released.lines[0].status == "released"
    assert (await level(runtime)).reserved == start.reserved
    assert (await work_order_parts.release_parts(runtime.uow, TECH, "o-1", [])).lines[
        0
    ].status == "issued"
    with pytest.raises(Conflict):
        await work_order_parts.issue_parts(runtime.uow, TECH, "o-2", [])

    report = await conservation.check_conservation(runtime.uow, HQ_ADMIN, PART)
    assert [p.balanced for p in report] == [True]
    assert report[0].consumed == 1


@pytest.mark.service("inventory")
async def test_what_is_not_there_is_reported_short(runtime: Runtime) -> None:
    start = await level(runtime)
    asked = start.available + 3
    held = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-s", WAREHOUSE, one(quantity=asked)
    )
    assert (held.lines[0].reserved, held.lines[0].short, held.lines[0].status) == (
        start.available,
        3,
        "short",
    )
    with pytest.raises(Conflict):
        await work_order_parts.issue_parts(runtime.uow, TECH, "o-s", [])
    # The store has asked its branch's central warehouse for the shortfall, once.
    await work_order_parts.reserve_parts(runtime.uow, TECH, "o-s", WAREHOUSE, one(quantity=asked))
    async with runtime.db.session() as session:
        [transfer_id] = await session.scalars(
            select(transfers.c.id).where(transfers.c.note == "order o-s short of parts")
        )
    asked_for = await get_transfer(runtime.uow, KEEPER, transfer_id)
    assert (asked_for.from_warehouse_id, asked_for.to_warehouse_id) == ("WH-SH", WAREHOUSE)
    assert [(x.part_number, x.quantity) for x in asked_for.lines] == [(PART, 3)]
    assert asked_for.status == "requested"
    # The parts arrive; asking again takes them, and the line can be issued.
    await documents.record_receipt(runtime.uow, KEEPER, WAREHOUSE, PART, 3, 40000, "GRN-1")
    topped = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-s", WAREHOUSE, one(quantity=asked)
    )
    assert (topped.lines[0].reserved, topped.lines[0].short) == (asked, 0)
    issued = await work_order_parts.issue_parts(runtime.uow, TECH, "o-s", [])
    assert issued.lines[0].issued == asked


@pytest.mark.service("inventory")
async def test_bad_requests_name_the_field_and_scope_hides_other_orders(runtime: Runtime) -> None:
    uow = runtime.uow
    cases = [
        (one(part="NO-SUCH"), "lines[0].part_id"),
        (one(quantity=0), "lines[0].quantity"),
        ([PartRequest("", PART, 1, False)], "lines[0].line_id"),
        ([], "lines"),
        (one() + one(), "lines"),
    ]
    for lines, field in cases:
        with pytest.raises(InvalidInput) as caught:
            await work_order_parts.reserve_parts(uow, TECH, "o-x", WAREHOUSE, lines)
        assert caught.value.errors[0].field == field
    with pytest.raises(NotFound):
        await work_order_parts.reserve_parts(uow, TECH, "o-x", "WH-SH-001", one())
    with pytest.raises(NotFound):
        await work_order_parts.reserve_parts(uow, TECH, "o-x", "WH-NOWHERE", one())

    await work_order_parts.reserve_parts(uow, TECH, "o-3", WAREHOUSE, one())
    for call in (
        work_order_parts.get_order_parts(uow, OTHER_STORE, "o-3"),
        work_order_parts.issue_parts(uow, OTHER_STORE, "o-3", []),
        work_order_parts.get_order_parts(uow, TECH, "o-unknown"),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(InvalidInput) as caught:
        await work_order_parts.issue_parts(uow, TECH, "o-3", ["l-9"])
    assert caught.value.errors[0].field == "line_ids[0]"
    with pytest.raises(Forbidden):
        await work_order_parts.get_order_parts(uow, AuthContext("u-a", "hq_analyst"), "o-3")
    assert (await work_order_parts.get_order_parts(uow, HQ_ADMIN, "o-3")).warehouse_id == WAREHOUSE


@pytest.mark.service("inventory")
async def test_two_replicas_racing_for_the_last_unit_give_it_to_one(
    runtime: Runtime, db_target: DatabaseTarget, nats_server: NatsServer
) -> None:
    """Two processes of the service (two runtimes, two connection pools) reserve the last unit
    at once: the database decides, so one holds it and the other is told it is short. Then
    both issue the held line at once: it leaves the warehouse once."""
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    replica = await open_runtime(SPEC, settings)
    try:
        start = await level(runtime)
        if start.available > 1:
            await work_order_parts.reserve_parts(
                runtime.uow, TECH, "o-fill", WAREHOUSE, one(quantity=start.available - 1)
            )
        assert (await level(runtime)).available == 1

        first, second = await asyncio.gather(
            work_order_parts.reserve_parts(runtime.uow, TECH, "o-a", WAREHOUSE, one()),
            work_order_parts.reserve_parts(replica.uow, TECH, "o-b", WAREHOUSE, one()),
        )
        outcomes = sorted((x.lines[0].reserved, x.lines[0].short) for x in (first, second))
        assert outcomes == [(0, 1), (1, 0)]
        after = await level(runtime)
        assert (after.available, after.reserved) == (0, after.on_hand)

        winner = first if first.lines[0].reserved else second
        await asyncio.gather(
            work_order_parts.issue_parts(runtime.uow, TECH, winner.order_id, []),
            work_order_parts.issue_parts(replica.uow, TECH, winner.order_id, []),
        )
        assert await ledger_rows(runtime, winner.order_id) == [
            ("issue", -1, start.average_cost_fen)
        ]
        assert (await level(runtime)).on_hand == start.on_hand - 1
        async with runtime.db.session() as session:
            negative = await session.scalar(
                select(func.count())
                .select_from(stock_movements)
                .where(stock_movements.c.quantity == 0)
            )
        assert negative == 0
        report = await conservation.check_conservation(runtime.uow, HQ_ADMIN, "")
        assert report and all(p.balanced for p in report)
    finally:
        await close_runtime(replica)


@pytest.mark.service("inventory")
async def test_the_conservation_command_reports_and_fails_on_an_unbalanced_part(
    runtime: Runtime, db_target: DatabaseTarget
) -> None:
    env = {**os.environ, "DATABASE_URL": db_target.url, "DB_SCHEMA": db_target.schema or ""}
    command = [sys.executable, "-m", "services.inventory", "conservation", PART]

    async def run() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode()

    code, out = await run()
    assert code == 0, out
    assert f"{PART}\t" in out and "\tok" in out and "1 parts, 0 unbalanced" in out

    # A unit moved between two balances behind the ledger's back: the totals still agree, but
    # each warehouse's ledger no longer explains its balance.
    async with runtime.db.session() as session:
        for warehouse_id, change in ((WAREHOUSE, 1), ("WH-SH", -1)):
            await session.execute(
                stock_levels.update()
                .where(
                    stock_levels.c.warehouse_id == warehouse_id,
                    stock_levels.c.part_number == PART,
                )
                .values(on_hand=stock_levels.c.on_hand + change)
            )
        await session.commit()
    code, out = await run()
    assert code == 1 and "UNBALANCED WH-SH WH-SH-002" in out, out


@pytest.mark.service("inventory")
async def test_scrap_and_returns_to_the_manufacturer_leave_the_chain(runtime: Runtime) -> None:
    start = await level(runtime)
    uow = runtime.uow
    [(_, scrapped)] = await documents.record_write_off(
        uow, KEEPER, WAREHOUSE, PART, 1, "scrap", "屏幕破损", ""
    )
    assert (scrapped.kind, scrapped.quantity, scrapped.unit_cost_fen) == (
        "scrap",
        -1,
        start.average_cost_fen,
    )
    assert scrapped.document_id.startswith("SCR-")
    await documents.record_write_off(
        uow, KEEPER, WAREHOUSE, PART, 1, "return_to_manufacturer", "批次召回", "RMA-9"
    )
    assert (await level(runtime)).on_hand == start.on_hand - 2
    [check] = await conservation.check_conservation(uow, HQ_ADMIN, PART)
    assert (check.scrapped, check.returned_to_manufacturer, check.balanced) == (1, 1, True)

    with pytest.raises(Conflict):
        await documents.record_write_off(
            uow, KEEPER, WAREHOUSE, PART, start.on_hand, "scrap", "all of it", ""
        )
    with pytest.raises(InvalidInput) as caught:
        await documents.record_write_off(uow, KEEPER, WAREHOUSE, PART, 1, "issue", "x", "")
    assert caught.value.errors[0].field == "kind"
    with pytest.raises(Forbidden):
        await documents.record_write_off(uow, TECH, WAREHOUSE, PART, 1, "scrap", "x", "")


@pytest.mark.service("inventory")
async def test_slow_moving_stock_is_what_nothing_took_out(runtime: Runtime) -> None:
    uow = runtime.uow
    before = await slow_moving.list_slow_moving(uow, TECH, 30, "")
    assert {x.warehouse_id for x in before} == {WAREHOUSE}
    assert (WAREHOUSE, PART) in {(x.warehouse_id, x.part_number) for x in before}
    assert [x.value_fen for x in before] == sorted((x.value_fen for x in before), reverse=True)
    assert all(x.last_outbound_at is None for x in before)

    await work_order_parts.reserve_parts(uow, TECH, "o-slow", WAREHOUSE, one())
    await work_order_parts.issue_parts(uow, TECH, "o-slow", [])
    after = await slow_moving.list_slow_moving(uow, TECH, 30, WAREHOUSE)
    assert PART not in {x.part_number for x in after}
    assert len(after) == len(before) - 1

    chain = await slow_moving.list_slow_moving(uow, HQ_ADMIN, 30, "")
    assert {"WH-SH", "WH-ZJ", "WH-ZJ-002"} <= {x.warehouse_id for x in chain}
    with pytest.raises(InvalidInput):
        await slow_moving.list_slow_moving(uow, TECH, 0, "")
    with pytest.raises(NotFound):
        await slow_moving.list_slow_moving(uow, TECH, 30, "WH-SH-001")
