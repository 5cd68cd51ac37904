"""Reading and writing work orders and base data. SQL lives here; rules live in domain/."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Row,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import upsert_on
from servicekit.errors import ServiceUnavailable
from servicekit.timeutil import as_utc
from services.orders.adapters import base_data
from services.orders.adapters.orm import (
    brands,
    imei_links,
    models,
    order_lines,
    order_number_counters,
    order_payments,
    order_timeline,
    repair_orders,
)
from services.orders.domain.base_data import FaultCodeBook
from services.orders.domain.lifecycle import DEFAULT_APPROVAL_THRESHOLD_FEN
from services.orders.domain.order import (
    Diagnosis,
    FactoryReturn,
    Intake,
    PartLine,
    Payment,
    PlannedPart,
    Quote,
    RepairOrder,
    SwapUnit,
    TimelineEntry,
    Work,
)
from services.orders.domain.warranty import IN_WARRANTY, WarrantyDecision, WarrantyPolicy


@dataclass(frozen=True)
class BrandInfo:
    policy: WarrantyPolicy
    model_codes: frozenset[str]


@dataclass(frozen=True)
class OrderFilter:
    branch_id: str | None = None
    store_id: str | None = None
    status: str | None = None
    service_type: str | None = None
    imei: str | None = None
    phone: str | None = None
    received_from: datetime | None = None  # inclusive, UTC
    received_before: datetime | None = None  # exclusive, UTC
    swap_due_by: date | None = None  # in warranty, owed a swap on or before this day


@dataclass(frozen=True)
class BaseData:
    """Base data kept by HQ (基础数据) that the steps read: brands with their models and warranty
    policies, the authorisation matrix (厂商授权), the fault code tables, labour prices and the
    branches' approval thresholds, as of `version`."""

    brands: dict[str, BrandInfo]
    authorisations: frozenset[tuple[str, str, str]]  # (store_id, brand, service type)
    fault_codes: FaultCodeBook
    approval_thresholds: Mapping[str, int]  # branch -> fen
    labour_prices: Mapping[tuple[str, str], int]  # (brand, repair level) -> fen
    version: int

    def is_authorised(self, store_id: str, brand: str, service_type: str) -> bool:
        return (store_id, brand, service_type) in self.authorisations

    def approval_threshold_fen(self, branch_id: str) -> int:
        return self.approval_thresholds.get(branch_id, DEFAULT_APPROVAL_THRESHOLD_FEN)


async def load_base_data(session: AsyncConnection, version: int) -> BaseData:
    model_codes: dict[str, set[str]] = {}
    for brand_code, code in await session.execute(select(models.c.brand_code, models.c.code)):
        model_codes.setdefault(brand_code, set()).add(code)
    infos = {
        code: BrandInfo(policy, frozenset(model_codes.get(code, ())))
        for code, policy in (await base_data.warranty_policies(session)).items()
    }
    codes = await base_data.fault_code_rows(session, active_only=True)
    return BaseData(
        brands=infos,
        authorisations=frozenset(await base_data.authorisation_rows(session)),
        fault_codes=FaultCodeBook(frozenset((c.brand, c.kind, c.code) for c in codes)),
        approval_thresholds=await base_data.threshold_rows(session),
        labour_prices={
            (brand, level): fen for brand, level, fen in await base_data.labour_price_rows(session)
        },
        version=version,
    )


class BaseDataCache:
    """The steps read base data on every order, and it changes a few times a year: keep a copy,
    and on each use compare the version every change moves on (one row by its key). A change HQ
    makes is obeyed by every replica from the next use on, without a restart."""

    def __init__(self) -> None:
        self._data: BaseData | None = None

    async def get(self, session: AsyncConnection) -> BaseData:
        return await self.at_version(session, await base_data.current_version(session))

    async def at_version(self, session: AsyncConnection, version: int) -> BaseData:
        """The base data as of `version`, which the caller read in its own transaction."""
        if self._data is None or self._data.version != version:
            self._data = await load_base_data(session, version)
        return self._data


@dataclass(frozen=True)
class ClosedRepair:
    order_id: str
    number: str
    closed_at: datetime


