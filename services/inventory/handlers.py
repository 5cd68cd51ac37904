"""Use cases of the inventory service: plain async functions over a unit of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit import paging
from servicekit.auth import AuthContext
from servicekit.errors import NotFound, invalid
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters import repository
from services.inventory.domain.catalog import PART_CATEGORIES, Part
from services.inventory.domain.stock import Movement, StockLevel, book
from services.inventory.domain.warehouse import Warehouse

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

NewUow = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class MovementLine:
    """One line of a stock document: which part, where, what kind, how many (signed: + in,
    - out), and for stock coming in, at what unit cost."""

    warehouse_id: str
    part_number: str
    kind: str
    quantity: int
    unit_cost_fen: int | None = None


def part_filter(brand: str, category: str, model: str) -> repository.PartFilter:
    if category and category not in PART_CATEGORIES:
        raise invalid("category", f"must be one of {', '.join(PART_CATEGORIES)}")
    return repository.PartFilter(
        brand=brand or None, category=category or None, model=model or None
    )


async def list_parts(
    new_uow: NewUow, where: repository.PartFilter, page_size: int, page_token: str
) -> tuple[list[Part], str]:
    """The catalog (料号) by part number, a page at a time; the token resumes after the last
    part of the previous page."""
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = paging.decode_page_token(page_token, 1)[0] if page_token else None
    async with new_uow() as uow:
        page = await repository.list_parts(uow.session, where, size + 1, after)
    if len(page) > size:
        return page[:size], paging.encode_page_token(page[size - 1].part_number)
    return page, ""


async def list_warehouses(new_uow: NewUow, auth: AuthContext) -> list[Warehouse]:
    """The warehouses within the caller's scope: HQ all, a branch its central and its stores',
    a store its own."""
    async with new_uow() as uow:
        return await repository.list_warehouses(uow.session, auth.branch_id, auth.store_id)


async def get_stock(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, part_number: str
) -> tuple[Warehouse, list[repository.StockRow]]:
    """Stock of a warehouse, or of one part in it (zero when the part was never stocked
    there)."""
    if not warehouse_id:
        raise invalid("warehouse_id", "is required")
    async with new_uow() as uow:
        warehouse = await repository.get_warehouse(uow.session, warehouse_id)
        # Another unit's warehouse is indistinguishable from one that does not exist.
        if warehouse is None or not warehouse.visible_to(auth):
            raise NotFound(f"no warehouse {warehouse_id} in your scope")
        rows = await repository.stock_in(uow.session, warehouse_id, part_number or None)
        if part_number and not rows:
            description = await repository.part_description(uow.session, part_number)
            if description is None:
                raise NotFound(f"no part {part_number}")
            rows = [repository.StockRow(StockLevel(warehouse_id, part_number), description)]
    return warehouse, rows


async def post_movements(
    session: AsyncConnection, lines: Sequence[MovementLine], reference: str, user_id: str
) -> list[Movement]:
    """Book stock movements in the caller's transaction: each level changes and its ledger
    line is written together, so the ledger summed per (warehouse, part) is always on-hand.
    One line that cannot be booked (unknown part, not enough stock) fails them all."""
    if not lines:
        return []
    serialised = await repository.serialised_flags(session, {x.part_number for x in lines})
    known = await repository.existing_warehouses(session, {x.warehouse_id for x in lines})
    for line in lines:
        if line.warehouse_id not in known:
            raise NotFound(f"no warehouse {line.warehouse_id}")
        if line.part_number not in serialised:
            raise NotFound(f"no part {line.part_number}")
        if serialised[line.part_number]:
            # A serial must be in exactly one place; until serials are tracked, refuse rather
            # than book serialised stock that no serial accounts for.
            raise invalid("part_number", f"{line.part_number} is serialised and moves by serial")
    levels = await repository.lock_levels(session, {(x.warehouse_id, x.part_number) for x in lines})
    now = utc_now()
    movements = []
    for line in lines:
        key = (line.warehouse_id, line.part_number)
        levels[key], movement = book(
            levels[key], line.kind, line.quantity, line.unit_cost_fen, reference, now, user_id
        )
        movements.append(movement)
    await repository.save_levels(session, list(levels.values()))
    await repository.add_movements(session, movements)
    return movements
