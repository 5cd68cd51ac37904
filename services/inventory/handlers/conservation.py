"""守恒: the ledger against the balances, per part."""

from __future__ import annotations

from servicekit.auth import AuthContext, require_role
from services.inventory.adapters.repository import conservation as conservation_db
from services.inventory.domain.conservation import PartConservation, conserve
from services.inventory.handlers.common import NewUow

CONSERVATION_ROLES = ("hq_admin",)


async def check_conservation(
    new_uow: NewUow, auth: AuthContext, part_number: str
) -> list[PartConservation]:
    """守恒: per part, the ledger against the balances (see domain.conservation). Read in one
    transaction, so both sides are of the same moment."""
    require_role(auth, CONSERVATION_ROLES)
    return await conservation(new_uow, part_number)


async def conservation(new_uow: NewUow, part_number: str = "") -> list[PartConservation]:
    """The check itself, for the RPC and for the operator's command."""
    async with new_uow() as uow:
        ledger = await conservation_db.ledger_by_part_and_kind(uow.session, part_number or None)
        on_hand = await conservation_db.on_hand_by_part(uow.session, part_number or None)
        in_transit = await conservation_db.in_transit_by_part(uow.session, part_number or None)
        off = await conservation_db.warehouses_off(uow.session, part_number or None)
        serials_off = await conservation_db.serials_off(uow.session, part_number or None)
        value = await conservation_db.ledger_value_by_part(uow.session, part_number or None)
        held = await conservation_db.value_by_part(uow.session, part_number or None)
        moving = await conservation_db.in_transit_value_by_part(uow.session, part_number or None)
    return [
        conserve(
            part,
            ledger.get(part, {}),
            on_hand.get(part, 0),
            in_transit.get(part, 0),
            tuple(off.get(part, [])),
            tuple(serials_off.get(part, [])),
            (*value.get(part, (0, 0)), held.get(part, 0), moving.get(part, 0)),
        )
        for part in sorted(set(ledger) | set(on_hand) | set(in_transit) | set(serials_off))
    ]