def _device_imeis() -> Any:
    """Every IMEI the device with `imei` ever had, following the links both ways (UNION keeps
    each once, so the walk ends on any data)."""
    links = imei_links.c
    device = select(bindparam("imei", type_=String).label("imei")).cte(
        "device_imeis", recursive=True
    )
    other = case((links.old_imei == device.c.imei, links.new_imei), else_=links.old_imei)
    return device.union(
        select(other).where(or_(links.old_imei == device.c.imei, links.new_imei == device.c.imei))
    )


def _intake_reads() -> Any:
    device = _device_imeis()
    c = repair_orders.c
    last = (
        select(c.id, c.number, c.closed_at)
        .where(
            c.imei.in_(select(device.c.imei)),
            c.service_type.in_(("repair", "swap")),
            c.closed_at.is_not(None),
        )
        .order_by(c.closed_at.desc())
        .limit(1)
        .subquery("last_closed")
    )
    version = select(base_data.base_data_version.c.version).where(
        base_data.base_data_version.c.id == 1
    )
    one = select(literal_column("1").label("one")).subquery("one")
    return select(
        version.scalar_subquery().label("base_version"), last.c.id, last.c.number, last.c.closed_at
    ).select_from(one.outerjoin(last, true()))


# Built once: intake runs it on every order (a kept statement computes its cache key once).
_INTAKE_READS = _intake_reads()


@dataclass(frozen=True)
class IntakeReads:
    """What intake reads before it writes, in one round trip: the base data's version (is the
    cached copy current?) and the device's last closed repair, by any IMEI it ever had."""

    base_version: int
    last_closed: ClosedRepair | None


async def intake_reads(session: AsyncConnection, imei: str) -> IntakeReads:
    row = (await session.execute(_INTAKE_READS, {"imei": imei})).one()
    closed = ClosedRepair(row.id, row.number, as_utc(row.closed_at)) if row.id else None
    return IntakeReads(int(row.base_version or 0), closed)


@functools.cache
def _take_number(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, order_number_counters).values(
        store_id=bindparam("store_id"), day=bindparam("day"), last_number=1
    )
    return statement.on_conflict_do_update(
        index_elements=["store_id", "day"],
        set_={"last_number": order_number_counters.c.last_number + 1},
    ).returning(order_number_counters.c.last_number)


async def next_number(session: AsyncConnection, store_id: str, day: date) -> int:
    """Take the store's next running number for the day, atomically on both databases."""
    statement = _take_number(session.dialect.name)
    taken = await session.execute(statement, {"store_id": store_id, "day": day})
    return int(taken.scalar_one())


_ADD_ORDER = repair_orders.insert()
_ADD_TIMELINE = order_timeline.insert()


async def add(session: AsyncConnection, order: RepairOrder, personal_key_id: str) -> None:
    """`personal_key_id`: the data key the customer's name and phone travel sealed with."""
    intake, warranty = order.intake, order.warranty
    await session.execute(
        _ADD_ORDER,
        {
            "id": order.id,
            "number": order.number,
            "request_id": order.request_id,
            "request_hash": order.request_hash,
            "status": order.status,
            "service_type": intake.service_type,
            "branch_id": order.branch_id,
            "store_id": order.store_id,
            "customer_name": intake.customer_name,
            "customer_phone": intake.customer_phone,
            "personal_key_id": personal_key_id,
            "message_consent": intake.message_consent,
            "customer_language": intake.language,
            "imei": intake.imei,
            "brand": intake.brand,
            "model": intake.model,
            "colour": intake.colour,
            "purchase_date": intake.purchase_date,
            "fault_description": intake.fault_description,
            "symptom_code": intake.symptom_code,
            "accessories": intake.accessories,
            "appearance": intake.appearance,
            "promised_date": intake.promised_date,
            "warranty_status": warranty.status,
            "warranty_entitlements": ",".join(warranty.entitlements),
            "warranty_reason": warranty.reason,
            "warranty_expires_on": warranty.expires_on,
            "send_on_required": warranty.send_on_required,
            "brand_authorised": order.brand_authorised,
            "repeat_repair": order.repeat_repair,
            "repeat_of_order_id": order.repeat_of,
            "parts_wait_swap_on": order.parts_wait_swap_on,
            "received_at": order.received_at,
            "created_by": order.created_by,
            "version": order.version,
            "work": work_json(order.work),
            "partner_branch_id": order.work.partner_branch_id or None,
            "partner_store_id": order.work.partner_store_id or None,
        },
    )
    await _add_timeline(session, order.id, order.timeline)
    await _write_items(session, order, new=True)


