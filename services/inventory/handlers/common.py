"""Shared by the inventory use cases: the unit of work, roles and limits, posting stock
movements to the ledger, and announcing them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, NotFound, invalid
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import ledger as ledger_db
from services.inventory.adapters.repository import serials as serials_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain import serials
from services.inventory.domain.events import (
    DocumentChanged,
    InventoryEvent,
    StockMoved,
    WarehouseNews,
)
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import Movement, Posting, StockLevel, book, by_serial
from services.inventory.domain.warehouse import Warehouse
from services.inventory.events import translate

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

NewUow = Callable[[], UnitOfWork]

STOCK_DOCUMENT_ROLES = ("warehouse_keeper", "branch_manager", "hq_admin")
"""Who books receipts and adjustments."""
MAX_DOCUMENT_QUANTITY = 100_000
MAX_UNIT_COST_FEN = 100_000_000  # a million yuan a unit: anything above is a typing error

Booked = tuple[Movement, StockLevel]
"""A ledger line and the level it left behind (announced together)."""


@dataclass(frozen=True)
class MovementLine:
    """One line of a stock document: which part, where, what kind, how many (signed: + in,
    - out), and for stock coming in, at what unit cost."""

    warehouse_id: str
    part_number: str
    kind: str
    quantity: int
    unit_cost_fen: int | None = None
    serials: tuple[str, ...] = ()  # a serialised part's units, one each


Posted = list[tuple[int, Movement]]
"""The ledger rows a document booked, with their ids: one, or one per serial."""


async def post_movements(
    uow: UnitOfWork, lines: Sequence[MovementLine], posting: Posting
) -> Posted:
    """Book stock movements in the caller's unit of work: each level changes and its ledger
    line is written together, so the ledger summed per (warehouse, part) is always on-hand,
    and each is announced. A serialised part's line names its serials and is booked one
    ledger row per serial, each serial moving with it. One line that cannot be booked
    (unknown part, not enough stock, a serial not where it should be) fails them all. The
    ledger rows' ids and lines, in the order given."""
    if not lines:
        return []
    session = uow.session
    serialised = await catalog_db.serialised_flags(session, {x.part_number for x in lines})
    found = await warehouses(session, {x.warehouse_id for x in lines})
    for line in lines:
        if line.warehouse_id not in found:
            raise NotFound(f"no warehouse {line.warehouse_id}")
        if line.part_number not in serialised:
            raise NotFound(f"no part {line.part_number}")
        _check_serials_named(serialised[line.part_number], line.part_number, line.serials)
        if line.serials:
            serials.check_serials(line.serials, abs(line.quantity))
    levels = await stock_db.lock_levels(session, {(x.warehouse_id, x.part_number) for x in lines})
    items = await serials_db.lock_serials(session, {s for x in lines for s in x.serials})
    known = set(items)
    booked: list[Booked] = []
    for line in lines:
        key = (line.warehouse_id, line.part_number)
        levels[key], movement = book(
            levels[key], line.kind, line.quantity, line.unit_cost_fen, posting
        )
        if not line.serials:
            booked.append((movement, levels[key]))
            continue
        for serial in line.serials:
            items[serial] = _serial_booked(items.get(serial), serial, line, movement.unit_cost_fen)
        booked += by_serial(movement, levels[key], line.serials)
    await stock_db.save_levels(session, list(levels.values()))
    await _save_serials(uow, items, known)
    ids = await record(uow, found, booked)
    return list(zip(ids, [m for m, _ in booked], strict=True))


def _check_serials_named(serialised: bool, part_number: str, named: Sequence[str]) -> None:
    if serialised and not named:
        raise invalid("serials", f"{part_number} is serialised: name the serial of each unit")
    if named and not serialised:
        raise invalid("serials", f"{part_number} is not serialised")


def _serial_booked(
    item: SerialItem | None, serial: str, line: MovementLine, unit_cost_fen: int
) -> SerialItem:
    """Where a document's movement takes one serial."""
    part, warehouse_id = line.part_number, line.warehouse_id
    if line.kind == "receipt":
        return serials.receive(item, serial, part, warehouse_id, unit_cost_fen)
    if line.kind == "adjustment" and line.quantity > 0:
        return serials.find(item, serial, part, warehouse_id, unit_cost_fen)
    if line.kind not in serials.LEAVING_STATES:
        raise invalid("kind", f"a {line.kind} of serials is booked by its own document")
    if item is None:
        raise Conflict(f"serial {serial} is not known, not free in {warehouse_id}")
    return serials.write_off(item, part, warehouse_id, line.kind)


async def _save_serials(uow: UnitOfWork, items: dict[str, SerialItem], known: set[str]) -> None:
    """Write the serials a posting moved: the ones new to the chain added, the others saved.
    A new serial booked at the same moment by another posting fails one of the two."""
    now = utc_now()
    try:
        await serials_db.add_serials(
            uow.session, [x for k, x in items.items() if k not in known], now
        )
    except IntegrityError as error:
        raise Conflict("a serial was booked elsewhere at the same moment; try again") from error
    await serials_db.save_serials(uow.session, [x for k, x in items.items() if k in known], now)


async def warehouses(session: AsyncConnection, ids: Collection[str]) -> dict[str, Warehouse]:
    found = {}
    for warehouse_id in ids:
        warehouse = await warehouses_db.get_warehouse(session, warehouse_id)
        if warehouse is not None:
            found[warehouse_id] = warehouse
    return found


async def record(
    uow: UnitOfWork, warehouses: dict[str, Warehouse], booked: Sequence[Booked]
) -> list[int]:
    """Write ledger lines and announce each (stock_moved) in the same transaction."""
    ids = await ledger_db.add_movements(uow.session, [m for m, _ in booked])
    for movement, after in booked:
        announce(uow, warehouses[movement.warehouse_id], StockMoved(movement, after))
    return ids


async def announce_document(
    uow: UnitOfWork, warehouse: Warehouse, document_type: str, document_id: str, status: str = ""
) -> None:
    announce(uow, warehouse, DocumentChanged(document_type, document_id, status))


def announce(uow: UnitOfWork, warehouse: Warehouse, event: InventoryEvent) -> None:
    """Record what changed in the warehouse's name: the unit of work sends it at commit, after
    everything announced before it."""
    uow.track(WarehouseNews(warehouse).record(event), translate)


async def visible_warehouse(
    session: AsyncConnection, auth: AuthContext, warehouse_id: str
) -> Warehouse:
    if not warehouse_id:
        raise invalid("warehouse_id", "is required")
    warehouse = await warehouses_db.get_warehouse(session, warehouse_id)
    # Another unit's warehouse is indistinguishable from one that does not exist.
    if warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no warehouse {warehouse_id} in your scope")
    return warehouse


def posting(auth: AuthContext, document_type: str, document_id: str) -> Posting:
    return Posting(document_type, document_id, utc_now(), auth.user_id)


def new_document_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


APPROVER_ROLES = ("branch_manager", "hq_admin")
"""Who approves transfers and stocktakes that wait."""
