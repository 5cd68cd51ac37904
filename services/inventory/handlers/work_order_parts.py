"""Parts for work orders (工单用料): reserve, issue, release and return an order's parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, NotFound, invalid
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import holds as held_by
from services.inventory.adapters.repository import order_parts as order_parts_db
from services.inventory.adapters.repository import serials as serials_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.adapters.repository import transfers as transfers_db
from services.inventory.adapters.repository import warehouses as warehouses_db
from services.inventory.domain import holds, order_parts, serials, transfer
from services.inventory.domain.catalog import current_successor, successor_chain
from services.inventory.domain.events import OrderPartsChanged
from services.inventory.domain.holds import Attempt, Claim
from services.inventory.domain.order_parts import OrderPartLine
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import Movement, Posting, StockLevel, by_serial
from services.inventory.domain.transfer import Transfer
from services.inventory.domain.warehouse import Warehouse
from services.inventory.handlers import common, transfers
from services.inventory.handlers.common import NewUow

ORDER_PARTS_ROLES = ("clerk", "technician", "warehouse_keeper", "branch_manager", "hq_admin")
"""Who works on an order's parts (through orders, which passes their token on)."""


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
    lines = await order_parts_db.order_lines(session, order_id)
    by_line: dict[str, tuple[str, ...]] = {}
    for item in await serials_db.serials_of_lines(session, order_id):
        by_line[str(item.line_id)] = (*by_line.get(str(item.line_id), ()), item.serial_number)
    return OrderParts(order_id, warehouse_id, lines, by_line, offers or {})