async def _add_timeline(
    session: AsyncConnection, order_id: str, entries: list[TimelineEntry]
) -> None:
    rows = [
        {
            "order_id": order_id,
            "status": e.status,
            "at": e.at,
            "user_id": e.user_id,
            "store_id": e.store_id,
            "note": e.note,
            "step": e.step,
        }
        for e in entries
    ]
    # A step adds one entry: sent as one row, not as a batch (which on PostgreSQL goes the
    # insert-many way, returning keys nobody reads).
    if len(rows) == 1:
        await session.execute(_ADD_TIMELINE, rows[0])
    elif rows:
        await session.execute(_ADD_TIMELINE, rows)


async def save_transition(
    session: AsyncConnection, order: RepairOrder, read_version: int, new_entries: int
) -> bool:
    """Write a transition made on the order as read at `read_version`, and its `new_entries`
    last timeline entries. False, writing nothing, when someone else changed it meanwhile."""
    warranty = order.warranty
    changed = await session.execute(
        update(repair_orders)
        .where(repair_orders.c.id == order.id, repair_orders.c.version == read_version)
        .values(
            status=order.status,
            version=read_version + 1,
            work=work_json(order.work),
            warranty_status=warranty.status,
            warranty_entitlements=",".join(warranty.entitlements),
            warranty_reason=warranty.reason,
            closed_at=order.closed_at,
            partner_branch_id=order.work.partner_branch_id or None,
            partner_store_id=order.work.partner_store_id or None,
        )
    )
    if changed.rowcount != 1:
        return False
    order.version = read_version + 1
    await _add_timeline(session, order.id, order.timeline[len(order.timeline) - new_entries :])
    await _write_items(session, order)
    return True


def _line_row(order_id: str, position: int, line: PartLine) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "line_id": line.line_id,
        "position": position,
        "part_id": line.part_id,
        "quantity": line.quantity,
        "warranty": line.warranty,
        "reserved": line.reserved,
        "issued": line.issued,
        "released": line.released,
        "old_part_kept": line.old_part_kept,
        "retail_price_fen": line.retail_price_fen,
        "store_id": line.store_id,
        "serials": ",".join(line.serials),
        "successor_part_id": line.successor_part_id,
        "successor_available": line.successor_available,
    }


_LINE_COLUMNS = [c.name for c in order_lines.c if c.name not in ("order_id", "line_id")]
_DROP_OTHER_LINES = order_lines.delete().where(
    order_lines.c.order_id == bindparam("order_id"),
    order_lines.c.line_id.not_in(bindparam("kept", expanding=True)),
)
_DROP_ALL_LINES = order_lines.delete().where(order_lines.c.order_id == bindparam("order_id"))


@functools.cache
def _upsert_lines(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, order_lines)
    return statement.on_conflict_do_update(
        index_elements=["order_id", "line_id"],
        set_={name: statement.excluded[name] for name in _LINE_COLUMNS},
    )


@functools.cache
def _add_payments(dialect_name: str) -> Any:
    # Payments are only ever added: the ones already written stay as they are.
    return upsert_on(dialect_name, order_payments).on_conflict_do_nothing(
        index_elements=["order_id", "position"]
    )


async def _write_items(session: AsyncConnection, order: RepairOrder, new: bool = False) -> None:
    """The order's part lines and payments as they now are: its lines set (those it no longer
    has dropped), its payments added."""
    lines, payments = order.work.lines, order.work.payments
    dialect = session.dialect.name
    if not new:
        if lines:
            kept = [line.line_id for line in lines]
            await session.execute(_DROP_OTHER_LINES, {"order_id": order.id, "kept": kept})
        else:
            await session.execute(_DROP_ALL_LINES, {"order_id": order.id})
    if lines:
        rows = [_line_row(order.id, i, line) for i, line in enumerate(lines)]
        await session.execute(_upsert_lines(dialect), rows)
    if payments:
        await session.execute(
            _add_payments(dialect),
            [
                {
                    "order_id": order.id,
                    "position": i,
                    "method": p.method,
                    "amount_fen": p.amount_fen,
                    "at": p.at,
                }
                for i, p in enumerate(payments)
            ],
        )


