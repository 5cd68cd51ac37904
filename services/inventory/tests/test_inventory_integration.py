"""Inventory against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL) seeded with
the demo data: the ledger explains every stock level, scoping per role, paging the catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from servicekit.auth import AuthContext
from servicekit.demo import demo_data
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from servicekit.timeutil import utc_now
from services.inventory import demo
from services.inventory.adapters.orm import parts, stock_levels, stock_movements, warehouses
from services.inventory.domain.stock import Posting
from services.inventory.handlers import catalog, common, stock
from services.inventory.handlers.common import MovementLine
from services.inventory.service import SPEC

HQ = AuthContext("u-hq", "hq_analyst")
SH_MANAGER = AuthContext("u-shm", "branch_manager", "SH")
SH001_KEEPER = AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001")
ZJ002_CLERK = AuthContext("u-c4", "clerk", "ZJ", "ZJ-002")


def posting(document_id: str) -> Posting:
    return Posting("receipt", document_id, utc_now(), "u-k1")


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def ledger_and_levels(runtime: Runtime) -> tuple[dict[tuple[str, str], int], ...]:
    async with runtime.db.session() as session:
        m = stock_movements.c
        ledger = await session.execute(
            select(m.warehouse_id, m.part_number, func.sum(m.quantity)).group_by(
                m.warehouse_id, m.part_number
            )
        )
        levels = await session.execute(
            select(stock_levels.c.warehouse_id, stock_levels.c.part_number, stock_levels.c.on_hand)
        )
        return (
            {(w, p): int(q) for w, p, q in ledger},
            {(w, p): q for w, p, q in levels if q},
        )


@pytest.mark.service("inventory")
async def test_demo_on_hand_equals_the_ledger_everywhere(runtime: Runtime) -> None:
    ledger, on_hand = await ledger_and_levels(runtime)
    assert ledger == on_hand
    opening = demo.opening_stock(demo_data()) + demo.serialised_stock(demo_data())
    expected = {(x.warehouse_id, x.part_number): x.quantity for x in opening}
    assert on_hand == expected
    async with runtime.db.session() as session:
        kinds = await session.scalars(select(stock_movements.c.kind).distinct())
        assert set(kinds) == {"receipt"}


@pytest.mark.service("inventory")
async def test_demo_seeding_is_idempotent(runtime: Runtime) -> None:
    async def counts() -> list[int | None]:
        async with runtime.db.session() as session:
            return [
                await session.scalar(select(func.count()).select_from(table))
                for table in (parts, warehouses, stock_levels, stock_movements)
            ]

    before = await counts()
    await demo.seed(runtime)
    assert await counts() == before
    assert before[:2] == [len(demo_data()["parts"]), 6]


@pytest.mark.service("inventory")
async def test_receipts_move_the_average_and_issues_stop_at_zero(runtime: Runtime) -> None:
    part, where = "HW-BAT-P60", "WH-SH-001"
    _, start = await stock.get_stock(runtime.uow, HQ, where, part)
    before = start[0].level
    async with runtime.uow() as uow:
        await common.post_movements(
            uow,
            [
                MovementLine(where, part, "receipt", 2, 12000),
                MovementLine(where, part, "issue", -1),
            ],
            posting("GRN-test"),
        )
        await uow.commit()
    _, rows = await stock.get_stock(runtime.uow, HQ, where, part)
    level = rows[0].level
    total = before.on_hand * before.average_cost_fen + 2 * 12000
    assert level.average_cost_fen == total // (before.on_hand + 2)
    assert level.on_hand == before.on_hand + 1

    # Taking one more than there is fails the whole document and changes nothing.
    async with runtime.uow() as uow:
        with pytest.raises(Conflict) as caught:
            await common.post_movements(
                uow,
                [
                    MovementLine(where, "HW-SCR-P60", "receipt", 1, 100),
                    MovementLine(where, part, "issue", -(level.on_hand + 1)),
                ],
                posting("ISS-test"),
            )
    assert part in caught.value.message
    ledger, on_hand = await ledger_and_levels(runtime)
    assert ledger == on_hand
    assert on_hand[(where, part)] == level.on_hand


@pytest.mark.service("inventory")
async def test_unknown_and_serialised_parts_are_refused(runtime: Runtime) -> None:
    cases = [
        (MovementLine("WH-SH-001", "NO-SUCH-PART", "receipt", 1, 1), NotFound),
        (MovementLine("WH-XX-999", "HW-BAT-P60", "receipt", 1, 1), NotFound),
        (MovementLine("WH-SH-001", "HW-MAI-MATE60PRO", "receipt", 1, 1), InvalidInput),
    ]
    for line, error in cases:
        async with runtime.uow() as uow:
            with pytest.raises(error):
                await common.post_movements(uow, [line], posting("ref"))


@pytest.mark.service("inventory")
async def test_the_database_refuses_negative_stock(runtime: Runtime) -> None:
    # The CHECK constraint is the last line of defence should a bug bypass the domain rule.
    async with runtime.uow() as uow:
        with pytest.raises(IntegrityError):
            await uow.session.execute(
                stock_levels.update()
                .where(stock_levels.c.warehouse_id == "WH-SH-001")
                .values(on_hand=-1)
            )


@pytest.mark.service("inventory")
async def test_warehouses_are_scoped_to_the_caller(runtime: Runtime) -> None:
    async def ids(auth: AuthContext) -> list[str]:
        return [w.id for w in await stock.list_warehouses(runtime.uow, auth)]

    assert await ids(HQ) == ["WH-SH", "WH-SH-001", "WH-SH-002", "WH-ZJ", "WH-ZJ-001", "WH-ZJ-002"]
    assert await ids(SH_MANAGER) == ["WH-SH", "WH-SH-001", "WH-SH-002"]
    assert await ids(SH001_KEEPER) == ["WH-SH-001"]
    assert await ids(ZJ002_CLERK) == ["WH-ZJ-002"]


@pytest.mark.service("inventory")
async def test_stock_is_readable_only_within_scope(runtime: Runtime) -> None:
    allowed = {
        HQ: ["WH-SH", "WH-SH-001", "WH-ZJ-002"],
        SH_MANAGER: ["WH-SH", "WH-SH-002"],
        SH001_KEEPER: ["WH-SH-001"],
    }
    refused = {
        SH_MANAGER: ["WH-ZJ", "WH-ZJ-001"],
        SH001_KEEPER: ["WH-SH", "WH-SH-002", "WH-ZJ-002"],
        ZJ002_CLERK: ["WH-ZJ", "WH-ZJ-001", "WH-SH-001"],
        HQ: ["WH-NOWHERE"],
    }
    for auth, ids in allowed.items():
        for warehouse_id in ids:
            warehouse, rows = await stock.get_stock(runtime.uow, auth, warehouse_id, "")
            assert warehouse.id == warehouse_id
            assert rows and all(r.level.available == r.level.on_hand for r in rows)
    for auth, ids in refused.items():
        for warehouse_id in ids:
            with pytest.raises(NotFound):
                await stock.get_stock(runtime.uow, auth, warehouse_id, "")


@pytest.mark.service("inventory")
async def test_stock_of_one_part(runtime: Runtime) -> None:
    # SH-001 is not authorised for Samsung: a known part never stocked there reads as zero.
    _, rows = await stock.get_stock(runtime.uow, SH001_KEEPER, "WH-SH-001", "SS-BAT-GALAXYS24")
    assert [(r.level.part_number, r.level.on_hand) for r in rows] == [("SS-BAT-GALAXYS24", 0)]
    assert rows[0].description
    _, rows = await stock.get_stock(runtime.uow, SH001_KEEPER, "WH-SH-001", "HW-BAT-P60")
    level = rows[0].level
    assert 2 <= level.on_hand <= 6
    assert level.average_cost_fen == next(
        p["standard_cost_fen"] for p in demo_data()["parts"] if p["part_number"] == "HW-BAT-P60"
    )
    with pytest.raises(NotFound):
        await stock.get_stock(runtime.uow, SH001_KEEPER, "WH-SH-001", "NO-SUCH-PART")


@pytest.mark.service("inventory")
async def test_paging_visits_every_part_once(runtime: Runtime) -> None:
    where = catalog.part_filter("", "", "")
    seen: list[str] = []
    token = ""
    while True:
        page, token = await catalog.list_parts(runtime.uow, where, 7, token)
        assert len(page) <= 7
        seen += [p.part_number for p in page]
        if not token:
            break
    everything = sorted(p["part_number"] for p in demo_data()["parts"])
    assert seen == everything

    first, token = await catalog.list_parts(runtime.uow, where, 0, "")
    assert len(first) == common.DEFAULT_PAGE_SIZE and token
    everything_at_once, token = await catalog.list_parts(runtime.uow, where, 10_000, "")
    assert len(everything_at_once) == len(everything) and token == ""


@pytest.mark.service("inventory")
async def test_parts_filters(runtime: Runtime) -> None:
    screens, _ = await catalog.list_parts(
        runtime.uow, catalog.part_filter("huawei", "screen", ""), 200, ""
    )
    assert screens and all(p.brand == "huawei" and p.category == "screen" for p in screens)
    for_p60, _ = await catalog.list_parts(runtime.uow, catalog.part_filter("", "", "p60"), 200, "")
    assert {p.category for p in for_p60} >= {"screen", "battery"}
    assert all(p.compatible_models == ("p60",) for p in for_p60)
    with pytest.raises(InvalidInput) as caught:
        catalog.part_filter("", "toaster", "")
    assert [e.field for e in caught.value.errors] == ["category"]
    with pytest.raises(InvalidInput) as caught:
        await catalog.list_parts(runtime.uow, catalog.part_filter("", "", ""), 10, "bogus")
    assert [e.field for e in caught.value.errors] == ["cursor"]