async def _announce_lines(
    uow: UnitOfWork,
    warehouse: Warehouse,
    order_id: str,
    action: str,
    lines: Sequence[OrderPartLine],
) -> None:
    common.announce(uow, warehouse, OrderPartsChanged(order_id, action, tuple(lines)))


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
    attempt: Attempt | None = None,
) -> OrderParts:
    """预留: hold each line's parts in the order's warehouse, as many as are available; the
    rest is reported short. Asking again for a line already held changes nothing (a short
    line takes what has come in since). A serialised part's line holds serials: the ones it
    names (each must be free there), or any free ones.

    替代料: a short line whose part is superseded is offered the part that replaces it now
    (the end of its chain) with what is available of it; asking again for the line with that
    successor (or any part down the chain) lets the old hold go and reserves the successor.

    Each line is claimed by `attempt` (None: by the order outright), so that undoing the attempt
    lets go only of what no other attempt claims (domain/holds.py).

    The stock levels are locked first (SELECT ... FOR UPDATE on PostgreSQL, the writer turn on
    SQLite), then the order's lines, then serials: two orders after the last unit are served
    one after the other, and the second finds it gone."""
    require_role(auth, ORDER_PARTS_ROLES)
    _check_order_id(order_id)
    _check_requests(requested)
    async with new_uow() as uow:
        session = uow.session
        warehouse = await common.visible_warehouse(session, auth, warehouse_id)
        prices = await catalog_db.retail_prices(session, {x.part_number for x in requested})
        for i, line in enumerate(requested):
            if line.part_number not in prices:
                raise invalid(f"lines[{i}].part_id", f"no part {line.part_number}")
        successors = await catalog_db.successors(session)
        first_read = {x.line_id: x for x in await order_parts_db.order_lines(session, order_id)}
        switching = {
            x.line_id: first_read[x.line_id].part_number
            for x in requested
            if x.line_id in first_read
            and x.part_number in successor_chain(first_read[x.line_id].part_number, successors)
        }
        keys = {(warehouse.id, x.part_number) for x in requested}
        keys |= {(warehouse.id, part) for part in switching.values()}
        flags = await catalog_db.serialised_flags(session, {p for _, p in keys})
        for i, line in enumerate(requested):
            if line.serials and not flags[line.part_number]:
                raise invalid(f"lines[{i}].serials", f"{line.part_number} is not serialised")
        levels = await stock_db.lock_levels(session, keys)
        existing = {
            x.line_id: x for x in await order_parts_db.order_lines(session, order_id, lock=True)
        }
        if existing and next(iter(existing.values())).warehouse_id != warehouse.id:
            raise Conflict(f"order {order_id} takes its parts from another warehouse")
        if any(existing[x].part_number != part for x, part in switching.items()):
            raise Conflict(f"the parts of order {order_id} changed meanwhile; try again")
        linked = _by_line(await serials_db.serials_of_lines(session, order_id, lock=True))
        named = await serials_db.lock_serials(session, {s for x in requested for s in x.serials})
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
        now = utc_now()
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
            await stock_db.save_levels(session, list(levels.values()))
            try:
                await order_parts_db.add_lines(session, new_lines, now)
            except IntegrityError as error:
                # The same new line reserved at the same moment for another part: one wins.
                raise Conflict(f"order {order_id} was reserved concurrently; try again") from error
            await order_parts_db.save_lines(session, changed, now)
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
            await serials_db.save_serials(session, list(moved.values()), now)
            await _announce_lines(uow, warehouse, order_id, "reserve", [*new_lines, *changed])
            await _request_shortfall(uow, auth, warehouse, order_id, new_lines, flags)
        now_held = existing | {x.line_id: x for x in [*new_lines, *changed]}
        claims = holds.claims_for(
            attempt,
            order_id,
            [now_held[x.line_id] for x in requested],
            existing,
            await held_by.claims_of(session, order_id),
            now,
        )
        await held_by.add_claims(session, claims)
        if new_lines or changed or claims:
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
    for line in await order_parts_db.order_lines(session, order_id):
        successor = current_successor(line.part_number, successors)
        if line.status != "short" or successor is None:
            continue
        rows = await stock_db.stock_in(session, warehouse_id, successor)
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
        free = await serials_db.free_serials(
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
    central = await warehouses_db.central_warehouse(uow.session, warehouse.branch_id)
    if central is None:
        return
    doc = Transfer(
        id=common.new_document_id("TR"),
        from_warehouse_id=central.id,
        from_branch_id=central.branch_id,
        to_warehouse_id=warehouse.id,
        to_branch_id=warehouse.branch_id,
        lines=transfer.check_lines(sorted(short.items())),
        requested_by=auth.user_id,
        requested_at=utc_now(),
        note=f"order {order_id} short of parts",
    )
    await transfers_db.add_transfer(uow.session, doc)
    await transfers.announce_transfer(uow, doc, central)


async def _order_in_scope(
    session: AsyncConnection, auth: AuthContext, order_id: str
) -> tuple[Warehouse, list[OrderPartLine]]:
    """An order's lines (unlocked) and its warehouse; none, or outside the caller's scope, is
    NotFound."""
    _check_order_id(order_id)
    lines = await order_parts_db.order_lines(session, order_id)
    warehouse = await warehouses_db.get_warehouse(session, lines[0].warehouse_id) if lines else None
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


@dataclass(frozen=True)
class Claiming:
    """What a change does to the claims on the lines (domain/holds.py)."""

    attempt: Attempt | None = None
    """The attempt that claims the lines it changed (an issue)."""
    clear: bool = False
    """The order let the lines go itself: no claim on a released line stays."""
    dropping: Callable[[Sequence[Claim]], list[Claim]] | None = None
    """The claims that go (an undo, an attempt never written): only the lines that lose
    their last claim are changed."""


ChangeRule = Callable[
    [StockLevel, OrderPartLine, Posting], tuple[StockLevel, OrderPartLine, Movement | None]
]


async def _change_lines(
    new_uow: NewUow,
    auth: AuthContext,
    order_id: str,
    line_ids: Sequence[str],
    action: str,
    change: ChangeRule,
    back: Sequence[str] = (),
    claiming: Claiming = Claiming(),
) -> OrderParts:
    """Apply one rule to the chosen lines of an order in the caller's scope, in one
    transaction (`change_held`)."""
    require_role(auth, ORDER_PARTS_ROLES)
    async with new_uow() as uow:
        session = uow.session
        warehouse, _ = await _order_in_scope(session, auth, order_id)
        if await uow.earlier_result() is not None:
            return await _order_parts(session, order_id, warehouse.id)
        posting = common.posting(auth, "order", order_id)
        if await change_held(
            uow, warehouse, order_id, line_ids, action, change, posting, back, claiming
        ):
            await uow.commit(result_id=order_id)
        return await _order_parts(session, order_id, warehouse.id)


async def change_held(
    uow: UnitOfWork,
    warehouse: Warehouse,
    order_id: str,
    line_ids: Sequence[str],
    action: str,
    change: ChangeRule,
    posting: Posting,
    back: Sequence[str] = (),
    claiming: Claiming = Claiming(),
) -> bool:
    """Apply one rule to the chosen lines of an order under the locks (levels, lines, then
    serials, then the lines' claims), and book, save and announce what changed, for the
    caller to commit; whether anything did. A serialised part's serials follow its line, and
    its movement is booked one row per serial."""
    session = uow.session
    unlocked = await order_parts_db.order_lines(session, order_id)
    levels = await stock_db.lock_levels(session, {(warehouse.id, x.part_number) for x in unlocked})
    # Read again under the locks: a concurrent call may have changed them meanwhile.
    current = await order_parts_db.order_lines(session, order_id, lock=True)
    if any((warehouse.id, x.part_number) not in levels for x in current):
        # A line for another part was added since the first read: its level is not locked.
        raise Conflict(f"the parts of order {order_id} changed meanwhile; try again")
    flags = await catalog_db.serialised_flags(session, {x.part_number for x in current})
    linked = _by_line(await serials_db.serials_of_lines(session, order_id, lock=True))
    claims = await held_by.claims_of(session, order_id)
    dropped: list[Claim] = []
    if claiming.dropping is not None:
        # An undo names the lines it asked for: one that was never made has nothing to undo.
        known = {x.line_id for x in current}
        asked = [x for x in line_ids if x in known]
        chosen = _chosen(current, asked) if asked or not line_ids else []
        named = {x.line_id for x in chosen}
        dropped = [x for x in claiming.dropping(claims) if x.line_id in named]
        gone = holds.let_go(claims, dropped)
        chosen = [x for x in chosen if x.line_id in gone]
    else:
        chosen = _chosen(current, line_ids)
    changed, after_lines, booked = [], [], []
    moved: dict[str, SerialItem] = {}
    for line in chosen:
        key = (warehouse.id, line.part_number)
        levels[key], after, movement = change(levels[key], line, posting)
        after_lines.append(after)
        if after != line:
            changed.append(after)
        if flags[line.part_number]:
            found, named_serials = await _follow_serials(
                session, after, linked.get(line.line_id, []), movement, back=back
            )
            moved |= found
            if movement is not None:
                booked += by_serial(movement, levels[key], named_serials)
        elif movement is not None:
            booked.append((movement, levels[key]))
    added = []
    if claiming.attempt is not None:
        before = {x.line_id: x for x in current}
        added = holds.claims_for(
            claiming.attempt, order_id, after_lines, before, claims, posting.occurred_at
        )
    cleared = [x.line_id for x in after_lines if claiming.clear and x.status == "released"]
    await held_by.drop_claims(session, dropped)
    await held_by.drop_line_claims(session, order_id, cleared)
    await held_by.add_claims(session, added)
    if changed:
        await stock_db.save_levels(session, list(levels.values()))
        await order_parts_db.save_lines(session, changed, posting.occurred_at)
        await serials_db.save_serials(session, list(moved.values()), posting.occurred_at)
        await common.record(uow, {warehouse.id: warehouse}, booked)
        announced: dict[str, list[OrderPartLine]] = {}
        for x in changed:
            named_action = "release" if x.status == "released" else action
            announced.setdefault(named_action, []).append(x)
        for name, group in announced.items():
            await _announce_lines(uow, warehouse, order_id, name, group)
    return bool(changed or dropped or cleared or added)


def undo(
    level: StockLevel, line: OrderPartLine, posting: Posting
) -> tuple[StockLevel, OrderPartLine, Movement | None]:
    """What no attempt claims any more goes back: a hold is let go, an issue comes back."""
    if line.open:
        return (*order_parts.release(level, line), None)
    outstanding = line.issued - line.returned - line.old_returned
    if line.status == "issued" and outstanding > 0:
        return order_parts.give_back(level, line, outstanding, posting)
    return level, line, None


async def issue_parts(
    new_uow: NewUow,
    auth: AuthContext,
    order_id: str,
    line_ids: Sequence[str],
    attempt: Attempt | None = None,
) -> OrderParts:
    """领料: the held parts leave the warehouse into the order at the moving-average cost (a
    ledger "issue" each; a serial each for a serialised part, recorded on the line). A line
    is never issued twice; a short one is a Conflict. With an attempt, the issue is claimed
    by it, so that undoing it gives back only what no other attempt claims."""
    claiming = Claiming(attempt=attempt)
    return await _change_lines(
        new_uow, auth, order_id, line_ids, "issue", order_parts.issue, claiming=claiming
    )


def release_rule(
    level: StockLevel, line: OrderPartLine, _posting: Posting
) -> tuple[StockLevel, OrderPartLine, Movement | None]:
    """An open line's hold is let go; issued, returned and released lines stay as they are."""
    return (*order_parts.release(level, line), None)


async def release_parts(
    new_uow: NewUow,
    auth: AuthContext,
    order_id: str,
    line_ids: Sequence[str],
    attempt: Attempt | None = None,
) -> OrderParts:
    """The holds of lines not issued are let go (their serials free again), with every claim
    on them.

    With an attempt it is that attempt's undo: its claims on the lines go, and only a line no
    other attempt claims is let go (a hold released, an issue given back). A line the attempt
    never claimed is left as it is."""
    if attempt is None:
        return await _change_lines(
            new_uow,
            auth,
            order_id,
            line_ids,
            "release",
            release_rule,
            claiming=Claiming(clear=True),
        )

    def mine(claims: Sequence[Claim]) -> list[Claim]:
        return [x for x in claims if x.attempt_id == attempt.id]

    return await _change_lines(
        new_uow, auth, order_id, line_ids, "return", undo, claiming=Claiming(dropping=mine)
    )


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