def _when(value: object) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def work_json(work: Work) -> str:
    """The work's JSON, without its part lines and payments (tables of their own)."""
    body = asdict(work)
    del body["lines"], body["payments"]
    if factory := body["factory"]:
        factory["shipped_at"] = _when(factory["shipped_at"])
        factory["received_at"] = _when(factory["received_at"])
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _factory(body: dict[str, Any] | None) -> FactoryReturn | None:
    if not body:
        return None
    shipped_at = _moment(body["shipped_at"])
    assert shipped_at is not None
    return FactoryReturn(
        **{**body, "shipped_at": shipped_at, "received_at": _moment(body["received_at"])}
    )


def work_from_json(
    text: str, lines: list[PartLine] | None = None, payments: list[Payment] | None = None
) -> Work:
    """The work from its JSON, with the order's part lines and payments from their tables."""
    body = json.loads(text or "{}")
    if not body:
        return Work(lines=lines or [], payments=payments or [])
    diagnosis = body["diagnosis"]
    return Work(
        diagnosis=Diagnosis(
            **{
                **diagnosis,
                "actions": tuple(diagnosis["actions"]),
                "parts": tuple(PlannedPart(**p) for p in diagnosis["parts"]),
            }
        )
        if diagnosis
        else None,
        quote=Quote(**body["quote"]) if body["quote"] else None,
        customer_approved=body["customer_approved"],
        manager_approval_required=body["manager_approval_required"],
        manager_approved=body["manager_approved"],
        lines=lines or [],
        actions_done=tuple(body["actions_done"]),
        repair_level=body["repair_level"],
        qc_failures=body["qc_failures"],
        payments=payments or [],
        # The routes' fields: absent from orders written before them.
        partner_branch_id=body.get("partner_branch_id", ""),
        partner_store_id=body.get("partner_store_id", ""),
        at_partner=body.get("at_partner", False),
        partner_repaired=body.get("partner_repaired", False),
        factory=_factory(body.get("factory")),
        swap=SwapUnit(**body["swap"]) if body.get("swap") else None,
        new_imei=body.get("new_imei", ""),
        swap_offered=body.get("swap_offered", False),
        swap_offer_reason=body.get("swap_offer_reason", ""),
        declined=body.get("declined", False),
        inspection_fee_fen=body.get("inspection_fee_fen", 0),
    )


def _order_from_row(row: Row[tuple[object, ...]]) -> RepairOrder:
    m = row._mapping
    intake = Intake(
        customer_name=m["customer_name"],
        customer_phone=m["customer_phone"],
        imei=m["imei"],
        brand=m["brand"],
        model=m["model"],
        colour=m["colour"],
        purchase_date=m["purchase_date"],
        fault_description=m["fault_description"],
        symptom_code=m["symptom_code"],
        service_type=m["service_type"],
        accessories=m["accessories"],
        appearance=m["appearance"],
        promised_date=m["promised_date"],
        message_consent=m["message_consent"],
        language=m["customer_language"],
    )
    entitlements = m["warranty_entitlements"]
    warranty = WarrantyDecision(
        status=m["warranty_status"],
        entitlements=tuple(entitlements.split(",")) if entitlements else (),
        reason=m["warranty_reason"],
        expires_on=m["warranty_expires_on"],
        send_on_required=m["send_on_required"],
    )
    return RepairOrder(
        id=m["id"],
        number=m["number"],
        status=m["status"],
        branch_id=m["branch_id"],
        store_id=m["store_id"],
        intake=intake,
        warranty=warranty,
        brand_authorised=m["brand_authorised"],
        repeat_repair=m["repeat_repair"],
        repeat_of=m["repeat_of_order_id"],
        parts_wait_swap_on=m["parts_wait_swap_on"],
        received_at=as_utc(m["received_at"]),
        created_by=m["created_by"],
        request_id=m["request_id"],
        request_hash=m["request_hash"],
        version=m["version"],
        work=work_from_json(m["work"]),
        closed_at=as_utc(m["closed_at"]) if m["closed_at"] else None,
    )


