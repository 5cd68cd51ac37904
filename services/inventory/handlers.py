"""Use cases of the inventory service: plain async functions over a unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from aftersales.events.v1 import inventory_events_pb2
from servicekit import bus, paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, Forbidden, NotFound, invalid
from servicekit.outbox import fill_meta
from servicekit.timeutil import as_utc, utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters import repository
from services.inventory.domain import (
    old_parts,
    order_parts,
    purchasing,
    quota,
    serials,
    stocktake,
    transfer,
)
from services.inventory.domain.catalog import (
    PART_CATEGORIES,
    Part,
    check_part,
    current_successor,
    successor_chain,
)
from services.inventory.domain.conservation import PartConservation, conserve
from services.inventory.domain.old_parts import OldPartLine
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.quota import QuotaUse
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import Movement, Posting, StockLevel, book, by_serial
from services.inventory.domain.stocktake import APPROVAL_THRESHOLD_FEN, Stocktake
from services.inventory.domain.transfer import Transfer
from services.inventory.domain.warehouse import Warehouse

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

NewUow = Callable[[], UnitOfWork]

ORDER_PARTS_ROLES = ("clerk", "technician", "warehouse_keeper", "branch_manager", "hq_admin")
"""Who works on an order's parts (through orders, which passes their token on)."""
STOCK_DOCUMENT_ROLES = ("warehouse_keeper", "branch_manager", "hq_admin")
"""Who books receipts and adjustments."""
CONSERVATION_ROLES = ("hq_admin",)
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


async def successor_chains(new_uow: NewUow) -> dict[str, tuple[str, ...]]:
    """替代料: per part, the parts that supersede it in turn, the last one current."""
    async with new_uow() as uow:
        known = await repository.successors(uow.session)
    return {part: successor_chain(part, known) for part in known}


async def get_part(new_uow: NewUow, part_number: str) -> tuple[Part, tuple[str, ...]]:
    """One part of the catalog and the chain of parts that supersede it."""
    if not part_number:
        raise invalid("part_number", "is required")
    async with new_uow() as uow:
        part = await repository.get_part(uow.session, part_number)
        if part is None:
            raise NotFound(f"no part {part_number}")
        known = await repository.successors(uow.session)
    return part, successor_chain(part_number, known)


CATALOG_ROLES = ("hq_admin",)


async def put_part(new_uow: NewUow, auth: AuthContext, part: Part) -> Part:
    """HQ adds a part to the catalog or changes one. Whether a part is serialised cannot
    change once it has moved: its ledger would no longer describe it."""
    require_role(auth, CATALOG_ROLES)
    async with new_uow() as uow:
        session = uow.session
        known = await repository.successors(session)
        check_part(part, known)
        if part.part_number in known:
            flags = await repository.serialised_flags(session, [part.part_number])
            if flags[part.part_number] != part.serialised and await repository.part_is_stocked(
                session, part.part_number
            ):
                raise Conflict(f"{part.part_number} has moved: its serialised flag stays")
        await repository.put_part(session, part)
        await uow.commit()
    return part


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
    serialised = await repository.serialised_flags(session, {x.part_number for x in lines})
    found = await _warehouses(session, {x.warehouse_id for x in lines})
    for line in lines:
        if line.warehouse_id not in found:
            raise NotFound(f"no warehouse {line.warehouse_id}")
        if line.part_number not in serialised:
            raise NotFound(f"no part {line.part_number}")
        _check_serials_named(serialised[line.part_number], line.part_number, line.serials)
        if line.serials:
            serials.check_serials(line.serials, abs(line.quantity))
    levels = await repository.lock_levels(session, {(x.warehouse_id, x.part_number) for x in lines})
    items = await repository.lock_serials(session, {s for x in lines for s in x.serials})
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
    await repository.save_levels(session, list(levels.values()))
    await _save_serials(uow, items, known)
    ids = await _record(uow, found, booked)
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
        await repository.add_serials(
            uow.session, [x for k, x in items.items() if k not in known], now
        )
    except IntegrityError as error:
        raise Conflict("a serial was booked elsewhere at the same moment; try again") from error
    await repository.save_serials(uow.session, [x for k, x in items.items() if k in known], now)


async def _warehouses(session: AsyncConnection, ids: Collection[str]) -> dict[str, Warehouse]:
    found = {}
    for warehouse_id in ids:
        warehouse = await repository.get_warehouse(session, warehouse_id)
        if warehouse is not None:
            found[warehouse_id] = warehouse
    return found


async def _record(
    uow: UnitOfWork, warehouses: dict[str, Warehouse], booked: Sequence[Booked]
) -> list[int]:
    """Write ledger lines and announce each (stock_moved) in the same transaction."""
    ids = await repository.add_movements(uow.session, [m for m, _ in booked])
    for movement, after in booked:
        warehouse = warehouses[movement.warehouse_id]
        event = inventory_events_pb2.StockMoved(
            warehouse_id=movement.warehouse_id,
            part_number=movement.part_number,
            kind=movement.kind,
            quantity=movement.quantity,
            unit_cost_fen=movement.unit_cost_fen,
            document_type=movement.document_type,
            document_id=movement.document_id,
            on_hand_after=after.on_hand,
            average_cost_after_fen=after.average_cost_fen,
            serial_number=movement.serial_number or "",
        )
        fill_meta(event.meta, warehouse.branch_id, warehouse.store_id)
        await uow.emit(_subject(warehouse, "stock_moved"), event)
    return ids


async def _announce_document(
    uow: UnitOfWork, warehouse: Warehouse, document_type: str, document_id: str, status: str = ""
) -> None:
    event = inventory_events_pb2.DocumentChanged(
        document_type=document_type,
        document_id=document_id,
        warehouse_id=warehouse.id,
        status=status,
    )
    fill_meta(event.meta, warehouse.branch_id, warehouse.store_id)
    await uow.emit(_subject(warehouse, "document_changed"), event)


def _subject(warehouse: Warehouse, event_name: str) -> str:
    return bus.subject("inventory", warehouse.branch_id, warehouse.store_id, event_name)


async def _visible_warehouse(
    session: AsyncConnection, auth: AuthContext, warehouse_id: str
) -> Warehouse:
    if not warehouse_id:
        raise invalid("warehouse_id", "is required")
    warehouse = await repository.get_warehouse(session, warehouse_id)
    # Another unit's warehouse is indistinguishable from one that does not exist.
    if warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no warehouse {warehouse_id} in your scope")
    return warehouse


def _posting(auth: AuthContext, document_type: str, document_id: str) -> Posting:
    return Posting(document_type, document_id, utc_now(), auth.user_id)


# --- Parts for work orders (工单用料) ---------------------------------------------------------


@dataclass(frozen=True)
class PartRequest:
    """One line an order asks to reserve."""

    line_id: str
    part_number: str
    quantity: int
    warranty: bool
    serials: tuple[str, ...] = ()  # a serialised part's units by name; any free ones if none


@dataclass(frozen=True)
class SuccessorOffer:
    """替代料: a short line's part is superseded; what replaces it now, and how many of it
    the warehouse has available."""

    part_number: str
    available: int


@dataclass(frozen=True)
class OrderParts:
    order_id: str
    warehouse_id: str
    lines: list[OrderPartLine]
    serials: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """By line: the serials it holds, or consumed."""
    offers: dict[str, SuccessorOffer] = field(default_factory=dict)
    """By short line whose part is superseded: its successor."""


async def _order_parts(
    session: AsyncConnection,
    order_id: str,
    warehouse_id: str,
    offers: dict[str, SuccessorOffer] | None = None,
) -> OrderParts:
    lines = await repository.order_lines(session, order_id)
    by_line: dict[str, tuple[str, ...]] = {}
    for item in await repository.serials_of_lines(session, order_id):
        by_line[str(item.line_id)] = (*by_line.get(str(item.line_id), ()), item.serial_number)
    return OrderParts(order_id, warehouse_id, lines, by_line, offers or {})


