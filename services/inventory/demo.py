"""Demo data for inventory: the parts catalog, a warehouse per store and a central one per
branch, opening stock, and a quota for each franchised store. Idempotent: once the catalog
exists, nothing is added.

Opening stock is booked as ledger receipts through `handlers.common.post_movements`, the
path every real receipt takes, so on-hand equals the ledger from the first row. Quantities
come from a checksum of (warehouse, part): the same on every run and machine, no randomness.

So that every route can be walked in the demo: a superseded part (替代料) is left to the branch
centrals only, its stores short of it and offered its successor; and serialised units named in
the data (`serialised_stock`: the swap units of a store, their IMEIs as serials) are received
one by one.
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import select

from servicekit.demo import demo_data
from servicekit.runtime import Runtime
from servicekit.timeutil import utc_now
from services.inventory.adapters.orm import parts
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import quotas as quotas_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain.catalog import Part
from services.inventory.domain.stock import Posting
from services.inventory.domain.warehouse import (
    Warehouse,
    central_warehouse_id,
    store_warehouse_id,
)
from services.inventory.handlers import common

OPENING_DOCUMENT = "demo:opening-stock"
DEMO_USER = "system:demo"
STORE_OPENING = (2, 6)
CENTRAL_OPENING = (10, 20)


def demo_parts(data: dict[str, Any]) -> list[Part]:
    return [
        Part(
            part_number=p["part_number"],
            brand=p["brand"],
            description=p["description"],
            category=p["category"],
            serialised=p["serialised"],
            standard_cost_fen=p["standard_cost_fen"],
            retail_price_fen=p["retail_price_fen"],
            compatible_models=tuple(p["compatible_models"]),
            superseded_by=p.get("superseded_by"),
        )
        for p in data["parts"]
    ]


def demo_warehouses(data: dict[str, Any]) -> list[Warehouse]:
    org = data["org"]
    centrals = [
        Warehouse(
            central_warehouse_id(b["id"]), f"{b['name']} 中心库", "branch_central", b["id"], None
        )
        for b in org["branches"]
    ]
    stores = [
        Warehouse(
            store_warehouse_id(s["id"]),
            f"{s['name']} 库房",
            "store",
            s["branch_id"],
            s["id"],
            s["franchised"],
        )
        for s in org["stores"]
    ]
    return centrals + stores


def opening_quantity(warehouse_id: str, part_number: str, low: int, high: int) -> int:
    """A quantity in [low, high] that only depends on the names (crc32, unlike hash(), is not
    salted per process)."""
    return low + zlib.crc32(f"{warehouse_id}/{part_number}".encode()) % (high - low + 1)


def opening_stock(data: dict[str, Any]) -> list[common.MovementLine]:
    """Receipts at standard cost: each store holds 2..6 of every current non-serialised part
    of the brands it is authorised for (none of a superseded one), each branch central 10..20
    of every non-serialised part."""
    stocked = [p for p in demo_parts(data) if not p.serialised]
    authorised = {store: set(brands) for store, brands in data["store_authorisations"].items()}
    lines = []
    for warehouse in demo_warehouses(data):
        if warehouse.store_id is None:
            low, high = CENTRAL_OPENING
            chosen = stocked
        else:
            low, high = STORE_OPENING
            brands = authorised.get(warehouse.store_id, set())
            chosen = [p for p in stocked if p.brand in brands and not p.superseded_by]
        lines += [
            common.MovementLine(
                warehouse_id=warehouse.id,
                part_number=p.part_number,
                kind="receipt",
                quantity=opening_quantity(warehouse.id, p.part_number, low, high),
                unit_cost_fen=p.standard_cost_fen,
            )
            for p in chosen
        ]
    return lines


def serialised_stock(data: dict[str, Any]) -> list[common.MovementLine]:
    """Receipts at standard cost of the serialised units the data names, one serial each."""
    cost = {p.part_number: p.standard_cost_fen for p in demo_parts(data)}
    return [
        common.MovementLine(
            warehouse_id=x["warehouse_id"],
            part_number=x["part_number"],
            kind="receipt",
            quantity=len(x["serials"]),
            unit_cost_fen=cost[x["part_number"]],
            serials=tuple(x["serials"]),
        )
        for x in data.get("serialised_stock", [])
    ]


def demo_quota(held_fen: int) -> int:
    """A franchised store's opening quota: a fifth above what it holds, rounded up to the
    thousand yuan, so it can take some more stock and not much."""
    step = 100_000
    return -(-held_fen * 6 // 5 // step) * step


async def seed(runtime: Runtime) -> None:
    data = demo_data()
    async with runtime.uow() as uow:
        session = uow.session
        if await session.scalar(select(parts.c.part_number).limit(1)) is not None:
            return
        await catalog_db.add_parts(session, demo_parts(data))
        await warehouses_db.add_warehouses(session, demo_warehouses(data))
        posting = Posting("receipt", OPENING_DOCUMENT, utc_now(), DEMO_USER)
        await common.post_movements(uow, opening_stock(data) + serialised_stock(data), posting)
        for warehouse in demo_warehouses(data):
            if warehouse.franchised:
                held = await quotas_db.held_value(session, warehouse.id)
                await quotas_db.set_quota(
                    session, warehouse.id, demo_quota(held), DEMO_USER, posting.occurred_at
                )
        await uow.commit()
