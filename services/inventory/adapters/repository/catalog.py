"""The parts catalog (料号): parts, the models they fit, what supersedes them."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert
from services.inventory.adapters.orm import part_models, parts, stock_movements
from services.inventory.domain.catalog import Part


@dataclass(frozen=True)
class PartFilter:
    brand: str | None = None
    category: str | None = None
    model: str | None = None


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


async def get_part(session: AsyncConnection, part_number: str) -> Part | None:
    row = (await session.execute(select(parts).where(parts.c.part_number == part_number))).first()
    if row is None:
        return None
    models = await session.scalars(
        select(part_models.c.model_code)
        .where(part_models.c.part_number == part_number)
        .order_by(part_models.c.model_code)
    )
    return _part_from_row(row, list(models))


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


async def retail_prices(session: AsyncConnection, part_numbers: Iterable[str]) -> dict[str, int]:
    """The retail price of each known part; unknown part numbers are left out."""
    rows = await session.execute(
        select(parts.c.part_number, parts.c.retail_price_fen).where(
            parts.c.part_number.in_(list(part_numbers))
        )
    )
    return {part_number: price for part_number, price in rows}


async def successors(session: AsyncConnection) -> dict[str, str | None]:
    """Every part number and what supersedes it."""
    rows = await session.execute(select(parts.c.part_number, parts.c.superseded_by))
    return {part_number: superseded_by for part_number, superseded_by in rows}


async def put_part(session: AsyncConnection, part: Part) -> None:
    """Add the part, or change it; its compatible models are replaced."""
    values = {
        "brand": part.brand,
        "description": part.description,
        "category": part.category,
        "serialised": part.serialised,
        "standard_cost_fen": part.standard_cost_fen,
        "retail_price_fen": part.retail_price_fen,
        "superseded_by": part.superseded_by,
    }
    await session.execute(
        upsert(session, parts)
        .values(part_number=part.part_number, **values)
        .on_conflict_do_update(index_elements=["part_number"], set_=values)
    )
    await session.execute(part_models.delete().where(part_models.c.part_number == part.part_number))
    if part.compatible_models:
        await session.execute(
            part_models.insert(),
            [{"part_number": part.part_number, "model_code": m} for m in part.compatible_models],
        )


async def part_is_stocked(session: AsyncConnection, part_number: str) -> bool:
    """Whether the ledger ever moved the part (whatever a warehouse holds came in by it)."""
    moved = await session.scalar(
        select(stock_movements.c.id).where(stock_movements.c.part_number == part_number).limit(1)
    )
    return moved is not None