async def _announce_lines(
    uow: UnitOfWork,
    warehouse: Warehouse,
    order_id: str,
    action: str,
    lines: Sequence[OrderPartLine],
) -> None:
    event = inventory_events_pb2.OrderPartsChanged(
        order_id=order_id,
        warehouse_id=warehouse.id,
        action=action,
        lines=[
            inventory_events_pb2.OrderPartLineState(
                line_id=x.line_id,
                part_number=x.part_number,
                quantity=x.quantity,
                reserved=x.reserved,
                short=x.short,
                issued=x.issued,
                returned=x.returned,
                status=x.status,
                unit_cost_fen=x.unit_cost_fen,
            )
            for x in lines
        ],
    )
    fill_meta(event.meta, warehouse.branch_id, warehouse.store_id)
    await uow.emit(_subject(warehouse, "order_parts_changed"), event)


def _check_order_id(order_id: str) -> None:
    if not order_id:
        raise invalid("order_id", "is required")


def _check_requests(requested: Sequence[PartRequest]) -> None:
    if not requested:
        raise invalid("lines", "must not be empty")
    for i, line in enumerate(requested):
        if not line.line_id:
            raise invalid(f"lines[{i}].line_id", "is required")
        if not line.part_number:
            raise invalid(f"lines[{i}].part_id", "is required")
        order_parts.check_quantity(line.quantity, f"lines[{i}].quantity")
        if line.serials:
            serials.check_serials(line.serials, line.quantity, f"lines[{i}].serials")
    if len({x.line_id for x in requested}) != len(requested):
        raise invalid("lines", "line ids must be unique")
    named = [s for x in requested for s in x.serials]
    if len(set(named)) != len(named):
        raise invalid("lines", "each serial on one line only")


async def reserve_parts(
    new_uow: NewUow,
    auth: AuthContext,
    order_id: str,
    warehouse_id: str,
    requested: Sequence[PartRequest],
) -> OrderParts:
    """预留: hold each line's parts in the order's warehouse, as many as are available; the
    rest is reported short. Asking again for a line already held changes nothing (a short
    line takes what has come in since). A serialised part's line holds serials: the ones it
    names (each must be free there), or any free ones.

    替代料: a short line whose part is superseded is offered the part that replaces it now
    (the end of its chain) with what is available of it; asking again for the line with that
    successor (or any part down the chain) lets the old hold go and reserves the successor.

    The stock levels are locked first (SELECT ... FOR UPDATE on PostgreSQL, the writer turn on
    SQLite), then the order's lines, then serials: two orders after the last unit are served
    one after the other, and the second finds it gone."""
    require_role(auth, ORDER_PARTS_ROLES)
    _check_order_id(order_id)
    _check_requests(requested)
    async with new_uow() as uow:
        session = uow.session
        warehouse = await _visible_warehouse(session, auth, warehouse_id)
        prices = await repository.retail_prices(session, {x.part_number for x in requested})
        for i, line in enumerate(requested):
            if line.part_number not in prices:
                raise invalid(f"lines[{i}].part_id", f"no part {line.part_number}")
        successors = await repository.successors(session)
        first_read = {x.line_id: x for x in await repository.order_lines(session, order_id)}
        switching = {
            x.line_id: first_read[x.line_id].part_number
            for x in requested
            if x.line_id in first_read
            and x.part_number in successor_chain(first_read[x.line_id].part_number, successors)
        }
        keys = {(warehouse.id, x.part_number) for x in requested}
        keys |= {(warehouse.id, part) for part in switching.values()}
        flags = await repository.serialised_flags(session, {p for _, p in keys})
        for i, line in enumerate(requested):
            if line.serials and not flags[line.part_number]:
                raise invalid(f"lines[{i}].serials", f"{line.part_number} is not serialised")
        levels = await repository.lock_levels(session, keys)
        existing = {
            x.line_id: x for x in await repository.order_lines(session, order_id, lock=True)
        }
        if existing and next(iter(existing.values())).warehouse_id != warehouse.id:
            raise Conflict(f"order {order_id} takes its parts from another warehouse")
        if any(existing[x].part_number != part for x, part in switching.items()):
            raise Conflict(f"the parts of order {order_id} changed meanwhile; try again")
        linked = _by_line(await repository.serials_of_lines(session, order_id, lock=True))
        named = await repository.lock_serials(session, {s for x in requested for s in x.serials})
        for line in requested:
            mine = {x.serial_number for x in linked.get(line.line_id, [])}
            if line.serials and mine and mine != set(line.serials):
                raise Conflict(
                    f"line {line.line_id} of order {order_id} has serials {', '.join(sorted(mine))}"
                    "; release it to take others"
                )
            for serial in line.serials:
                if serial not in named:
                    raise Conflict(f"serial {serial} is not known, not free in {warehouse.id}")
                if serial not in mine:
                    serials.check_free(named[serial], line.part_number, warehouse.id)
        new_lines, changed = [], []
        for line in requested:
            key = (warehouse.id, line.part_number)
            before = existing.get(line.line_id)
            if before is None:
                levels[key], after = order_parts.reserve(
                    levels[key],
                    OrderPartLine(
                        order_id=order_id,
                        line_id=line.line_id,
                        warehouse_id=warehouse.id,
                        part_number=line.part_number,
                        quantity=line.quantity,
                        warranty=line.warranty,
                        retail_price_fen=prices[line.part_number],
                    ),
                )
                new_lines.append(after)
            elif line.line_id in switching:
                old_key = (warehouse.id, before.part_number)
                levels[old_key], levels[key], after = order_parts.switch_part(
                    levels[old_key],
                    levels[key],
                    before,
                    line.part_number,
                    line.quantity,
                    prices[line.part_number],
                )
                changed.append(after)
            else:
                levels[key], after = order_parts.reserve_again(
                    levels[key], before, line.part_number, line.quantity
                )
                if after != before:
                    changed.append(after)
        if new_lines or changed:
            now = utc_now()
            await repository.save_levels(session, list(levels.values()))
            try:
                await repository.add_lines(session, new_lines, now)
            except IntegrityError as error:
                # The same new line reserved at the same moment for another part: one wins.
                raise Conflict(f"order {order_id} was reserved concurrently; try again") from error
            await repository.save_lines(session, changed, now)
            asked = {x.line_id: x.serials for x in requested}
            moved: dict[str, SerialItem] = {}
            for after in [*new_lines, *changed]:
                if flags[after.part_number] or linked.get(after.line_id):
                    found, _ = await _follow_serials(
                        session,
                        after,
                        linked.get(after.line_id, []),
                        None,
                        [named[s] for s in asked[after.line_id]],
                        serialised=flags[after.part_number],
                    )
                    moved |= found
            await repository.save_serials(session, list(moved.values()), now)
            await _announce_lines(uow, warehouse, order_id, "reserve", [*new_lines, *changed])
            await _request_shortfall(uow, auth, warehouse, order_id, new_lines, flags)
            await uow.commit()
        offers = await _successor_offers(session, warehouse.id, order_id, successors)
        return await _order_parts(session, order_id, warehouse.id, offers)


def _by_line(items: Sequence[SerialItem]) -> dict[str, list[SerialItem]]:
    found: dict[str, list[SerialItem]] = {}
    for item in items:
        found.setdefault(str(item.line_id), []).append(item)
    return found


async def _successor_offers(
    session: AsyncConnection, warehouse_id: str, order_id: str, successors: dict[str, str | None]
) -> dict[str, SuccessorOffer]:
    """替代料: for each short line whose part is superseded, the part that replaces it now and
    what the warehouse has available of it."""
    offers = {}
    for line in await repository.order_lines(session, order_id):
        successor = current_successor(line.part_number, successors)
        if line.status != "short" or successor is None:
            continue
        rows = await repository.stock_in(session, warehouse_id, successor)
        available = rows[0].level.available if rows else 0
        offers[line.line_id] = SuccessorOffer(successor, available)
    return offers