_ORDER_BY_ID = select(repair_orders).where(repair_orders.c.id == bindparam("order_id"))
_ORDER_AND_BASE_VERSION = select(
    repair_orders,
    select(base_data.base_data_version.c.version)
    .where(base_data.base_data_version.c.id == 1)
    .scalar_subquery()
    .label("base_data_version"),
).where(repair_orders.c.id == bindparam("order_id"))


def _details(with_timeline: bool, one: bool) -> Any:
    """An order's timeline, part lines and payments (or the lines and payments of many), in one
    statement: the three kinds of row side by side in the same columns, told apart by `kind`.
    One round trip instead of three on every step's read. `one` reads a single order by an
    equality: an expanding IN is rendered again on every call, and a step reads one order."""
    t, x, p = order_timeline.c, order_lines.c, order_payments.c

    def among(column: Any) -> Any:
        if one:
            return column == bindparam("order_id")
        return column.in_(bindparam("order_ids", expanding=True))

    def none(kind: Any) -> Any:
        return cast(null(), kind)

    def row(
        kind: str, order_id: Any, n: list[Any], s_: list[Any], b: list[Any], at: Any
    ) -> list[Any]:
        n = n + [none(BigInteger)] * (6 - len(n))
        s_ = s_ + [none(Text)] * (5 - len(s_))
        b = b + [none(Boolean)] * (3 - len(b))
        return [
            literal(kind, String).label("kind"),
            order_id.label("order_id"),
            *(cast(v, BigInteger).label(f"n{i}") for i, v in enumerate(n, 1)),
            *(cast(v, Text).label(f"s{i}") for i, v in enumerate(s_, 1)),
            *(v.label(f"b{i}") for i, v in enumerate(b, 1)),
            at.label("at"),
        ]

    lines = select(
        *row(
            "l",
            x.order_id,
            [
                x.position,
                x.quantity,
                x.reserved,
                x.issued,
                x.retail_price_fen,
                x.successor_available,
            ],
            [x.line_id, x.part_id, x.store_id, x.serials, x.successor_part_id],
            [x.warranty, x.released, x.old_part_kept],
            none(DateTime(timezone=True)),
        )
    ).where(among(x.order_id))
    payments = select(
        *row("p", p.order_id, [p.position, p.amount_fen], [p.method], [], p.at)
    ).where(among(p.order_id))
    # The orders' versions as this same statement sees them: equal to those read with the
    # orders, nothing changed them in between (every change moves the version on).
    versions = select(
        *row("v", repair_orders.c.id, [repair_orders.c.version], [], [], none(DateTime()))
    ).where(among(repair_orders.c.id))
    parts = [lines, payments, versions]
    if with_timeline:
        timeline = select(
            *row(
                "t",
                t.order_id,
                [t.seq],
                [t.status, t.user_id, t.store_id, t.note, t.step],
                [],
                t.at,
            )
        ).where(among(t.order_id))
        parts.append(timeline)
    return union_all(*parts).order_by(
        literal_column("kind"), literal_column("order_id"), literal_column("n1")
    )


_DETAILS = {one: _details(with_timeline=True, one=one) for one in (True, False)}
_ITEMS = {one: _details(with_timeline=False, one=one) for one in (True, False)}


READ_ATTEMPTS = 5
"""Reads of an order racing a change to it: tries before a 503 (a retry of two statements)."""

Rows = Callable[[], Awaitable[Sequence[Any]]]


async def read_orders(
    session: AsyncConnection,
    rows: Rows,
    make: Callable[[Any], RepairOrder] | None = None,
    with_timeline: bool = False,
) -> tuple[list[RepairOrder], Sequence[Any]]:
    """The orders of `rows` (a statement's rows, made orders by `make`) with their part lines,
    payments (and timelines) as of the same moment: read again when a change came between."""
    make = make or _order_from_row
    statement = _DETAILS if with_timeline else _ITEMS
    for _ in range(READ_ATTEMPTS):
        found = await rows()
        orders = [make(row) for row in found]
        if await _filled(session, orders, statement):
            return orders, found
    raise ServiceUnavailable("the order kept changing while it was read: try again")


