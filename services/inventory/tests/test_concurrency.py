"""Many clients at once on two replicas of the service (two runtimes, two connection pools on
one database): random reservations, issues, returns, releases, receipts, transfers (across
branches too, into the franchised store and its quota), stocktakes and purchase orders on a
few parts. Afterwards the ledger explains every balance, nothing is negative, held stock matches
the open order lines, and no line was issued twice. Refusals (not enough stock, a line changed
meanwhile) are answers; anything else fails the test."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, InvalidInput
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.adapters.orm import order_part_lines, stock_levels, stock_movements
from services.inventory.domain.purchasing import PurchaseLine
from services.inventory.handlers import (
    conservation,
    documents,
    procurement,
    stock,
    stocktakes,
    transfers,
    work_order_parts,
)
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

PARTS = ("OP-SCR-FINDX7", "OP-BAT-FINDX7")
STORES = ("WH-SH-001", "WH-SH-002", "WH-ZJ-002")
HQ_ADMIN = AuthContext("u-hq", "hq_admin")
ACTIONS = (
    "reserve",
    "reserve",
    "issue",
    "return",
    "release",
    "receipt",
    "transfer",
    "stocktake",
    "purchase",
)
CLIENTS, OPERATIONS = 8, 40


@pytest.fixture
async def replicas(
    db_target: DatabaseTarget, nats_server: NatsServer
) -> AsyncIterator[list[Runtime]]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    first = await open_runtime(SPEC, settings)
    second = await open_runtime(SPEC, settings)
    yield [first, second]
    await close_runtime(second)
    await close_runtime(first)


async def client(number: int, replicas: list[Runtime], counts: Counter[str]) -> None:
    rng = random.Random(number)  # the same run every time
    orders: list[str] = []
    for step in range(OPERATIONS):
        uow = rng.choice(replicas).uow
        store, part = rng.choice(STORES), rng.choice(PARTS)
        action = rng.choice(ACTIONS)
        try:
            if action == "reserve" or not orders:
                order_id = f"o-{number}-{step}"
                lines = [PartRequest("l-1", part, rng.randint(1, 3), rng.random() < 0.3)]
                await work_order_parts.reserve_parts(uow, HQ_ADMIN, order_id, store, lines)
                orders.append(order_id)
                action = "reserve"
            elif action == "issue":
                await work_order_parts.issue_parts(uow, HQ_ADMIN, rng.choice(orders), [])
            elif action == "return":
                await work_order_parts.return_parts(uow, HQ_ADMIN, rng.choice(orders), "l-1", 1)
            elif action == "release":
                await work_order_parts.release_parts(uow, HQ_ADMIN, rng.choice(orders), [])
            elif action == "receipt":
                cost = rng.randint(30000, 50000)
                await documents.record_receipt(uow, HQ_ADMIN, store, part, 2, cost, "")
            elif action == "stocktake":
                _, [row] = await stock.get_stock(uow, HQ_ADMIN, store, part)
                counted = max(row.level.on_hand + rng.choice((-1, 0, 1)), 0)
                await stocktakes.record_stocktake(uow, HQ_ADMIN, store, [(part, counted)])
            elif action == "purchase":
                lines = [PurchaseLine(part, 2, rng.randint(30000, 50000))]
                order = await procurement.create_purchase_order(
                    uow, HQ_ADMIN, store, "供应商", lines
                )
                await procurement.receive_purchase_order(uow, HQ_ADMIN, order.id, {})
            else:
                other = rng.choice([x for x in STORES if x != store])
                doc = await transfers.request_transfer(uow, HQ_ADMIN, store, other, [(part, 1)], "")
                await transfers.approve_transfer(uow, HQ_ADMIN, doc.id)
                await transfers.ship_transfer(uow, HQ_ADMIN, doc.id)
                if rng.random() < 0.7:
                    await transfers.receive_transfer(uow, HQ_ADMIN, doc.id, {})
            counts[action] += 1
        except (Conflict, InvalidInput):
            counts[f"{action} refused"] += 1


@pytest.mark.service("inventory")
async def test_concurrent_clients_keep_the_ledger_and_the_balances_true(
    replicas: list[Runtime],
) -> None:
    counts: Counter[str] = Counter()
    await asyncio.gather(*(client(n, replicas, counts) for n in range(CLIENTS)))
    print(dict(sorted(counts.items())))
    assert sum(counts.values()) == CLIENTS * OPERATIONS
    assert counts["reserve"] and counts["issue"] and counts["transfer"] and counts["purchase"]

    report = await conservation.check_conservation(replicas[0].uow, HQ_ADMIN, "")
    assert [p.part_number for p in report if not p.balanced] == []
    async with replicas[0].db.session() as session:
        s, m, o = stock_levels.c, stock_movements.c, order_part_lines.c
        ledger = dict(
            ((w, p), int(q))
            for w, p, q in await session.execute(
                select(m.warehouse_id, m.part_number, func.sum(m.quantity)).group_by(
                    m.warehouse_id, m.part_number
                )
            )
        )
        levels = (
            await session.execute(select(s.warehouse_id, s.part_number, s.on_hand, s.reserved))
        ).all()
        for warehouse_id, part_number, on_hand, reserved in levels:
            assert 0 <= reserved <= on_hand
            assert ledger.get((warehouse_id, part_number), 0) == on_hand
        held = dict(
            ((w, p), int(q))
            for w, p, q in await session.execute(
                select(o.warehouse_id, o.part_number, func.sum(o.reserved)).group_by(
                    o.warehouse_id, o.part_number
                )
            )
        )
        for warehouse_id, part_number, _, reserved in levels:
            assert held.get((warehouse_id, part_number), 0) == reserved
        # Each order line left the warehouse at most once.
        issues = await session.execute(
            select(m.document_id, func.count())
            .where(m.kind == "issue")
            .group_by(m.document_id)
            .having(func.count() > 1)
        )
        assert issues.all() == []