async def _follow_serials(
    session: AsyncConnection,
    line: OrderPartLine,
    linked: Sequence[SerialItem],
    movement: Movement | None,
    named: Sequence[SerialItem] = (),
    back: Sequence[str] = (),
    *,
    serialised: bool = True,
) -> tuple[dict[str, SerialItem], list[str]]:
    """The serials of one order line after a rule changed it: it holds as many as it
    reserves (the named ones first, then any free ones of its warehouse), consumes them when
    issued, and gives back the ones returned (`back`, or the first consumed). The serials
    changed, and the ones the movement moved, in ledger order."""
    order_id, line_id = line.order_id, line.line_id
    changed: dict[str, SerialItem] = {}
    held = [x for x in linked if x.held]
    # Serials of another part (the line took a successor) go free.
    for item in held:
        if item.part_number != line.part_number:
            changed[item.serial_number] = serials.let_go(item, order_id, line_id)
    keep = [x for x in held if x.part_number == line.part_number]
    # A line that took a part not serialised (its successor) holds no serials.
    wanted = line.reserved if line.open and serialised else 0
    if movement is not None and movement.kind == "issue":
        wanted = -movement.quantity
    for item in keep[wanted:]:
        changed[item.serial_number] = serials.let_go(item, order_id, line_id)
    keep = keep[:wanted]
    taken = {x.serial_number for x in keep}
    extra = [x for x in named if x.serial_number not in taken][: wanted - len(keep)]
    if len(keep) + len(extra) < wanted:
        free = await repository.free_serials(
            session, line.warehouse_id, line.part_number, wanted + len(extra)
        )
        names = {x.serial_number for x in extra}
        extra += [x for x in free if x.serial_number not in names][
            : wanted - len(keep) - len(extra)
        ]
    if len(keep) + len(extra) < wanted:
        raise Conflict(
            f"the serials of part {line.part_number} in {line.warehouse_id} do not cover its "
            "stock: run the conservation check"
        )
    for item in extra:
        changed[item.serial_number] = serials.hold(
            item, line.part_number, line.warehouse_id, order_id, line_id
        )
    keep = sorted(
        [*keep, *(changed[x.serial_number] for x in extra)], key=lambda x: x.serial_number
    )
    if movement is None:
        return changed, []
    if movement.kind == "issue":
        for item in keep:
            changed[item.serial_number] = serials.consume(item, order_id, line_id)
        return changed, [x.serial_number for x in keep]
    consumed = {x.serial_number: x for x in linked if x.state == "consumed"}
    chosen = list(back) or sorted(consumed)[: movement.quantity]
    for serial in chosen:
        if serial not in consumed:
            raise Conflict(f"serial {serial} was not consumed by order {order_id} line {line_id}")
        changed[serial] = serials.give_back(
            consumed[serial], order_id, line_id, line.warehouse_id, movement.unit_cost_fen
        )
    return changed, chosen


async def _request_shortfall(
    uow: UnitOfWork,
    auth: AuthContext,
    warehouse: Warehouse,
    order_id: str,
    new_lines: Sequence[OrderPartLine],
    serialised: dict[str, bool],
) -> None:
    """A store short of parts for new order lines asks its branch's central warehouse for
    them (补货调拨), in the same transaction; the branch approves it as any other transfer.
    Asked once, when a line is first reserved: a retry or a top-up asks nothing more.
    Serialised parts are left out: a transfer names its serials, which the central picks."""
    short: dict[str, int] = {}
    for line in new_lines:
        if line.short and not serialised[line.part_number]:
            short[line.part_number] = short.get(line.part_number, 0) + line.short
    if not short or warehouse.store_id is None:
        return
    central = await repository.central_warehouse(uow.session, warehouse.branch_id)
    if central is None:
        return
    doc = Transfer(
        id=_new_document_id("TR"),
        from_warehouse_id=central.id,
        from_branch_id=central.branch_id,
        to_warehouse_id=warehouse.id,
        to_branch_id=warehouse.branch_id,
        lines=transfer.check_lines(sorted(short.items())),
        requested_by=auth.user_id,
        requested_at=utc_now(),
        note=f"order {order_id} short of parts",
    )
    await repository.add_transfer(uow.session, doc)
    await _announce_transfer(uow, doc, central)


async def _order_in_scope(
    session: AsyncConnection, auth: AuthContext, order_id: str
) -> tuple[Warehouse, list[OrderPartLine]]:
    """An order's lines (unlocked) and its warehouse; none, or outside the caller's scope, is
    NotFound."""
    _check_order_id(order_id)
    lines = await repository.order_lines(session, order_id)
    warehouse = await repository.get_warehouse(session, lines[0].warehouse_id) if lines else None
    if warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no parts for order {order_id} in your scope")
    return warehouse, lines


def _chosen(lines: Sequence[OrderPartLine], line_ids: Sequence[str]) -> list[OrderPartLine]:
    if not line_ids:
        return list(lines)
    by_id = {x.line_id: x for x in lines}
    for i, line_id in enumerate(line_ids):
        if line_id not in by_id:
            raise invalid(f"line_ids[{i}]", f"no line {line_id} on the order")
    return [by_id[x] for x in dict.fromkeys(line_ids)]


async def _change_lines(
    new_uow: NewUow,
    auth: AuthContext,
    order_id: str,
    line_ids: Sequence[str],
    action: str,
    change: Callable[
        [StockLevel, OrderPartLine, Posting], tuple[StockLevel, OrderPartLine, Movement | None]
    ],
    back: Sequence[str] = (),
) -> OrderParts:
    """Apply one rule to the chosen lines of an order under the locks (levels, lines, then
    serials), and book, save and announce what changed in one transaction. A serialised
    part's serials follow its line, and its movement is booked one row per serial."""
    require_role(auth, ORDER_PARTS_ROLES)
    async with new_uow() as uow:
        session = uow.session
        warehouse, unlocked = await _order_in_scope(session, auth, order_id)
        if await uow.earlier_result() is not None:
            return await _order_parts(session, order_id, warehouse.id)
        levels = await repository.lock_levels(
            session, {(warehouse.id, x.part_number) for x in unlocked}
        )
        # Read again under the locks: a concurrent call may have changed them meanwhile.
        current = await repository.order_lines(session, order_id, lock=True)
        if any((warehouse.id, x.part_number) not in levels for x in current):
            # A line for another part was added since the first read: its level is not locked.
            raise Conflict(f"the parts of order {order_id} changed meanwhile; try again")
        flags = await repository.serialised_flags(session, {x.part_number for x in current})
        linked = _by_line(await repository.serials_of_lines(session, order_id, lock=True))
        posting = _posting(auth, "order", order_id)
        changed, booked = [], []
        moved: dict[str, SerialItem] = {}
        for line in _chosen(current, line_ids):
            key = (warehouse.id, line.part_number)
            levels[key], after, movement = change(levels[key], line, posting)
            if after != line:
                changed.append(after)
            if flags[line.part_number]:
                found, named = await _follow_serials(
                    session, after, linked.get(line.line_id, []), movement, back=back
                )
                moved |= found
                if movement is not None:
                    booked += by_serial(movement, levels[key], named)
            elif movement is not None:
                booked.append((movement, levels[key]))
        if changed:
            await repository.save_levels(session, list(levels.values()))
            await repository.save_lines(session, changed, posting.occurred_at)
            await repository.save_serials(session, list(moved.values()), posting.occurred_at)
            await _record(uow, {warehouse.id: warehouse}, booked)
            await _announce_lines(uow, warehouse, order_id, action, changed)
            await uow.commit(result_id=order_id)
        return await _order_parts(session, order_id, warehouse.id)