async def _filled(
    session: AsyncConnection, orders: list[RepairOrder], statements: dict[bool, Any]
) -> bool:
    """Fill the orders from `statements` (keyed by whether there is one order); False when one
    of them changed since it was read."""
    if not orders:
        return True
    by_id = {order.id: order for order in orders}
    consistent = True
    if len(orders) == 1:
        rows = await session.execute(statements[True], {"order_id": orders[0].id})
    else:
        rows = await session.execute(statements[False], {"order_ids": list(by_id)})
    for r in rows:
        order = by_id[r.order_id]
        if r.kind == "v":
            consistent = consistent and r.n1 == order.version
        elif r.kind == "t":
            order.timeline.append(TimelineEntry(r.s1, as_utc(r.at), r.s2, r.s3, r.s4, r.s5))
        elif r.kind == "l":
            order.work.lines.append(
                PartLine(
                    line_id=r.s1,
                    part_id=r.s2,
                    quantity=r.n2,
                    warranty=bool(r.b1),
                    reserved=r.n3,
                    issued=r.n4,
                    released=bool(r.b2),
                    old_part_kept=bool(r.b3),
                    retail_price_fen=r.n5,
                    store_id=r.s3,
                    serials=tuple(r.s4.split(",")) if r.s4 else (),
                    successor_part_id=r.s5,
                    successor_available=r.n6,
                )
            )
        else:
            order.work.payments.append(Payment(r.s1, r.n2, as_utc(r.at)))
    return consistent


async def _one(
    session: AsyncConnection, statement: Any, params: dict[str, Any]
) -> tuple[RepairOrder | None, Any]:
    async def rows() -> Sequence[Any]:
        row = (await session.execute(statement, params)).first()
        return [row] if row else []

    orders, found = await read_orders(session, rows, with_timeline=True)
    return (orders[0], found[0]) if orders else (None, None)


async def get(session: AsyncConnection, order_id: str) -> RepairOrder | None:
    order, _ = await _one(session, _ORDER_BY_ID, {"order_id": order_id})
    return order


async def get_with_base_version(
    session: AsyncConnection, order_id: str
) -> tuple[RepairOrder | None, int]:
    """The order, and the base data's version read with it (a step needs both: one round
    trip fewer)."""
    order, row = await _one(session, _ORDER_AND_BASE_VERSION, {"order_id": order_id})
    if order is None:
        return None, 0
    return order, int(row.base_data_version or 0)


async def find_by_request_id(session: AsyncConnection, request_id: str) -> RepairOrder | None:
    statement = select(repair_orders).where(repair_orders.c.request_id == request_id)
    order, _ = await _one(session, statement, {})
    return order


async def release_request_id(session: AsyncConnection, request_id: str, cutoff: datetime) -> None:
    """Free a request id first used at or before `cutoff` (its lifetime is over), so a new
    order may take it; the old order keeps everything else."""
    await session.execute(
        update(repair_orders)
        .where(repair_orders.c.request_id == request_id, repair_orders.c.received_at <= cutoff)
        .values(request_id=None)
    )


def scope_conditions(branch_id: str | None, store_id: str | None) -> list[Any]:
    """Orders of this branch or store: taken in there, or sent there for repair (送修)."""
    c = repair_orders.c
    intake, partner = [], []
    if branch_id:
        intake.append(c.branch_id == branch_id)
        partner.append(c.partner_branch_id == branch_id)
    if store_id:
        intake.append(c.store_id == store_id)
        partner.append(c.partner_store_id == store_id)
    return [or_(and_(*intake), and_(*partner))] if intake else []


