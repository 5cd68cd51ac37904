"""Transfers (调拨) between warehouses: request, approve, ship, receive, cancel."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, FieldError, Forbidden, NotFound, invalid
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.inventory.adapters.repository import catalog as catalog_db
from services.inventory.adapters.repository import serials as serials_db
from services.inventory.adapters.repository import stock as stock_db
from services.inventory.adapters.repository import transfers as transfers_db
from services.inventory.domain import serials, transfer
from services.inventory.domain.events import TransferChanged
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import Posting, StockLevel, by_serial
from services.inventory.domain.transfer import Transfer
from services.inventory.domain.warehouse import Warehouse
from services.inventory.handlers import common, quotas
from services.inventory.handlers.common import APPROVER_ROLES, Booked, NewUow

TRANSFER_ROLES = ("warehouse_keeper", "branch_manager", "hq_admin")
"""Who requests, ships, receives and cancels transfers (each within their scope)."""


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
    doc = await transfers_db.get_transfer(session, transfer_id, lock=lock)
    if doc is None:
        raise NotFound(f"no transfer {transfer_id} in your scope")
    found = await common.warehouses(session, {doc.from_warehouse_id, doc.to_warehouse_id})
    if not _covers_either(auth, doc, found):
        raise NotFound(f"no transfer {transfer_id} in your scope")
    return doc, found


async def announce_transfer(uow: UnitOfWork, doc: Transfer, where: Warehouse) -> None:
    common.announce(uow, where, TransferChanged(doc))


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
        found = await common.warehouses(session, {from_warehouse_id, to_warehouse_id})
        for field_name, warehouse_id in (
            ("from_warehouse_id", from_warehouse_id),
            ("to_warehouse_id", to_warehouse_id),
        ):
            if warehouse_id not in found:
                raise invalid(field_name, f"no warehouse {warehouse_id}")
        sender, receiver = found[from_warehouse_id], found[to_warehouse_id]
        if not (sender.visible_to(auth) or receiver.visible_to(auth)):
            raise NotFound("neither warehouse is in your scope")
        serialised = await catalog_db.serialised_flags(session, {p for p, _ in lines})
        items = await serials_db.lock_serials(session, every, lock=False)
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
            id=common.new_document_id("TR"),
            from_warehouse_id=sender.id,
            from_branch_id=sender.branch_id,
            to_warehouse_id=receiver.id,
            to_branch_id=receiver.branch_id,
            lines=checked,
            requested_by=auth.user_id,
            requested_at=utc_now(),
            note=note,
        )
        await transfers_db.add_transfer(session, new)
        await announce_transfer(uow, new, sender)
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
            await transfers_db.add_approvals(session, before.id, granted, auth.user_id, utc_now())
            await transfers_db.save_transfer(session, after)
            await announce_transfer(uow, after, found[after.from_warehouse_id])
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
        levels = await stock_db.lock_levels(session, keys)
        before, _ = await _transfer_in_scope(session, auth, transfer_id, lock=True)
        posting = common.posting(auth, "transfer", before.id)
        by_part = {part: levels[(warehouse.id, part)] for _, part in keys}
        after, changed, booked = step(before, by_part, posting)
        if side == "from" and after.status == "shipped" and before.status != "shipped":
            value = sum(x.value_fen for x in after.lines)
            await quotas.admit_into(session, after.to_warehouse_id, value, f"transfer {after.id}")
        if after != before:
            named = {s for x in after.lines for s in x.serials}
            items = await serials_db.lock_serials(session, named)
            booked, moved = _serials_of_transfer(after, booked, items, warehouse.id)
            await stock_db.save_levels(session, list(changed.values()))
            await serials_db.save_serials(session, list(moved.values()), posting.occurred_at)
            await transfers_db.save_transfer(session, after)
            await common.record(uow, {warehouse.id: warehouse}, booked)
            await announce_transfer(uow, after, warehouse)
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
        # Received already: the same receipt again answers it as it was, another is refused.
        differs = receipt_differences(before, counts, named) if before.status == "received" else []
        if differs:
            raise Conflict(
                f"transfer {before.id} was received already with other discrepancies: "
                + "; ".join(e.reason for e in differs),
                differs,
            )
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


def receipt_differences(
    received: Transfer,
    counts: Mapping[str, tuple[int, int]],
    named: Mapping[str, tuple[Sequence[str], Sequence[str]]],
) -> list[FieldError]:
    """How a receipt asked of a transfer received already differs from the one recorded, by
    part: its short and damaged counts, and a serialised part's short and damaged serials."""
    lines = {x.part_number: x for x in received.lines}
    found = [
        FieldError("discrepancies", f"part {part} is not on the transfer")
        for part in sorted(set(counts) - set(lines))
    ]
    for part, line in lines.items():
        asked = counts.get(part, (0, 0))
        if asked != (line.short, line.damaged):
            found.append(
                FieldError(
                    "discrepancies",
                    f"part {part}: received with {line.short} short and {line.damaged} "
                    f"damaged, not {asked[0]} and {asked[1]}",
                )
            )
            continue
        short, damaged = named.get(part, ((), ()))
        if (set(short), set(damaged)) != (set(line.short_serials), set(line.damaged_serials)):
            found.append(
                FieldError(
                    "discrepancies",
                    f"part {part}: received with short serials "
                    f"{', '.join(line.short_serials) or 'none'} and damaged "
                    f"{', '.join(line.damaged_serials) or 'none'}",
                )
            )
    return found


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
            await transfers_db.save_transfer(session, after)
            await announce_transfer(uow, after, found[after.from_warehouse_id])
            await uow.commit(result_id=after.id)
    return after


async def get_transfer(new_uow: NewUow, auth: AuthContext, transfer_id: str) -> Transfer:
    async with new_uow() as uow:
        found, _ = await _transfer_in_scope(uow.session, auth, transfer_id)
    return found