async def issue_parts(
    new_uow: NewUow, auth: AuthContext, order_id: str, line_ids: Sequence[str]
) -> OrderParts:
    """领料: the held parts leave the warehouse into the order at the moving-average cost (a
    ledger "issue" each; a serial each for a serialised part, recorded on the line). A line
    is never issued twice; a short one is a Conflict."""
    return await _change_lines(new_uow, auth, order_id, line_ids, "issue", order_parts.issue)


async def release_parts(
    new_uow: NewUow, auth: AuthContext, order_id: str, line_ids: Sequence[str]
) -> OrderParts:
    """The holds of lines not issued are let go (their serials free again)."""

    def release(
        level: StockLevel, line: OrderPartLine, _posting: Posting
    ) -> tuple[StockLevel, OrderPartLine, Movement | None]:
        return (*order_parts.release(level, line), None)

    return await _change_lines(new_uow, auth, order_id, line_ids, "release", release)


async def return_parts(
    new_uow: NewUow,
    auth: AuthContext,
    order_id: str,
    line_id: str,
    quantity: int,
    serial_numbers: Sequence[str] = (),
) -> OrderParts:
    """退料: issued parts come back to the warehouse at the line's cost (a ledger "return").
    A serialised line's serials come back in stock: the ones named, or the first it
    consumed."""
    if not line_id:
        raise invalid("line_id", "is required")
    order_parts.check_quantity(quantity)
    if serial_numbers:
        serials.check_serials(serial_numbers, quantity)

    def give_back(
        level: StockLevel, line: OrderPartLine, posting: Posting
    ) -> tuple[StockLevel, OrderPartLine, Movement | None]:
        return order_parts.give_back(level, line, quantity, posting)

    return await _change_lines(
        new_uow, auth, order_id, [line_id], "return", give_back, serial_numbers
    )


async def get_order_parts(new_uow: NewUow, auth: AuthContext, order_id: str) -> OrderParts:
    require_role(auth, ORDER_PARTS_ROLES)
    async with new_uow() as uow:
        warehouse, _ = await _order_in_scope(uow.session, auth, order_id)
        return await _order_parts(uow.session, order_id, warehouse.id)


# --- Warehouse keepers' documents ------------------------------------------------------------


def _check_document_quantity(quantity: int, *, signed: bool) -> None:
    if quantity == 0 or (quantity < 0 and not signed):
        raise invalid("quantity", "must not be zero" if signed else "must be positive")
    if abs(quantity) > MAX_DOCUMENT_QUANTITY:
        raise invalid("quantity", f"must be at most {MAX_DOCUMENT_QUANTITY} units")


async def record_receipt(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    quantity: int,
    unit_cost_fen: int,
    document_id: str,
    serial_numbers: Sequence[str] = (),
) -> Posted:
    """入库: stock comes in at a unit cost and the warehouse's moving average follows. A
    serialised part names a serial for each unit, none already in the chain."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not part_number:
        raise invalid("part_number", "is required")
    _check_document_quantity(quantity, signed=False)
    if not 0 <= unit_cost_fen <= MAX_UNIT_COST_FEN:
        raise invalid("unit_cost_fen", f"must be between 0 and {MAX_UNIT_COST_FEN}")
    async with new_uow() as uow:
        if (earlier := await _earlier_movement(uow)) is not None:
            return earlier
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        if not await repository.retail_prices(uow.session, [part_number]):
            raise invalid("part_number", f"no part {part_number}")
        # The level before the quota: the one lock order every posting keeps.
        await repository.lock_levels(uow.session, {(warehouse.id, part_number)})
        await _admit_into(
            uow.session, warehouse.id, quantity * unit_cost_fen, f"receipt of {part_number}"
        )
        line = MovementLine(
            warehouse.id, part_number, "receipt", quantity, unit_cost_fen, tuple(serial_numbers)
        )
        posting = _posting(auth, "receipt", document_id or _new_document_id("GRN"))
        booked = await post_movements(uow, [line], posting)
        await uow.commit(result_id=_rows_id(booked))
    return booked


async def record_adjustment(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    quantity: int,
    reason: str,
    document_id: str,
    serial_numbers: Sequence[str] = (),
) -> Posted:
    """盘盈/盘亏: found stock comes in at the warehouse's average cost (the part's standard
    cost when there is none); missing stock goes out at it. Only available stock can be
    written off: what is held for orders must be released first. A serialised part names
    its serials: found ones unknown or once missing, missing ones free in the warehouse."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not part_number:
        raise invalid("part_number", "is required")
    if not reason.strip():
        raise invalid("reason", "is required")
    _check_document_quantity(quantity, signed=True)
    async with new_uow() as uow:
        if (earlier := await _earlier_movement(uow)) is not None:
            return earlier
        session = uow.session
        warehouse = await _visible_warehouse(session, auth, warehouse_id)
        if not await repository.retail_prices(session, [part_number]):
            raise invalid("part_number", f"no part {part_number}")
        # The level before the quota (the one lock order), and the cost read under its lock.
        await repository.lock_levels(session, {(warehouse.id, part_number)})
        cost = await repository.inbound_cost(session, warehouse.id, part_number)
        if cost is None:
            raise invalid("part_number", f"no part {part_number}")
        if auth.role == "warehouse_keeper" and abs(quantity) * cost > APPROVAL_THRESHOLD_FEN:
            raise Forbidden(
                f"an adjustment worth more than {APPROVAL_THRESHOLD_FEN} fen needs a manager: "
                "record a stocktake for approval"
            )
        await _admit_into(session, warehouse.id, quantity * cost, f"adjustment of {part_number}")
        line = MovementLine(
            warehouse.id, part_number, "adjustment", quantity, cost, tuple(serial_numbers)
        )
        posting = _posting(auth, "adjustment", document_id or _new_document_id("ADJ"))
        booked = await post_movements(uow, [line], posting)
        await uow.commit(result_id=_rows_id(booked))
    return booked


WRITE_OFF_KINDS = ("scrap", "return_to_manufacturer")


async def record_write_off(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    quantity: int,
    kind: str,
    reason: str,
    document_id: str,
    serial_numbers: Sequence[str] = (),
) -> Posted:
    """报废 or 返厂: available stock leaves the chain at the warehouse's average cost; a
    serialised part names the free serials that leave."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if kind not in WRITE_OFF_KINDS:
        raise invalid("kind", f"must be one of {', '.join(WRITE_OFF_KINDS)}")
    if not part_number:
        raise invalid("part_number", "is required")
    if not reason.strip():
        raise invalid("reason", "is required")
    _check_document_quantity(quantity, signed=False)
    async with new_uow() as uow:
        if (earlier := await _earlier_movement(uow)) is not None:
            return earlier
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        if not await repository.retail_prices(uow.session, [part_number]):
            raise invalid("part_number", f"no part {part_number}")
        line = MovementLine(warehouse.id, part_number, kind, -quantity, None, tuple(serial_numbers))
        prefix = "SCR" if kind == "scrap" else "RTM"
        posting = _posting(auth, kind, document_id or _new_document_id(prefix))
        booked = await post_movements(uow, [line], posting)
        await uow.commit(result_id=_rows_id(booked))
    return booked


def _rows_id(booked: Posted) -> str:
    """The ledger rows of one document line, named for the handled-requests log."""
    ids = [movement_id for movement_id, _ in booked]
    return ",".join(map(str, ids)) if len(ids) <= 8 else f"{ids[0]}-{ids[-1]}"


async def _earlier_movement(uow: UnitOfWork) -> Posted | None:
    """The ledger rows an earlier try of this very request booked (its reply was lost). Many
    rows (a serial each) are named by their first and last id: the rows of one warehouse's
    part between them are this document's, since its level was locked while they were
    written."""
    earlier = await uow.earlier_result()
    if earlier is None:
        return None
    if "-" in earlier:
        first, last = (int(x) for x in earlier.split("-"))
        rows = await repository.movements_like(uow.session, first, last)
    else:
        rows = await repository.movements_of(uow.session, [int(x) for x in earlier.split(",")])
    if not rows:
        raise NotFound(f"movements {earlier} of an earlier try are gone")
    return [(row.id, row.movement) for row in rows]


def _new_document_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


async def list_movements(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    part_number: str,
    page_size: int,
    page_token: str,
) -> tuple[list[repository.LedgerRow], str]:
    """A warehouse's ledger, newest first, a page at a time."""
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    before = None
    if page_token:
        raw = paging.decode_page_token(page_token, 1)[0]
        if not raw.isdigit():
            raise invalid("cursor", "is not a cursor this service issued")
        before = int(raw)
    async with new_uow() as uow:
        await _visible_warehouse(uow.session, auth, warehouse_id)
        page = await repository.list_movements(
            uow.session, warehouse_id, part_number or None, size + 1, before
        )
    if len(page) > size:
        return page[:size], paging.encode_page_token(str(page[size - 1].id))
    return page, ""


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
        ledger = await repository.ledger_by_part_and_kind(uow.session, part_number or None)
        on_hand = await repository.on_hand_by_part(uow.session, part_number or None)
        in_transit = await repository.in_transit_by_part(uow.session, part_number or None)
        off = await repository.warehouses_off(uow.session, part_number or None)
        serials_off = await repository.serials_off(uow.session, part_number or None)
    return [
        conserve(
            part,
            ledger.get(part, {}),
            on_hand.get(part, 0),
            in_transit.get(part, 0),
            tuple(off.get(part, [])),
            tuple(serials_off.get(part, [])),
        )
        for part in sorted(set(ledger) | set(on_hand) | set(in_transit) | set(serials_off))
    ]


