"""The parts catalog (料号) and its successors (替代料)."""

from __future__ import annotations

from servicekit import paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, NotFound, invalid
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.domain.catalog import PART_CATEGORIES, Part, check_part, successor_chain
from services.inventory.handlers.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, NewUow


def part_filter(brand: str, category: str, model: str) -> catalog_db.PartFilter:
    if category and category not in PART_CATEGORIES:
        raise invalid("category", f"must be one of {', '.join(PART_CATEGORIES)}")
    return catalog_db.PartFilter(
        brand=brand or None, category=category or None, model=model or None
    )


async def list_parts(
    new_uow: NewUow, where: catalog_db.PartFilter, page_size: int, page_token: str
) -> tuple[list[Part], str]:
    """The catalog (料号) by part number, a page at a time; the token resumes after the last
    part of the previous page."""
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = paging.decode_page_token(page_token, 1)[0] if page_token else None
    async with new_uow() as uow:
        page = await catalog_db.list_parts(uow.session, where, size + 1, after)
    if len(page) > size:
        return page[:size], paging.encode_page_token(page[size - 1].part_number)
    return page, ""


async def successor_chains(new_uow: NewUow) -> dict[str, tuple[str, ...]]:
    """替代料: per part, the parts that supersede it in turn, the last one current."""
    async with new_uow() as uow:
        known = await catalog_db.successors(uow.session)
    return {part: successor_chain(part, known) for part in known}


async def get_part(new_uow: NewUow, part_number: str) -> tuple[Part, tuple[str, ...]]:
    """One part of the catalog and the chain of parts that supersede it."""
    if not part_number:
        raise invalid("part_number", "is required")
    async with new_uow() as uow:
        part = await catalog_db.get_part(uow.session, part_number)
        if part is None:
            raise NotFound(f"no part {part_number}")
        known = await catalog_db.successors(uow.session)
    return part, successor_chain(part_number, known)


CATALOG_ROLES = ("hq_admin",)


async def put_part(new_uow: NewUow, auth: AuthContext, part: Part) -> Part:
    """HQ adds a part to the catalog or changes one. Whether a part is serialised cannot
    change once it has moved: its ledger would no longer describe it."""
    require_role(auth, CATALOG_ROLES)
    async with new_uow() as uow:
        session = uow.session
        known = await catalog_db.successors(session)
        check_part(part, known)
        if part.part_number in known:
            flags = await catalog_db.serialised_flags(session, [part.part_number])
            if flags[part.part_number] != part.serialised and await catalog_db.part_is_stocked(
                session, part.part_number
            ):
                raise Conflict(f"{part.part_number} has moved: its serialised flag stays")
        await catalog_db.put_part(session, part)
        await uow.commit()
    return part
