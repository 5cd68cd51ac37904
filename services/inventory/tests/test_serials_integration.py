"""Serialised items (串号) and superseded parts (替代料) against a real database (SQLite, or
PostgreSQL with TEST_DATABASE_URL): every serial movement is a ledger row of one unit and
moves the balance with it, a serial is in one place (the database refuses two), two replicas
issuing the same serial give it to one order, and the conservation check counts serials."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, DomainError, InvalidInput
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.adapters.orm import serial_items, stock_movements
from services.inventory.domain.catalog import Part
from services.inventory.domain.stock import StockLevel
from services.inventory.handlers import (
    catalog,
    conservation,
    documents,
    serial_trace,
    stock,
    stocktakes,
    transfers,
    work_order_parts,
)
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

WAREHOUSE, PART = "WH-SH-002", "OP-MAI-FINDX7"  # a mainboard: serialised
CENTRAL = "WH-SH"
TECH = AuthContext("u-t2", "technician", "SH", "SH-002")
KEEPER = AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002")
MANAGER = AuthContext("u-m", "branch_manager", "SH")
HQ_ADMIN = AuthContext("u-hq", "hq_admin")


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


def new_serials(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8].upper()
    return [f"SN{tag}{i}" for i in range(n)]


async def level(runtime: Runtime, warehouse: str = WAREHOUSE, part: str = PART) -> StockLevel:
    _, rows = await stock.get_stock(runtime.uow, HQ_ADMIN, warehouse, part)
    return rows[0].level


async def receive(runtime: Runtime, serials: list[str], warehouse: str = WAREHOUSE) -> None:
    auth = KEEPER if warehouse == WAREHOUSE else MANAGER
    await documents.record_receipt(
        runtime.uow, auth, warehouse, PART, len(serials), 110_000, "GRN-S", serials
    )


async def where(runtime: Runtime, serial: str) -> tuple[str, str | None]:
    trace = await serial_trace.get_serial(runtime.uow, HQ_ADMIN, serial)
    return trace.item.state, trace.item.warehouse_id


async def balanced(runtime: Runtime) -> bool:
    report = await conservation.check_conservation(runtime.uow, HQ_ADMIN, PART)
    return bool(report) and all(p.balanced for p in report)


@pytest.mark.service("inventory")
async def test_a_receipt_of_serials_books_a_row_each_and_refuses_one_already_in_stock(
    runtime: Runtime,
) -> None:
    start = await level(runtime)
    serials = new_serials(3)
    booked = await documents.record_receipt(
        runtime.uow, KEEPER, WAREHOUSE, PART, 3, 110_000, "GRN-1", serials
    )
    assert [(m.serial_number, m.quantity, m.kind) for _, m in booked] == [
        (s, 1, "receipt") for s in serials
    ]
    assert (await level(runtime)).on_hand == start.on_hand + 3
    listed = await serial_trace.list_serials(runtime.uow, KEEPER, WAREHOUSE, PART)
    assert set(serials) <= {x.serial_number for x in listed}
    assert await where(runtime, serials[0]) == ("in_stock", WAREHOUSE)

    with pytest.raises(Conflict, match=f"{serials[1]} is in stock in {WAREHOUSE}"):
        await documents.record_receipt(
            runtime.uow, MANAGER, CENTRAL, PART, 1, 110_000, "", [serials[1]]
        )
    with pytest.raises(InvalidInput) as error:
        await documents.record_receipt(runtime.uow, KEEPER, WAREHOUSE, PART, 2, 1, "", ["X1"])
    assert error.value.errors[0].field == "serials"
    with pytest.raises(InvalidInput) as error:
        await documents.record_receipt(
            runtime.uow, KEEPER, WAREHOUSE, PART, 3, 1, "", ["X1", "X2", "X1"]
        )
    assert error.value.errors[0].field == "serials[2]"
    with pytest.raises(InvalidInput, match="is serialised"):
        await documents.record_receipt(runtime.uow, KEEPER, WAREHOUSE, PART, 1, 1, "", [])
    with pytest.raises(InvalidInput, match="is not serialised"):
        await documents.record_receipt(
            runtime.uow, KEEPER, WAREHOUSE, "OP-SCR-FINDX7", 1, 1, "", ["X9"]
        )
    # A write-off names a free serial of the warehouse; the serial is then gone.
    await documents.record_write_off(
        runtime.uow, KEEPER, WAREHOUSE, PART, 1, "return_to_manufacturer", "坏板", "", [serials[2]]
    )
    assert await where(runtime, serials[2]) == ("returned_to_manufacturer", None)
    with pytest.raises(Conflict):
        await documents.record_write_off(
            runtime.uow, KEEPER, WAREHOUSE, PART, 1, "scrap", "x", "", [serials[2]]
        )
    trace = await serial_trace.get_serial(runtime.uow, KEEPER, serials[2])
    assert [m.movement.kind for m in trace.history] == ["receipt", "return_to_manufacturer"]
    assert await balanced(runtime)


@pytest.mark.service("inventory")
async def test_an_order_line_holds_issues_returns_and_releases_serials(runtime: Runtime) -> None:
    serials = new_serials(3)
    await receive(runtime, serials)
    start = await level(runtime)

    # Any free serial, or a named one.
    anyone = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-s1", WAREHOUSE, [PartRequest("l-1", PART, 1, True)]
    )
    [held] = anyone.serials["l-1"]
    named = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-s2", WAREHOUSE, [PartRequest("l-1", PART, 1, False, (serials[2],))]
    )
    assert named.serials["l-1"] == (serials[2],) and held != serials[2]
    assert (await level(runtime)).reserved == start.reserved + 2
    # A serial held by another line is not to be had.
    with pytest.raises(Conflict, match="held for order o-s2"):
        await work_order_parts.reserve_parts(
            runtime.uow,
            TECH,
            "o-s3",
            WAREHOUSE,
            [PartRequest("l-1", PART, 1, False, (serials[2],))],
        )
    # Asked again, the line is as it was.
    again = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-s1", WAREHOUSE, [PartRequest("l-1", PART, 1, True)]
    )
    assert again.serials == anyone.serials

    issued = await work_order_parts.issue_parts(runtime.uow, TECH, "o-s1", [])
    assert issued.lines[0].status == "issued" and issued.serials["l-1"] == (held,)
    trace = await serial_trace.get_serial(runtime.uow, TECH, held)
    assert (trace.item.state, trace.item.order_id, trace.item.line_id) == (
        "consumed",
        "o-s1",
        "l-1",
    )
    assert [(m.movement.kind, m.movement.quantity) for m in trace.history][-1] == ("issue", -1)

    back = await work_order_parts.return_parts(runtime.uow, TECH, "o-s1", "l-1", 1, [held])
    assert back.lines[0].status == "returned" and back.serials == {}
    assert await where(runtime, held) == ("in_stock", WAREHOUSE)

    released = await work_order_parts.release_parts(runtime.uow, TECH, "o-s2", [])
    assert released.lines[0].status == "released" and released.serials == {}
    free = {
        x.serial_number
        for x in await serial_trace.list_serials(runtime.uow, KEEPER, WAREHOUSE, PART)
        if not x.held
    }
    assert set(serials) <= free
    assert await level(runtime) == start
    assert await balanced(runtime)


@pytest.mark.service("inventory")
async def test_two_replicas_issuing_the_same_serial_give_it_to_one_order(
    runtime: Runtime, db_target: DatabaseTarget, nats_server: NatsServer
) -> None:
    """Two processes each reserve and issue the same named serial for their own order at
    once: one order consumes it, the other is told where it is; the ledger has one issue."""
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    replica = await open_runtime(SPEC, settings)
    try:
        [serial] = new_serials(1)
        await receive(runtime, [serial])
        start = await level(runtime)

        async def take(r: Runtime, order_id: str) -> str:
            try:
                await work_order_parts.reserve_parts(
                    r.uow,
                    TECH,
                    order_id,
                    WAREHOUSE,
                    [PartRequest("l-1", PART, 1, False, (serial,))],
                )
                await work_order_parts.issue_parts(r.uow, TECH, order_id, [])
            except Conflict:
                return "refused"
            return "issued"

        outcomes = await asyncio.gather(take(runtime, "o-race-a"), take(replica, "o-race-b"))
        assert sorted(outcomes) == ["issued", "refused"]
        winner = "o-race-a" if outcomes[0] == "issued" else "o-race-b"
        trace = await serial_trace.get_serial(runtime.uow, HQ_ADMIN, serial)
        assert (trace.item.state, trace.item.order_id) == ("consumed", winner)
        assert [m.movement.kind for m in trace.history] == ["receipt", "issue"]
        assert (await level(runtime)).on_hand == start.on_hand - 1
        assert await balanced(runtime)
    finally:
        await close_runtime(replica)


@pytest.mark.service("inventory")
async def test_a_transfer_moves_named_serials_and_writes_off_the_short_one(
    runtime: Runtime,
) -> None:
    serials = new_serials(3)
    await receive(runtime, serials, CENTRAL)
    with pytest.raises(InvalidInput) as error:
        await transfers.request_transfer(
            runtime.uow, KEEPER, CENTRAL, WAREHOUSE, [(PART, 2)], "", {}
        )
    assert error.value.errors[0].field == "lines[0].serials"
    with pytest.raises(Conflict, match=f"not free in {WAREHOUSE}"):
        await transfers.request_transfer(
            runtime.uow, KEEPER, WAREHOUSE, CENTRAL, [(PART, 1)], "", {PART: [serials[0]]}
        )
    doc = await transfers.request_transfer(
        runtime.uow, KEEPER, CENTRAL, WAREHOUSE, [(PART, 3)], "", {PART: serials}
    )
    assert doc.lines[0].serials == tuple(serials)
    await transfers.approve_transfer(runtime.uow, MANAGER, doc.id)
    shipped = await transfers.ship_transfer(runtime.uow, MANAGER, doc.id)
    assert shipped.status == "shipped"
    trace = await serial_trace.get_serial(runtime.uow, HQ_ADMIN, serials[0])
    assert (trace.item.state, trace.item.transfer_id) == ("in_transit", doc.id)
    assert await balanced(runtime)

    with pytest.raises(InvalidInput) as error:
        await transfers.receive_transfer(
            runtime.uow, KEEPER, doc.id, {PART: (0, 0)}, {PART: (("ELSEWHERE",), ())}
        )
    assert error.value.errors[0].field == "discrepancies[0].short_serials[0]"
    with pytest.raises(InvalidInput, match="name the serials"):
        await transfers.receive_transfer(runtime.uow, KEEPER, doc.id, {PART: (1, 0)})
    received = await transfers.receive_transfer(
        runtime.uow, KEEPER, doc.id, {}, {PART: ((serials[1],), ())}
    )
    [line] = received.lines
    assert (line.received, line.short, line.short_serials) == (2, 1, (serials[1],))
    assert await where(runtime, serials[0]) == ("in_stock", WAREHOUSE)
    assert await where(runtime, serials[1]) == ("missing", None)
    got = await transfers.get_transfer(runtime.uow, KEEPER, doc.id)
    assert got.lines[0].short_serials == (serials[1],)
    assert await balanced(runtime)

    # Found after all: an adjustment brings it back.
    await documents.record_adjustment(
        runtime.uow, MANAGER, WAREHOUSE, PART, 1, "找到了", "", [serials[1]]
    )
    assert await where(runtime, serials[1]) == ("in_stock", WAREHOUSE)
    assert await balanced(runtime)


@pytest.mark.service("inventory")
async def test_a_stocktake_by_serial_books_the_missing_and_the_found(runtime: Runtime) -> None:
    serials = new_serials(2)
    await receive(runtime, serials)
    book = [
        x.serial_number
        for x in await serial_trace.list_serials(runtime.uow, KEEPER, WAREHOUSE, PART)
    ]
    [stray] = new_serials(1)
    seen = [s for s in book if s != serials[0]] + [stray]
    with pytest.raises(InvalidInput) as error:
        await stocktakes.record_stocktake(runtime.uow, MANAGER, WAREHOUSE, [(PART, len(seen))])
    assert error.value.errors[0].field == "lines[0].serials"
    doc = await stocktakes.record_stocktake(
        runtime.uow, MANAGER, WAREHOUSE, [(PART, len(seen))], {PART: seen}
    )
    [line] = doc.lines
    assert (line.missing_serials, line.found_serials, line.difference) == (
        (serials[0],),
        (stray,),
        0,
    )
    assert doc.status == "pending_approval"  # two mainboards changed hands: over the threshold
    await stocktakes.decide_stocktake(runtime.uow, MANAGER, doc.id, True)
    assert await where(runtime, serials[0]) == ("missing", None)
    assert await where(runtime, stray) == ("in_stock", WAREHOUSE)
    again = await stocktakes.get_stocktake(runtime.uow, MANAGER, doc.id)
    assert again.lines[0].found_serials == (stray,)
    assert await balanced(runtime)


@pytest.mark.service("inventory")
async def test_the_database_keeps_a_serial_in_one_place_and_the_check_sees_a_stray(
    runtime: Runtime,
) -> None:
    [serial] = new_serials(1)
    await receive(runtime, [serial])
    # In stock and in transit at once, or in no warehouse while in stock: refused.
    for values in ({"transfer_id": "TR-NONE"}, {"warehouse_id": None}, {"state": "consumed"}):
        async with runtime.db.session() as session:
            with pytest.raises(IntegrityError):
                await session.execute(
                    update(serial_items)
                    .where(serial_items.c.serial_number == serial)
                    .values(**values)
                )
            await session.rollback()
    # A serial moved behind the ledger's back: the check names where.
    async with runtime.db.session() as session:
        await session.execute(
            update(serial_items)
            .where(serial_items.c.serial_number == serial)
            .values(warehouse_id="WH-SH-001")
        )
        await session.commit()
    [part] = await conservation.check_conservation(runtime.uow, HQ_ADMIN, PART)
    assert not part.balanced and WAREHOUSE in part.serials_off
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(stock_movements.c.serial_number).where(stock_movements.c.serial_number == serial)
        )
        assert list(rows) == [serial]


@pytest.mark.service("inventory")
async def test_a_short_superseded_part_is_offered_its_successor_and_the_line_takes_it(
    runtime: Runtime,
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    a, b, c = (f"T-{tag}-{x}" for x in "ABC")

    def part(number: str, successor: str | None) -> Part:
        return Part(
            number, "oppo", f"屏幕 {number}", "screen", False, 30_000, 60_000, (), successor
        )

    for number, successor in ((c, None), (b, c), (a, b)):
        await catalog.put_part(runtime.uow, HQ_ADMIN, part(number, successor))
    # A loop is refused at catalog upkeep.
    with pytest.raises(Conflict, match="supersede itself"):
        await catalog.put_part(runtime.uow, HQ_ADMIN, part(c, a))
    found, chain = await catalog.get_part(runtime.uow, a)
    assert found.superseded_by == b and chain == (b, c)
    assert (await catalog.successor_chains(runtime.uow))[b] == (c,)
    await documents.record_receipt(runtime.uow, KEEPER, WAREHOUSE, c, 2, 30_000, "")

    short = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-sup", WAREHOUSE, [PartRequest("l-1", a, 1, False)]
    )
    assert short.lines[0].status == "short"
    assert short.offers["l-1"] == work_order_parts.SuccessorOffer(c, 2)
    taken = await work_order_parts.reserve_parts(
        runtime.uow, TECH, "o-sup", WAREHOUSE, [PartRequest("l-1", c, 1, False)]
    )
    [line] = taken.lines
    assert (line.part_number, line.status, line.reserved) == (c, "reserved", 1)
    assert taken.offers == {}
    assert (await level(runtime, part=c)).reserved == 1
    assert (await level(runtime, part=a)).reserved == 0
    # A part not down the chain is still a conflict.
    with pytest.raises(DomainError):
        await work_order_parts.reserve_parts(
            runtime.uow, TECH, "o-sup", WAREHOUSE, [PartRequest("l-1", a, 1, False)]
        )