# --- Serialised items (串号) -------------------------------------------------------------------


@dataclass(frozen=True)
class SerialTrace:
    """Where a serial is now, and every ledger row that moved it, oldest first."""

    item: SerialItem
    history: list[repository.LedgerRow]


async def get_serial(new_uow: NewUow, auth: AuthContext, serial_number: str) -> SerialTrace:
    """A serial and its history, for anyone whose scope it has passed through (HQ any)."""
    if not serial_number:
        raise invalid("serial", "is required")
    async with new_uow() as uow:
        session = uow.session
        item = await repository.get_serial(session, serial_number)
        history = await repository.serial_history(session, serial_number) if item else []
        places = {x.movement.warehouse_id for x in history}
        found = await _warehouses(session, places)
    if item is None or not any(w.visible_to(auth) for w in found.values()):
        raise NotFound(f"no serial {serial_number} in your scope")
    return SerialTrace(item, history)


async def list_serials(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, part_number: str
) -> list[SerialItem]:
    """The serials in stock in a warehouse (held for an order or free), by part and serial."""
    async with new_uow() as uow:
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        return await repository.serials_in(uow.session, warehouse.id, part_number or None)


# --- Transfers (调拨) -------------------------------------------------------------------------

TRANSFER_ROLES = ("warehouse_keeper", "branch_manager", "hq_admin")
"""Who requests, ships, receives and cancels transfers (each within their scope)."""
APPROVER_ROLES = ("branch_manager", "hq_admin")


def _covers_either(auth: AuthContext, doc: Transfer, found: dict[str, Warehouse]) -> bool:
    return found[doc.from_warehouse_id].visible_to(auth) or found[doc.to_warehouse_id].visible_to(
        auth
    )


async def _transfer_in_scope(
    session: AsyncConnection, auth: AuthContext, transfer_id: str, *, lock: bool = False
) -> tuple[Transfer, dict[str, Warehouse]]:
    """A transfer either of whose warehouses the caller covers; otherwise NotFound."""
    if not transfer_id:
        raise invalid("transfer_id", "is required")
    doc = await repository.get_transfer(session, transfer_id, lock=lock)
    if doc is None:
        raise NotFound(f"no transfer {transfer_id} in your scope")
    found = await _warehouses(session, {doc.from_warehouse_id, doc.to_warehouse_id})
    if not _covers_either(auth, doc, found):
        raise NotFound(f"no transfer {transfer_id} in your scope")
    return doc, found


async def _announce_transfer(uow: UnitOfWork, doc: Transfer, where: Warehouse) -> None:
    event = inventory_events_pb2.TransferChanged(
        transfer_id=doc.id,
        from_warehouse_id=doc.from_warehouse_id,
        to_warehouse_id=doc.to_warehouse_id,
        status=doc.status,
        pending_branches=list(doc.pending_branches),
    )
    fill_meta(event.meta, where.branch_id, where.store_id)
    await uow.emit(_subject(where, "transfer_changed"), event)


async def request_transfer(
    new_uow: NewUow,
    auth: AuthContext,
    from_warehouse_id: str,
    to_warehouse_id: str,
    lines: list[tuple[str, int]],
    note: str,
    serial_numbers: Mapping[str, Sequence[str]] | None = None,
) -> Transfer:
    """调拨申请: by someone who covers either warehouse (a store asks its central, or another
    store, for parts). A serialised part's line names its serials (by part in
    `serial_numbers`), each free in the sender now."""
    require_role(auth, TRANSFER_ROLES)
    checked = transfer.check_lines(lines)
    named = serial_numbers or {}
    for i, (part_number, quantity) in enumerate(lines):
        if named.get(part_number):
            serials.check_serials(named[part_number], quantity, f"lines[{i}].serials")
    every = [s for x in named.values() for s in x]
    if len(set(every)) != len(every):
        raise invalid("lines", "each serial on one line only")
    if len(note) > 500:
        raise invalid("note", "at most 500 characters")
    if from_warehouse_id and from_warehouse_id == to_warehouse_id:
        raise invalid("to_warehouse_id", "must differ from from_warehouse_id")
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return (await _transfer_in_scope(session, auth, earlier))[0]
        found = await _warehouses(session, {from_warehouse_id, to_warehouse_id})
        for field_name, warehouse_id in (
            ("from_warehouse_id", from_warehouse_id),
            ("to_warehouse_id", to_warehouse_id),
        ):
            if warehouse_id not in found:
                raise invalid(field_name, f"no warehouse {warehouse_id}")
        sender, receiver = found[from_warehouse_id], found[to_warehouse_id]
        if not (sender.visible_to(auth) or receiver.visible_to(auth)):
            raise NotFound("neither warehouse is in your scope")
        serialised = await repository.serialised_flags(session, {p for p, _ in lines})
        items = await repository.lock_serials(session, every, lock=False)
        for i, (part_number, _) in enumerate(lines):
            if part_number not in serialised:
                raise invalid(f"lines[{i}].part_number", f"no part {part_number}")
            if serialised[part_number] and not named.get(part_number):
                raise invalid(f"lines[{i}].serials", f"{part_number} is serialised: name them")
            if named.get(part_number) and not serialised[part_number]:
                raise invalid(f"lines[{i}].serials", f"{part_number} is not serialised")
            for serial in named.get(part_number, ()):
                serials.check_free(_known(items, serial), part_number, sender.id)
        checked = tuple(replace(x, serials=tuple(named.get(x.part_number, ()))) for x in checked)
        new = Transfer(
            id=_new_document_id("TR"),
            from_warehouse_id=sender.id,
            from_branch_id=sender.branch_id,
            to_warehouse_id=receiver.id,
            to_branch_id=receiver.branch_id,
            lines=checked,
            requested_by=auth.user_id,
            requested_at=utc_now(),
            note=note,
        )
        await repository.add_transfer(session, new)
        await _announce_transfer(uow, new, sender)
        await uow.commit(result_id=new.id)
    return new


async def approve_transfer(new_uow: NewUow, auth: AuthContext, transfer_id: str) -> Transfer:
    """审批: a branch manager approves for their branch, HQ for every branch still pending."""
    require_role(auth, APPROVER_ROLES)
    async with new_uow() as uow:
        session = uow.session
        if await uow.earlier_result() is not None:
            return (await _transfer_in_scope(session, auth, transfer_id))[0]
        before, found = await _transfer_in_scope(session, auth, transfer_id, lock=True)
        after = transfer.approve(before, auth.branch_id)
        granted = [b for b in after.approved_branches if b not in before.approved_branches]
        if granted:
            await repository.add_approvals(session, before.id, granted, auth.user_id, utc_now())
            await repository.save_transfer(session, after)
            await _announce_transfer(uow, after, found[after.from_warehouse_id])
            await uow.commit(result_id=after.id)
    return after


