"""Reading and writing the catalog, warehouses, stock levels and the ledger. SQL lives here;
rules live in domain/."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import Row, bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from services.inventory.adapters.orm import (
    part_models,
    parts,
    stock_levels,
    stock_movements,
    warehouses,
)
from services.inventory.domain.catalog import Part
from services.inventory.domain.stock import Movement, StockLevel
from services.inventory.domain.warehouse import Warehouse

LevelKey = tuple[str, str]  # (warehouse_id, part_number)


@dataclass(frozen=True)
class PartFilter:
    brand: str | None = None
    category: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class StockRow:
    level: StockLevel
    description: str


async def add_parts(session: AsyncConnection, catalog: Collection[Part]) -> None:
    await session.execute(
        parts.insert(),
        [
            {
                "part_number": p.part_number,
                "brand": p.brand,
                "description": p.description,
                "category": p.category,
                "serialised": p.serialised,
                "standard_cost_fen": p.standard_cost_fen,
                "retail_price_fen": p.retail_price_fen,
                "superseded_by": p.superseded_by,
            }
            for p in catalog
        ],
    )
    fits = [
        {"part_number": p.part_number, "model_code": model}
        for p in catalog
        for model in p.compatible_models
    ]
    if fits:
        await session.execute(part_models.insert(), fits)


async def list_parts(
    session: AsyncConnection, where: PartFilter, limit: int, after: str | None
) -> list[Part]:
    """By part number, keyset-paged: the page starts after the part number `after`."""
    c = parts.c
    conditions = []
    if where.brand:
        conditions.append(c.brand == where.brand)
    if where.category:
        conditions.append(c.category == where.category)
    if where.model:
        conditions.append(
            c.part_number.in_(
                select(part_models.c.part_number).where(part_models.c.model_code == where.model)
            )
        )
    if after:
        conditions.append(c.part_number > after)
    rows = (
        await session.execute(select(parts).where(*conditions).order_by(c.part_number).limit(limit))
    ).all()
    fits: dict[str, list[str]] = {}
    if rows:
        fit_rows = await session.execute(
            select(part_models.c.part_number, part_models.c.model_code)
            .where(part_models.c.part_number.in_([r.part_number for r in rows]))
            .order_by(part_models.c.part_number, part_models.c.model_code)
        )
        for part_number, model_code in fit_rows:
            fits.setdefault(part_number, []).append(model_code)
    return [_part_from_row(r, fits.get(r.part_number, [])) for r in rows]


def _part_from_row(row: Row[tuple[object, ...]], models: list[str]) -> Part:
    m = row._mapping
    return Part(
        part_number=m["part_number"],
        brand=m["brand"],
        description=m["description"],
        category=m["category"],
        serialised=m["serialised"],
        standard_cost_fen=m["standard_cost_fen"],
        retail_price_fen=m["retail_price_fen"],
        compatible_models=tuple(models),
        superseded_by=m["superseded_by"],
    )


async def serialised_flags(
    session: AsyncConnection, part_numbers: Iterable[str]
) -> dict[str, bool]:
    """Whether each known part is serialised; unknown part numbers are left out."""
    rows = await session.execute(
        select(parts.c.part_number, parts.c.serialised).where(
            parts.c.part_number.in_(list(part_numbers))
        )
    )
    return {part_number: serialised for part_number, serialised in rows}


async def part_description(session: AsyncConnection, part_number: str) -> str | None:
    found: str | None = await session.scalar(
        select(parts.c.description).where(parts.c.part_number == part_number)
    )
    return found


async def add_warehouses(session: AsyncConnection, new: Collection[Warehouse]) -> None:
    await session.execute(
        warehouses.insert(),
        [
            {
                "id": w.id,
                "name": w.name,
                "kind": w.kind,
                "branch_id": w.branch_id,
                "store_id": w.store_id,
            }
            for w in new
        ],
    )


def _warehouse_from_row(row: Row[tuple[object, ...]]) -> Warehouse:
    m = row._mapping
    return Warehouse(m["id"], m["name"], m["kind"], m["branch_id"], m["store_id"])


async def list_warehouses(
    session: AsyncConnection, branch_id: str | None, store_id: str | None
) -> list[Warehouse]:
    """Warehouses of a branch (its central and its stores') or of one store; all when neither
    is given. Central warehouses come first in each branch."""
    c = warehouses.c
    conditions = []
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if store_id:
        conditions.append(c.store_id == store_id)
    rows = await session.execute(
        select(warehouses).where(*conditions).order_by(c.branch_id, c.kind, c.id)
    )
    return [_warehouse_from_row(row) for row in rows]


async def get_warehouse(session: AsyncConnection, warehouse_id: str) -> Warehouse | None:
    row = (await session.execute(select(warehouses).where(warehouses.c.id == warehouse_id))).first()
    return _warehouse_from_row(row) if row else None


async def existing_warehouses(session: AsyncConnection, ids: Iterable[str]) -> set[str]:
    found = await session.scalars(select(warehouses.c.id).where(warehouses.c.id.in_(list(ids))))
    return set(found)


def _level_from_row(row: Row[tuple[object, ...]]) -> StockLevel:
    m = row._mapping
    return StockLevel(
        warehouse_id=m["warehouse_id"],
        part_number=m["part_number"],
        on_hand=m["on_hand"],
        reserved=m["reserved"],
        average_cost_fen=m["average_cost_fen"],
    )


async def stock_in(
    session: AsyncConnection, warehouse_id: str, part_number: str | None
) -> list[StockRow]:
    c = stock_levels.c
    conditions = [c.warehouse_id == warehouse_id]
    if part_number:
        conditions.append(c.part_number == part_number)
    rows = await session.execute(
        select(stock_levels, parts.c.description)
        .join(parts, parts.c.part_number == c.part_number)
        .where(*conditions)
        .order_by(c.part_number)
    )
    return [StockRow(_level_from_row(row), row.description) for row in rows]


async def lock_levels(
    session: AsyncConnection, keys: Collection[LevelKey]
) -> dict[LevelKey, StockLevel]:
    """The levels about to change, locked until the transaction ends; a part never stocked in
    a warehouse gets an empty level first, so there is always a row to lock."""
    ordered = sorted(keys)  # one lock order for everyone: no deadlocks between postings
    await session.execute(
        upsert(session, stock_levels).on_conflict_do_nothing(
            index_elements=["warehouse_id", "part_number"]
        ),
        [
            {
                "warehouse_id": warehouse_id,
                "part_number": part_number,
                "on_hand": 0,
                "reserved": 0,
                "average_cost_fen": 0,
            }
            for warehouse_id, part_number in ordered
        ],
    )
    c = stock_levels.c
    rows = await session.execute(
        select(stock_levels)
        .where(tuple_(c.warehouse_id, c.part_number).in_(ordered))
        .order_by(c.warehouse_id, c.part_number)
        .with_for_update()
    )
    return {(row.warehouse_id, row.part_number): _level_from_row(row) for row in rows}


async def save_levels(session: AsyncConnection, levels: Collection[StockLevel]) -> None:
    c = stock_levels.c
    await session.execute(
        update(stock_levels)
        .where(
            c.warehouse_id == bindparam("key_warehouse_id"),
            c.part_number == bindparam("key_part_number"),
        )
        .values(
            on_hand=bindparam("new_on_hand"),
            reserved=bindparam("new_reserved"),
            average_cost_fen=bindparam("new_average_cost_fen"),
        ),
        [
            {
                "key_warehouse_id": level.warehouse_id,
                "key_part_number": level.part_number,
                "new_on_hand": level.on_hand,
                "new_reserved": level.reserved,
                "new_average_cost_fen": level.average_cost_fen,
            }
            for level in levels
        ],
    )


async def add_movements(session: AsyncConnection, movements: Collection[Movement]) -> None:
    await session.execute(
        stock_movements.insert(),
        [
            {
                "warehouse_id": m.warehouse_id,
                "part_number": m.part_number,
                "kind": m.kind,
                "quantity": m.quantity,
                "unit_cost_fen": m.unit_cost_fen,
                "reference": m.reference,
                "occurred_at": m.occurred_at,
                "user_id": m.user_id,
            }
            for m in movements
        ],
    )