async def list_page(
    session: AsyncConnection, where: OrderFilter, limit: int, after: tuple[datetime, str] | None
) -> list[RepairOrder]:
    """Newest first, keyset-paged on (received_at, id) so deep pages stay cheap."""
    c = repair_orders.c
    conditions = scope_conditions(where.branch_id, where.store_id)
    for column, value in (
        (c.status, where.status),
        (c.service_type, where.service_type),
        (c.imei, where.imei),
        (c.customer_phone, where.phone),
    ):
        if value:
            conditions.append(column == value)
    if where.received_from:
        conditions.append(c.received_at >= where.received_from)
    if where.received_before:
        conditions.append(c.received_at < where.received_before)
    if where.swap_due_by:
        conditions.append(c.parts_wait_swap_on <= where.swap_due_by)
        conditions.append(c.warranty_status == IN_WARRANTY)
    if after:
        at, last_id = after
        conditions.append(or_(c.received_at < at, and_(c.received_at == at, c.id < last_id)))
    statement = (
        select(repair_orders)
        .where(*conditions)
        .order_by(c.received_at.desc(), c.id.desc())
        .limit(limit)
    )

    async def rows() -> Sequence[Any]:
        return (await session.execute(statement)).all()

    orders, _ = await read_orders(session, rows)
    return orders


async def list_brands(session: AsyncConnection) -> list[tuple[str, str, list[tuple[str, str]]]]:
    brand_rows = (
        await session.execute(select(brands.c.code, brands.c.name).order_by(brands.c.code))
    ).all()
    model_rows = (
        await session.execute(
            select(models.c.brand_code, models.c.code, models.c.name).order_by(
                models.c.brand_code, models.c.name
            )
        )
    ).all()
    by_brand: dict[str, list[tuple[str, str]]] = {}
    for brand_code, code, name in model_rows:
        by_brand.setdefault(brand_code, []).append((code, name))
    return [(code, name, by_brand.get(code, [])) for code, name in brand_rows]


async def add_imei_link(
    session: AsyncConnection, old_imei: str, new_imei: str, kind: str, order_id: str, at: datetime
) -> None:
    await session.execute(
        imei_links.insert(),
        {"old_imei": old_imei, "new_imei": new_imei, "kind": kind, "order_id": order_id, "at": at},
    )


@dataclass(frozen=True)
class ImeiLink:
    old_imei: str
    new_imei: str
    kind: str
    order_id: str
    at: datetime


MAX_LINKED_IMEIS = 50
"""A device rarely changes IMEI more than a few times: a bound on the walk, whatever the data."""


async def linked_imeis(session: AsyncConnection, imei: str) -> tuple[list[str], list[ImeiLink]]:
    """Every IMEI the device ever had, following the links both ways, and the links."""
    seen, frontier = [imei], {imei}
    links: dict[int, ImeiLink] = {}
    while frontier and len(seen) < MAX_LINKED_IMEIS:
        rows = await session.execute(
            select(imei_links).where(
                or_(imei_links.c.old_imei.in_(frontier), imei_links.c.new_imei.in_(frontier))
            )
        )
        frontier = set()
        for r in rows:
            links[r.seq] = ImeiLink(r.old_imei, r.new_imei, r.kind, r.order_id, as_utc(r.at))
            for other in (r.old_imei, r.new_imei):
                if other not in seen:
                    seen.append(other)
                    frontier.add(other)
    return seen, [links[k] for k in sorted(links)]


async def orders_of_devices(
    session: AsyncConnection, imeis: list[str], limit: int = 200
) -> list[RepairOrder]:
    """The orders taken in for any of these IMEIs, newest first."""
    statement = (
        select(repair_orders)
        .where(repair_orders.c.imei.in_(imeis))
        .order_by(repair_orders.c.received_at.desc(), repair_orders.c.id.desc())
        .limit(limit)
    )

    async def rows() -> Sequence[Any]:
        return (await session.execute(statement)).all()

    orders, _ = await read_orders(session, rows)
    return orders


async def forget_customer(
    session: AsyncConnection, order_ids: list[str], key_ids: list[str], erased_name: str
) -> int:
    """Erasure: the orders of an erased customer (by id, or by a destroyed data key for the
    orders customers had not heard of yet) keep no name or phone. Returns how many changed."""
    c = repair_orders.c
    matches = [c.id.in_(order_ids)] if order_ids else []
    if key_ids:
        matches.append(c.personal_key_id.in_(key_ids))
    if not matches:
        return 0
    result = await session.execute(
        update(repair_orders)
        .where(or_(*matches))
        .where(or_(c.customer_name != erased_name, c.customer_phone != ""))
        .values(customer_name=erased_name, customer_phone="")
    )
    return result.rowcount or 0