async def _move_transfer(
    new_uow: NewUow,
    auth: AuthContext,
    transfer_id: str,
    side: str,
    step: Callable[
        [Transfer, dict[str, StockLevel], Posting],
        tuple[Transfer, dict[str, StockLevel], list[Booked]],
    ],
) -> Transfer:
    """Ship or receive under the locks (the side's stock levels, then the transfer), and book,
    save and announce in one transaction. Only someone who covers that side's warehouse may."""
    require_role(auth, TRANSFER_ROLES)
    async with new_uow() as uow:
        session = uow.session
        if await uow.earlier_result() is not None:
            return (await _transfer_in_scope(session, auth, transfer_id))[0]
        unlocked, found = await _transfer_in_scope(session, auth, transfer_id)
        warehouse = found[getattr(unlocked, f"{side}_warehouse_id")]
        if not warehouse.visible_to(auth):
            raise Forbidden(f"only {warehouse.id} can do this to transfer {transfer_id}")
        keys = {(warehouse.id, x.part_number) for x in unlocked.lines}
        levels = await repository.lock_levels(session, keys)
        before, _ = await _transfer_in_scope(session, auth, transfer_id, lock=True)
        posting = _posting(auth, "transfer", before.id)
        by_part = {part: levels[(warehouse.id, part)] for _, part in keys}
        after, changed, booked = step(before, by_part, posting)
        if side == "from" and after.status == "shipped" and before.status != "shipped":
            value = sum(x.quantity * x.unit_cost_fen for x in after.lines)
            await _admit_into(session, after.to_warehouse_id, value, f"transfer {after.id}")
        if after != before:
            named = {s for x in after.lines for s in x.serials}
            items = await repository.lock_serials(session, named)
            booked, moved = _serials_of_transfer(after, booked, items, warehouse.id)
            await repository.save_levels(session, list(changed.values()))
            await repository.save_serials(session, list(moved.values()), posting.occurred_at)
            await repository.save_transfer(session, after)
            await _record(uow, {warehouse.id: warehouse}, booked)
            await _announce_transfer(uow, after, warehouse)
            await uow.commit(result_id=after.id)
    return after


def _known(items: Mapping[str, SerialItem], serial: str) -> SerialItem:
    if serial not in items:
        raise Conflict(f"serial {serial} is not known to the chain")
    return items[serial]


def _serials_of_transfer(
    doc: Transfer, booked: list[Booked], items: Mapping[str, SerialItem], warehouse_id: str
) -> tuple[list[Booked], dict[str, SerialItem]]:
    """A transfer step's serials: shipped ones in transit on it, arrived ones in the receiver,
    the short ones then written off missing and the damaged ones scrapped; and its ledger
    rows split one per serial."""
    lines = {x.part_number: x for x in doc.lines if x.serials}
    rows: list[Booked] = []
    moved: dict[str, SerialItem] = {}
    for movement, level in booked:
        line = lines.get(movement.part_number)
        if line is None:
            rows.append((movement, level))
            continue
        part = line.part_number
        names: tuple[str, ...] = line.serials
        if movement.kind == "transfer_out":
            for serial in names:
                moved[serial] = serials.ship(_known(items, serial), part, warehouse_id, doc.id)
        elif movement.kind == "transfer_in":
            for serial in names:
                moved[serial] = serials.arrive(
                    _known(items, serial), doc.id, warehouse_id, movement.unit_cost_fen
                )
        else:
            names = (*line.short_serials, *line.damaged_serials)
            for serial in line.short_serials:
                moved[serial] = serials.write_off(moved[serial], part, warehouse_id, "adjustment")
            for serial in line.damaged_serials:
                moved[serial] = serials.write_off(moved[serial], part, warehouse_id, "scrap")
        rows += by_serial(movement, level, names)
    return rows, moved


async def ship_transfer(new_uow: NewUow, auth: AuthContext, transfer_id: str) -> Transfer:
    """发货: out of the sender's available stock into transit, at the sender's average cost."""
    return await _move_transfer(new_uow, auth, transfer_id, "from", transfer.ship)


async def receive_transfer(
    new_uow: NewUow,
    auth: AuthContext,
    transfer_id: str,
    discrepancies: dict[str, tuple[int, int]],
    missing_serials: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None,
) -> Transfer:
    """收货: into the receiver at the transfer's cost; short and damaged units written off.
    A serialised part's short and damaged units are named (by part in `missing_serials`, as
    short, damaged): the short written off missing, the damaged scrapped."""
    named = missing_serials or {}

    def receive(
        before: Transfer, levels: dict[str, StockLevel], posting: Posting
    ) -> tuple[Transfer, dict[str, StockLevel], list[Booked]]:
        counts = dict(discrepancies)
        lines = {x.part_number: x for x in before.lines}
        for i, (part, (short, damaged)) in enumerate(named.items()):
            if not short and not damaged:
                continue
            on_it = set(lines[part].serials) if part in lines else set()
            for field_name, names in (("short_serials", short), ("damaged_serials", damaged)):
                for j, serial in enumerate(names):
                    if serial not in on_it:
                        raise invalid(
                            f"discrepancies[{i}].{field_name}[{j}]",
                            f"serial {serial} is not on the transfer for part {part}",
                        )
            if len({*short, *damaged}) != len(short) + len(damaged):
                raise invalid(f"discrepancies[{i}]", "each serial once, short or damaged")
            if counts.get(part, (0, 0)) not in ((0, 0), (len(short), len(damaged))):
                raise invalid(f"discrepancies[{i}]", "short and damaged count the serials named")
            counts[part] = (len(short), len(damaged))
        for part, (short_count, damaged_count) in counts.items():
            line = lines.get(part)
            unnamed = not any(named.get(part, ((), ())))
            if line is not None and line.serials and (short_count or damaged_count) and unnamed:
                raise invalid("discrepancies", f"name the serials of {part} short or damaged")
        after, changed, booked = transfer.receive_goods(before, levels, counts, posting)
        if after is not before and after.status == "received" and before.status != "received":
            after = replace(
                after,
                lines=tuple(
                    replace(
                        x,
                        short_serials=tuple(named.get(x.part_number, ((), ()))[0]),
                        damaged_serials=tuple(named.get(x.part_number, ((), ()))[1]),
                    )
                    for x in after.lines
                ),
            )
        return after, changed, booked

    return await _move_transfer(new_uow, auth, transfer_id, "to", receive)


async def cancel_transfer(new_uow: NewUow, auth: AuthContext, transfer_id: str) -> Transfer:
    """Called off before it ships."""
    require_role(auth, TRANSFER_ROLES)
    async with new_uow() as uow:
        session = uow.session
        if await uow.earlier_result() is not None:
            return (await _transfer_in_scope(session, auth, transfer_id))[0]
        before, found = await _transfer_in_scope(session, auth, transfer_id, lock=True)
        after = transfer.cancel(before, utc_now())
        if after != before:
            await repository.save_transfer(session, after)
            await _announce_transfer(uow, after, found[after.from_warehouse_id])
            await uow.commit(result_id=after.id)
    return after


async def get_transfer(new_uow: NewUow, auth: AuthContext, transfer_id: str) -> Transfer:
    async with new_uow() as uow:
        found, _ = await _transfer_in_scope(uow.session, auth, transfer_id)
    return found


# --- Franchise quota (额度) -------------------------------------------------------------------

QUOTA_SETTER_ROLES = ("branch_manager", "hq_admin")


