"""Serialised items (串号): where a serial is, and its history."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.auth import AuthContext
from servicekit.errors import NotFound, invalid
from services.inventory.adapters.repository import ledger as ledger_db
from services.inventory.adapters.repository import serials as serials_db
from services.inventory.domain.serials import SerialItem
from services.inventory.handlers import common
from services.inventory.handlers.common import NewUow


@dataclass(frozen=True)
class SerialTrace:
    """Where a serial is now, and every ledger row that moved it, oldest first."""

    item: SerialItem
    history: list[ledger_db.LedgerRow]


async def get_serial(new_uow: NewUow, auth: AuthContext, serial_number: str) -> SerialTrace:
    """A serial and its history, for anyone whose scope it has passed through (HQ any)."""
    if not serial_number:
        raise invalid("serial", "is required")
    async with new_uow() as uow:
        session = uow.session
        item = await serials_db.get_serial(session, serial_number)
        history = await ledger_db.serial_history(session, serial_number) if item else []
        places = {x.movement.warehouse_id for x in history}
        found = await common.warehouses(session, places)
    if item is None or not any(w.visible_to(auth) for w in found.values()):
        raise NotFound(f"no serial {serial_number} in your scope")
    return SerialTrace(item, history)


async def list_serials(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, part_number: str
) -> list[SerialItem]:
    """The serials in stock in a warehouse (held for an order or free), by part and serial."""
    async with new_uow() as uow:
        warehouse = await common.visible_warehouse(uow.session, auth, warehouse_id)
        return await serials_db.serials_in(uow.session, warehouse.id, part_number or None)