async def _admit_into(
    session: AsyncConnection, warehouse_id: str, adding_fen: int, what: str
) -> None:
    """Refuse a movement that would take a franchised store over its quota. The quota row is
    locked (after the stock levels), so movements into one store are checked in turn."""
    if adding_fen <= 0:
        return
    use = await repository.quota_use(session, warehouse_id, lock=True)
    if use is not None:
        quota.admit(use, adding_fen, what)


async def set_quota(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, quota_fen: int
) -> QuotaUse:
    """额度: a franchised store's quota, set by its branch (or HQ). Setting it below what is
    already used is allowed: nothing more comes in until the store is back within it."""
    require_role(auth, QUOTA_SETTER_ROLES)
    quota.check_quota(quota_fen)
    async with new_uow() as uow:
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        if not warehouse.franchised:
            raise invalid("warehouse_id", f"{warehouse_id} is not a franchised store's")
        await repository.set_quota(uow.session, warehouse.id, quota_fen, auth.user_id, utc_now())
        use = await repository.quota_use(uow.session, warehouse.id)
        await _announce_document(uow, warehouse, "quota", warehouse.id)
        await uow.commit()
    assert use is not None  # just written
    return use


async def get_quota(new_uow: NewUow, auth: AuthContext, warehouse_id: str) -> QuotaUse:
    """The quota's use, for the store and its branch."""
    async with new_uow() as uow:
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        use = await repository.quota_use(uow.session, warehouse.id)
    if use is None:
        raise NotFound(f"no quota for {warehouse_id}")
    return use


# --- Old-part returns (旧件返还) --------------------------------------------------------------


@dataclass(frozen=True)
class OldPartBatch:
    id: str
    warehouse_id: str
    document_id: str
    lines: list[OldPartLine]
    created_by: str
    created_at: datetime


async def list_old_parts_owed(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, overdue_only: bool
) -> list[OrderPartLine]:
    """What a warehouse owes the manufacturers, line by line, oldest first; or only what is
    overdue."""
    async with new_uow() as uow:
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        lines = await repository.lines_owing_old_parts(uow.session, warehouse.id)
    if overdue_only:
        now = utc_now()
        return [x for x in lines if old_parts.overdue(x, now)]
    return lines


async def return_old_parts(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    batch: Sequence[OldPartLine],
    document_id: str,
) -> OldPartBatch:
    """A batch of old parts goes back to the manufacturer, each matched to the line it
    settles; the lines it names owe that much less."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return await _old_part_batch(session, earlier)
        warehouse = await _visible_warehouse(session, auth, warehouse_id)
        owing = await repository.lines_owing_old_parts(session, warehouse.id, lock=True)
        settled = old_parts.match(batch, {(x.order_id, x.line_id): x for x in owing})
        now = utc_now()
        done = OldPartBatch(
            id=_new_document_id("OPR"),
            warehouse_id=warehouse.id,
            document_id=document_id,
            lines=list(batch),
            created_by=auth.user_id,
            created_at=now,
        )
        await repository.save_lines(session, settled, now)
        await repository.add_old_part_batch(
            session, done.id, warehouse.id, document_id, batch, auth.user_id, now
        )
        await _announce_document(uow, warehouse, "old_part_return", done.id)
        await uow.commit(result_id=done.id)
    return done


async def _old_part_batch(session: AsyncConnection, batch_id: str) -> OldPartBatch:
    found = await repository.get_old_part_batch(session, batch_id)
    if found is None:
        raise NotFound(f"old-part batch {batch_id} of an earlier try is gone")
    header, lines = found
    return OldPartBatch(
        id=batch_id,
        warehouse_id=str(header.warehouse_id),
        document_id=str(header.document_id),
        lines=lines,
        created_by=str(header.created_by),
        created_at=as_utc(header.created_at),
    )


# --- Slow-moving stock (滞销品) ---------------------------------------------------------------

MAX_SLOW_MOVING_DAYS = 3650
SLOW_MOVING_LIMIT = 500


async def list_slow_moving(
    new_uow: NewUow, auth: AuthContext, days: int, warehouse_id: str
) -> list[repository.SlowMoving]:
    """Parts on hand that nothing took out (issue, transfer, scrap, return to the
    manufacturer) for `days`, most value first: over the caller's scope (HQ the chain, a
    branch its warehouses, a store its own), or one warehouse in it."""
    if not 0 < days <= MAX_SLOW_MOVING_DAYS:
        raise invalid("days", f"must be 1 to {MAX_SLOW_MOVING_DAYS}")
    async with new_uow() as uow:
        session = uow.session
        if warehouse_id:
            ids = [(await _visible_warehouse(session, auth, warehouse_id)).id]
        else:
            scope = await repository.list_warehouses(session, auth.branch_id, auth.store_id)
            ids = [w.id for w in scope]
        since = utc_now() - timedelta(days=days)
        return await repository.slow_moving(session, ids, since, SLOW_MOVING_LIMIT)


# --- Stocktake (盘点) -------------------------------------------------------------------------


async def _post_stocktake(uow: UnitOfWork, doc: Stocktake) -> None:
    """Each difference becomes an adjustment at the average cost when counted; a serialised
    part's missing serials go out and its found ones come in, one by one."""
    lines = []
    for x in doc.lines:
        part, cost = x.part_number, x.unit_cost_fen
        if x.missing_serials:
            missing = x.missing_serials
            lines.append(
                MovementLine(doc.warehouse_id, part, "adjustment", -len(missing), cost, missing)
            )
        if x.found_serials:
            found = x.found_serials
            lines.append(
                MovementLine(doc.warehouse_id, part, "adjustment", len(found), cost, found)
            )
        if x.difference and not (x.missing_serials or x.found_serials):
            lines.append(MovementLine(doc.warehouse_id, part, "adjustment", x.difference, cost))
    await post_movements(uow, lines, Posting("stocktake", doc.id, utc_now(), doc.decided_by or ""))


async def record_stocktake(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    counts: list[tuple[str, int]],
    serial_numbers: Mapping[str, Sequence[str]] | None = None,
) -> Stocktake:
    """盘点: the counts against the book now. Differences within the approval threshold are
    posted at once; larger ones wait for a manager. A serialised part is counted serial by
    serial (by part in `serial_numbers`): the book's serials not seen are missing, the ones
    seen that the book does not have are found."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    stocktake.check_counts(counts)
    named = serial_numbers or {}
    for i, (part_number, counted) in enumerate(counts):
        if named.get(part_number):
            serials.check_serials(named[part_number], counted, f"lines[{i}].serials")
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return await _stocktake_in_scope(session, auth, earlier)
        warehouse = await _visible_warehouse(session, auth, warehouse_id)
        serialised = await repository.serialised_flags(session, {p for p, _ in counts})
        for i, (part_number, _) in enumerate(counts):
            if part_number not in serialised:
                raise invalid(f"lines[{i}].part_number", f"no part {part_number}")
            if serialised[part_number] and counted and not named.get(part_number):
                raise invalid(f"lines[{i}].serials", f"{part_number} is counted by serial")
            if named.get(part_number) and not serialised[part_number]:
                raise invalid(f"lines[{i}].serials", f"{part_number} is not serialised")
        levels = await repository.lock_levels(session, {(warehouse.id, p) for p, _ in counts})
        book = {part: level for (_, part), level in levels.items()}
        counted_lines = []
        for line in stocktake.count(counts, book):
            if serialised[line.part_number]:
                on_book = await repository.serials_in(session, warehouse.id, line.part_number)
                line = stocktake.serial_findings(
                    line, [x.serial_number for x in on_book], named.get(line.part_number, ())
                )
            counted_lines.append(line)
        now = utc_now()
        doc = Stocktake(
            id=_new_document_id("ST"),
            warehouse_id=warehouse.id,
            lines=tuple(counted_lines),
            counted_by=auth.user_id,
            counted_at=now,
        )
        if not doc.needs_approval:
            doc = stocktake.decide(doc, True, auth.user_id, now)
        await repository.add_stocktake(session, doc)
        if doc.status == "posted":
            await _post_stocktake(uow, doc)
        await _announce_document(uow, warehouse, "stocktake", doc.id, doc.status)
        await uow.commit(result_id=doc.id)
    return doc


async def decide_stocktake(
    new_uow: NewUow, auth: AuthContext, stocktake_id: str, approve: bool
) -> Stocktake:
    """A manager approves (the differences are posted) or rejects a stocktake that waits."""
    require_role(auth, APPROVER_ROLES)
    async with new_uow() as uow:
        session = uow.session
        before = await _stocktake_in_scope(session, auth, stocktake_id)
        if await uow.earlier_result() is not None:
            return before
        await repository.lock_levels(
            session, {(before.warehouse_id, x.part_number) for x in before.lines}
        )
        locked = await repository.get_stocktake(session, stocktake_id, lock=True)
        assert locked is not None  # it was there a moment ago and is never deleted
        after = stocktake.decide(locked, approve, auth.user_id, utc_now())
        if after != locked:
            await repository.save_stocktake(session, after)
            if after.status == "posted":
                await _post_stocktake(uow, after)
            warehouse = await _visible_warehouse(session, auth, after.warehouse_id)
            await _announce_document(uow, warehouse, "stocktake", after.id, after.status)
            await uow.commit(result_id=after.id)
    return after


async def _stocktake_in_scope(
    session: AsyncConnection, auth: AuthContext, stocktake_id: str
) -> Stocktake:
    if not stocktake_id:
        raise invalid("stocktake_id", "is required")
    doc = await repository.get_stocktake(session, stocktake_id)
    warehouse = await repository.get_warehouse(session, doc.warehouse_id) if doc else None
    if doc is None or warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no stocktake {stocktake_id} in your scope")
    return doc


async def get_stocktake(new_uow: NewUow, auth: AuthContext, stocktake_id: str) -> Stocktake:
    async with new_uow() as uow:
        return await _stocktake_in_scope(uow.session, auth, stocktake_id)


# --- Purchasing (采购) ------------------------------------------------------------------------

DEFAULT_CONSUMPTION_WINDOW_DAYS = 30
MAX_CONSUMPTION_WINDOW_DAYS = 365
MAX_PURCHASE_LINES = 200


async def set_reorder_level(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, level: purchasing.ReorderLevel
) -> purchasing.ReorderLevel:
    require_role(auth, STOCK_DOCUMENT_ROLES)
    purchasing.check_level(level)
    async with new_uow() as uow:
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        if not await repository.retail_prices(uow.session, [level.part_number]):
            raise invalid("part_number", f"no part {level.part_number}")
        await repository.set_reorder_level(uow.session, warehouse.id, level)
        await uow.commit()
    return level


async def suggest_reorders(
    new_uow: NewUow, auth: AuthContext, warehouse_id: str, window_days: int
) -> list[purchasing.Suggestion]:
    """采购参考: the parts with a reorder level that need ordering now, and how many."""
    window = window_days or DEFAULT_CONSUMPTION_WINDOW_DAYS
    if not 0 < window <= MAX_CONSUMPTION_WINDOW_DAYS:
        raise invalid("window_days", f"must be 1 to {MAX_CONSUMPTION_WINDOW_DAYS}")
    async with new_uow() as uow:
        warehouse = await _visible_warehouse(uow.session, auth, warehouse_id)
        since = utc_now() - timedelta(days=window)
        positions = await repository.reorder_positions(uow.session, warehouse.id, since)
    suggestions = [
        purchasing.suggest(x.level, x.available, x.in_transit, x.on_order, x.consumed, window)
        for x in positions
    ]
    return [x for x in suggestions if x.quantity > 0]


async def create_purchase_order(
    new_uow: NewUow,
    auth: AuthContext,
    warehouse_id: str,
    supplier: str,
    lines: list[purchasing.PurchaseLine],
) -> purchasing.PurchaseOrder:
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not supplier.strip() or len(supplier) > 100:
        raise invalid("supplier", "is required, at most 100 characters")
    if not lines or len(lines) > MAX_PURCHASE_LINES:
        raise invalid("lines", f"1 to {MAX_PURCHASE_LINES}")
    if len({x.part_number for x in lines}) != len(lines):
        raise invalid("lines", "each part once")
    for i, line in enumerate(lines):
        if not 0 < line.quantity <= MAX_DOCUMENT_QUANTITY:
            raise invalid(f"lines[{i}].quantity", f"must be 1 to {MAX_DOCUMENT_QUANTITY}")
        if not 0 <= line.unit_cost_fen <= MAX_UNIT_COST_FEN:
            raise invalid(f"lines[{i}].unit_cost_fen", f"must be 0 to {MAX_UNIT_COST_FEN}")
    async with new_uow() as uow:
        session = uow.session
        if (earlier := await uow.earlier_result()) is not None:
            return await _purchase_order_in_scope(session, auth, earlier)
        warehouse = await _visible_warehouse(session, auth, warehouse_id)
        serialised = await repository.serialised_flags(session, {x.part_number for x in lines})
        for i, line in enumerate(lines):
            if serialised.get(line.part_number) is not False:
                raise invalid(f"lines[{i}].part_number", f"no stocked part {line.part_number}")
        order = purchasing.PurchaseOrder(
            id=_new_document_id("PO"),
            warehouse_id=warehouse.id,
            supplier=supplier,
            lines=tuple(replace(x, received=0) for x in lines),
            created_by=auth.user_id,
            created_at=utc_now(),
        )
        await repository.add_purchase_order(session, order)
        await _announce_document(uow, warehouse, "purchase_order", order.id, order.status)
        await uow.commit(result_id=order.id)
    return order


async def receive_purchase_order(
    new_uow: NewUow, auth: AuthContext, order_id: str, quantities: dict[str, int]
) -> purchasing.PurchaseOrder:
    """到货入库: what came in enters stock as receipts at the order's unit cost."""
    require_role(auth, STOCK_DOCUMENT_ROLES)
    if not order_id:
        raise invalid("purchase_order_id", "is required")
    async with new_uow() as uow:
        session = uow.session
        if await uow.earlier_result() is not None:
            return await _purchase_order_in_scope(session, auth, order_id)
        before = await _purchase_order_in_scope(session, auth, order_id)
        warehouse = await repository.get_warehouse(session, before.warehouse_id)
        assert warehouse is not None  # a purchase order's warehouse is never deleted
        await repository.lock_levels(session, {(warehouse.id, x.part_number) for x in before.lines})
        locked = await repository.get_purchase_order(session, order_id, lock=True)
        assert locked is not None  # it was there a moment ago and is never deleted
        after = purchasing.receive_lines(locked, quantities)
        came = {
            x.part_number: x.received - y.received
            for x, y in zip(after.lines, locked.lines, strict=True)
            if x.received != y.received
        }
        value = sum(
            came[x.part_number] * x.unit_cost_fen for x in after.lines if x.part_number in came
        )
        await _admit_into(session, warehouse.id, value, f"purchase order {order_id}")
        receipts = [
            MovementLine(
                warehouse.id, x.part_number, "receipt", came[x.part_number], x.unit_cost_fen
            )
            for x in after.lines
            if x.part_number in came
        ]
        await post_movements(uow, receipts, _posting(auth, "purchase_order", order_id))
        await repository.save_purchase_order(session, after)
        await _announce_document(uow, warehouse, "purchase_order", after.id, after.status)
        await uow.commit(result_id=after.id)
    return after


async def _purchase_order_in_scope(
    session: AsyncConnection, auth: AuthContext, order_id: str
) -> purchasing.PurchaseOrder:
    found = await repository.get_purchase_order(session, order_id)
    warehouse = await repository.get_warehouse(session, found.warehouse_id) if found else None
    if found is None or warehouse is None or not warehouse.visible_to(auth):
        raise NotFound(f"no purchase order {order_id} in your scope")
    return found
