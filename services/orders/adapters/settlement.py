"""Settlement (劳务费结算) tables and their SQL: claims, their lines (one per order: an order is in
at most one claim, by the key), the part lines each reimburses, payments received, and the old
parts inventory reported back, kept by order line whether or not a claim holds it yet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import BigId, upsert_on
from servicekit.errors import PreconditionFailed, ServiceUnavailable
from servicekit.timeutil import as_utc
from services.orders.adapters.base_data import labour_price_rows
from services.orders.adapters.orm import metadata, repair_orders
from services.orders.adapters.repository import read_orders, work_from_json
from services.orders.domain.order import Intake, RepairOrder
from services.orders.domain.settlement import Claim, ClaimLine, ClaimPart, ClaimPayment
from services.orders.domain.warranty import IN_WARRANTY, WarrantyDecision

settlement_claims = Table(
    "settlement_claims",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("manufacturer", String(30), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM, Asia/Shanghai
    Column("supplement", Integer, nullable=False, server_default="0"),  # 0: the month's first
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("built_by", String(64), nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("paid_at", DateTime(timezone=True), nullable=True),
    # The manufacturer's decision file taken (sha256): the same file again changes nothing.
    Column("decision_fingerprint", String(64), nullable=False, server_default=""),
    UniqueConstraint(
        "manufacturer", "branch_id", "month", "supplement", name="uq_settlement_claims_month"
    ),
    Index("ix_settlement_claims_branch_month", "branch_id", "month"),
)
"""劳务费索赔单: one per manufacturer, branch and month."""

settlement_claim_lines = Table(
    "settlement_claim_lines",
    metadata,
    # The key is the order's: an order is in at most one claim.
    Column("order_id", String(36), ForeignKey("repair_orders.id"), primary_key=True),
    Column("claim_id", String(36), ForeignKey("settlement_claims.id"), nullable=False),
    Column("number", String(40), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("repair_level", String(10), nullable=False),
    Column("labour_fen", BigInteger, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("old_parts_owed", Integer, nullable=False),
    Column("decision", String(10), nullable=False, server_default=""),
    Column("reason_code", String(30), nullable=False, server_default=""),
    Column("accepted_fen", BigInteger, nullable=False, server_default="0"),
    Column("paid", Boolean, nullable=False),
    Index("ix_settlement_claim_lines_claim", "claim_id", "closed_at"),
)

settlement_claim_parts = Table(
    "settlement_claim_parts",
    metadata,
    Column(
        "order_id",
        String(36),
        ForeignKey("settlement_claim_lines.order_id"),
        primary_key=True,
    ),
    Column("line_id", String(36), primary_key=True),
    Column("part_id", String(60), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_fen", BigInteger, nullable=False),
)
"""The warranty part lines a claim line reimburses; each unit owes its old part back."""

settlement_payments = Table(
    "settlement_payments",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("claim_id", String(36), ForeignKey("settlement_claims.id"), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # The caller's Idempotency-Key (user:key): a retry records no second payment.
    Column("request_id", String(255), nullable=True, unique=True),
)

settlement_old_parts = Table(
    "settlement_old_parts",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("line_id", String(36), primary_key=True),
    Column("returned", Integer, nullable=False),
)
"""旧件: the old parts inventory reported returned to the manufacturer, per order part line."""

_CLAIM_BY_ID = select(settlement_claims).where(settlement_claims.c.id == bindparam("claim_id"))
# The month's latest claim: its supplementary one, when there is one.
_CLAIM_BY_MONTH = (
    select(settlement_claims)
    .where(
        settlement_claims.c.manufacturer == bindparam("manufacturer"),
        settlement_claims.c.branch_id == bindparam("branch_id"),
        settlement_claims.c.month == bindparam("month"),
    )
    .order_by(settlement_claims.c.supplement.desc())
    .limit(1)
)
_CLAIM_IDS: Any = bindparam("claim_ids", expanding=True)
_LINES_OF = (
    select(settlement_claim_lines)
    .where(settlement_claim_lines.c.claim_id.in_(_CLAIM_IDS))
    .order_by(settlement_claim_lines.c.closed_at, settlement_claim_lines.c.number)
)
_PARTS_OF = (
    select(settlement_claim_parts)
    .join(
        settlement_claim_lines,
        settlement_claim_lines.c.order_id == settlement_claim_parts.c.order_id,
    )
    .where(settlement_claim_lines.c.claim_id.in_(_CLAIM_IDS))
    .order_by(settlement_claim_parts.c.order_id, settlement_claim_parts.c.line_id)
)
_PAYMENTS_OF = (
    select(settlement_payments)
    .where(settlement_payments.c.claim_id.in_(_CLAIM_IDS))
    .order_by(settlement_payments.c.seq)
)
_SAVE_CLAIM = (
    update(settlement_claims)
    .where(
        settlement_claims.c.id == bindparam("claim_id"),
        settlement_claims.c.version == bindparam("read_version"),
    )
    .values(
        status=bindparam("status"),
        version=bindparam("new_version"),
        submitted_at=bindparam("submitted_at"),
        decided_at=bindparam("decided_at"),
        paid_at=bindparam("paid_at"),
        decision_fingerprint=bindparam("fingerprint"),
    )
)
_SAVE_LINE = (
    update(settlement_claim_lines)
    .where(settlement_claim_lines.c.order_id == bindparam("line_order_id"))
    .values(
        old_parts_owed=bindparam("owed"),
        decision=bindparam("line_decision"),
        reason_code=bindparam("line_reason"),
        accepted_fen=bindparam("line_accepted"),
        paid=bindparam("line_paid"),
    )
)


def _claim(row: Any) -> Claim:
    return Claim(
        id=row.id,
        manufacturer=row.manufacturer,
        branch_id=row.branch_id,
        month=row.month,
        supplement=row.supplement,
        built_by=row.built_by,
        built_at=as_utc(row.built_at),
        status=row.status,
        version=row.version,
        decision_fingerprint=row.decision_fingerprint,
        submitted_at=as_utc(row.submitted_at) if row.submitted_at else None,
        decided_at=as_utc(row.decided_at) if row.decided_at else None,
        paid_at=as_utc(row.paid_at) if row.paid_at else None,
    )


_VERSIONS_OF = select(settlement_claims.c.id, settlement_claims.c.version).where(
    settlement_claims.c.id.in_(_CLAIM_IDS)
)
READ_ATTEMPTS = 5
"""Reads of a claim racing a change to it: tries before a 503."""


async def _read(session: AsyncConnection, statement: Any, params: dict[str, Any]) -> list[Claim]:
    """The claims `statement` finds, with their lines, parts and payments as of one moment:
    read again when a change came between (each moves the claim's version on)."""
    for _ in range(READ_ATTEMPTS):
        claims = [_claim(row) for row in await session.execute(statement, params)]
        if not claims:
            return claims
        await _filled(session, claims)
        versions = dict(
            (await session.execute(_VERSIONS_OF, {"claim_ids": [c.id for c in claims]})).all()
        )
        if all(versions.get(c.id) == c.version for c in claims):
            return claims
    raise ServiceUnavailable("the claim kept changing while it was read: try again")


async def _filled(session: AsyncConnection, claims: list[Claim]) -> list[Claim]:
    """The claims with their lines, parts and payments: three statements for all of them."""
    by_id = {claim.id: claim for claim in claims}
    key = {"claim_ids": list(by_id)}
    parts: dict[str, list[ClaimPart]] = {}
    for p in await session.execute(_PARTS_OF, key):
        parts.setdefault(p.order_id, []).append(
            ClaimPart(p.line_id, p.part_id, p.quantity, p.unit_price_fen)
        )
    for r in await session.execute(_LINES_OF, key):
        by_id[r.claim_id].lines.append(
            ClaimLine(
                order_id=r.order_id,
                number=r.number,
                store_id=r.store_id,
                repair_level=r.repair_level,
                labour_fen=r.labour_fen,
                closed_at=as_utc(r.closed_at),
                parts=tuple(parts.get(r.order_id, ())),
                old_parts_owed=r.old_parts_owed,
                decision=r.decision,
                reason_code=r.reason_code,
                accepted_fen=r.accepted_fen,
                paid=r.paid,
            )
        )
    for p in await session.execute(_PAYMENTS_OF, key):
        by_id[p.claim_id].payments.append(
            ClaimPayment(
                p.amount_fen, p.paid_on, p.recorded_by, as_utc(p.recorded_at), p.request_id or ""
            )
        )
    return claims


async def get_claim(session: AsyncConnection, claim_id: str) -> Claim | None:
    found = await _read(session, _CLAIM_BY_ID, {"claim_id": claim_id})
    return found[0] if found else None


async def claim_of_month(
    session: AsyncConnection, manufacturer: str, branch_id: str, month: str
) -> Claim | None:
    key = {"manufacturer": manufacturer, "branch_id": branch_id, "month": month}
    found = await _read(session, _CLAIM_BY_MONTH, key)
    return found[0] if found else None


async def list_claims(
    session: AsyncConnection,
    branch_id: str | None,
    manufacturer: str,
    month: str,
    status: str,
    limit: int,
    after: Sequence[str] = (),
) -> list[Claim]:
    """The claims with their lines (a claim is at most a branch's month of one brand), whose
    sums the list shows; newest month first, then by branch, manufacturer and supplement, from
    the one after `after` (month, branch_id, manufacturer, supplement)."""
    c = settlement_claims.c
    conditions = []
    if after:
        last_month, last_branch, last_brand, last_number = after
        conditions.append(
            or_(
                c.month < last_month,
                and_(c.month == last_month, c.branch_id > last_branch),
                and_(
                    c.month == last_month, c.branch_id == last_branch, c.manufacturer > last_brand
                ),
                and_(
                    c.month == last_month,
                    c.branch_id == last_branch,
                    c.manufacturer == last_brand,
                    c.supplement > int(last_number),
                ),
            )
        )
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if manufacturer:
        conditions.append(c.manufacturer == manufacturer)
    if month:
        conditions.append(c.month == month)
    if status:
        conditions.append(c.status == status)
    statement = (
        select(settlement_claims)
        .where(*conditions)
        .order_by(c.month.desc(), c.branch_id, c.manufacturer, c.supplement)
        .limit(limit)
    )
    return await _read(session, statement, {})


async def add_claim(session: AsyncConnection, claim: Claim) -> None:
    await session.execute(
        settlement_claims.insert().values(
            id=claim.id,
            manufacturer=claim.manufacturer,
            branch_id=claim.branch_id,
            month=claim.month,
            supplement=claim.supplement,
            status=claim.status,
            version=claim.version,
            built_by=claim.built_by,
            built_at=claim.built_at,
            decision_fingerprint="",
        )
    )


async def add_lines(session: AsyncConnection, claim_id: str, lines: Sequence[ClaimLine]) -> None:
    if not lines:
        return
    await session.execute(
        settlement_claim_lines.insert(),
        [
            {
                "order_id": x.order_id,
                "claim_id": claim_id,
                "number": x.number,
                "store_id": x.store_id,
                "repair_level": x.repair_level,
                "labour_fen": x.labour_fen,
                "closed_at": x.closed_at,
                "old_parts_owed": x.old_parts_owed,
                "decision": "",
                "reason_code": "",
                "accepted_fen": 0,
                "paid": False,
            }
            for x in lines
        ],
    )
    parts = [
        {
            "order_id": x.order_id,
            "line_id": p.line_id,
            "part_id": p.part_id,
            "quantity": p.quantity,
            "unit_price_fen": p.unit_price_fen,
        }
        for x in lines
        for p in x.parts
    ]
    if parts:
        await session.execute(settlement_claim_parts.insert(), parts)


async def save_claim(session: AsyncConnection, claim: Claim, read_version: int) -> None:
    """The claim's header on the version it was read at (another change since is a 412), and
    every line's changing state."""
    saved = await session.execute(
        _SAVE_CLAIM,
        {
            "claim_id": claim.id,
            "read_version": read_version,
            "status": claim.status,
            "new_version": claim.version,
            "submitted_at": claim.submitted_at,
            "decided_at": claim.decided_at,
            "paid_at": claim.paid_at,
            "fingerprint": claim.decision_fingerprint,
        },
    )
    if saved.rowcount != 1:
        raise PreconditionFailed(f"the claim changed since version {read_version}: read it again")
    if claim.lines:
        await session.execute(
            _SAVE_LINE,
            [
                {
                    "line_order_id": x.order_id,
                    "owed": x.old_parts_owed,
                    "line_decision": x.decision,
                    "line_reason": x.reason_code,
                    "line_accepted": x.accepted_fen,
                    "line_paid": x.paid,
                }
                for x in claim.lines
            ],
        )


async def add_payment(session: AsyncConnection, claim_id: str, payment: ClaimPayment) -> None:
    await session.execute(
        settlement_payments.insert().values(
            claim_id=claim_id,
            amount_fen=payment.amount_fen,
            paid_on=payment.paid_on,
            recorded_by=payment.recorded_by,
            recorded_at=payment.recorded_at,
            request_id=payment.request_id or None,
        )
    )


async def payment_made(session: AsyncConnection, request_id: str) -> str | None:
    """The claim a payment with this request id was recorded on, if any."""
    found = await session.scalar(
        select(settlement_payments.c.claim_id).where(settlement_payments.c.request_id == request_id)
    )
    return str(found) if found is not None else None


_CLAIMABLE = (
    select(repair_orders)
    .where(
        repair_orders.c.branch_id == bindparam("branch_id"),
        repair_orders.c.brand == bindparam("manufacturer"),
        repair_orders.c.status == "closed",
        repair_orders.c.service_type == "repair",
        repair_orders.c.warranty_status == IN_WARRANTY,
        repair_orders.c.closed_at >= bindparam("start"),
        repair_orders.c.closed_at < bindparam("end"),
        repair_orders.c.id.not_in(select(settlement_claim_lines.c.order_id)),
    )
    .order_by(repair_orders.c.closed_at, repair_orders.c.number)
)


async def unclaimed_orders(
    session: AsyncConnection, manufacturer: str, branch_id: str, start: datetime, end: datetime
) -> list[RepairOrder]:
    """The branch's closed in-warranty repairs of the brand closed in [start, end) that no claim
    holds yet; as much of each order as settlement reads (the domain decides the rest)."""
    params = {"branch_id": branch_id, "manufacturer": manufacturer, "start": start, "end": end}

    async def rows() -> Sequence[Any]:
        return (await session.execute(_CLAIMABLE, params)).all()

    orders, _ = await read_orders(session, rows, lambda row: _order(row._mapping))
    return orders


def _order(m: Any) -> RepairOrder:
    intake = Intake(
        customer_name="",
        customer_phone="",
        imei=m["imei"],
        brand=m["brand"],
        model=m["model"],
        colour="",
        purchase_date=None,
        fault_description="",
        symptom_code="",
        service_type=m["service_type"],
        accessories="",
        appearance="",
        promised_date=None,
    )
    return RepairOrder(
        id=m["id"],
        number=m["number"],
        status=m["status"],
        branch_id=m["branch_id"],
        store_id=m["store_id"],
        intake=intake,
        warranty=WarrantyDecision(m["warranty_status"], (), "", None, False),
        brand_authorised=m["brand_authorised"],
        repeat_repair=m["repeat_repair"],
        received_at=as_utc(m["received_at"]),
        created_by=m["created_by"],
        version=m["version"],
        work=work_from_json(m["work"]),
        closed_at=as_utc(m["closed_at"]) if m["closed_at"] else None,
    )


async def labour_prices(session: AsyncConnection, manufacturer: str) -> dict[str, int]:
    return {level: fen for _, level, fen in await labour_price_rows(session, manufacturer)}


async def returned_old_parts(
    session: AsyncConnection, order_ids: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Old parts back so far: order id -> its part line id -> how many."""
    ids = list(order_ids)
    found: dict[str, dict[str, int]] = {}
    if not ids:
        return found
    c = settlement_old_parts.c
    rows = await session.execute(
        select(c.order_id, c.line_id, c.returned).where(c.order_id.in_(ids))
    )
    for order_id, line_id, returned in rows:
        found.setdefault(order_id, {})[line_id] = returned
    return found


async def note_old_parts_returned(
    session: AsyncConnection, returned: Sequence[tuple[str, str, int]]
) -> None:
    """Add (order, part line, quantity) returns to what is known back: one statement."""
    if not returned:
        return
    c = settlement_old_parts.c
    # One row per order line, so the upsert touches each once.
    summed: dict[tuple[str, str], int] = {}
    for order_id, line_id, quantity in returned:
        summed[(order_id, line_id)] = summed.get((order_id, line_id), 0) + quantity
    statement = upsert_on(session.dialect.name, settlement_old_parts).values(
        [{"order_id": o, "line_id": x, "returned": q} for (o, x), q in summed.items()]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["order_id", "line_id"],
            set_={"returned": c.returned + statement.excluded.returned},
        )
    )


async def claims_holding(session: AsyncConnection, order_ids: Iterable[str]) -> list[str]:
    """The claims with a line for any of these orders still owing old parts."""
    ids = list(order_ids)
    if not ids:
        return []
    c = settlement_claim_lines.c
    rows = await session.execute(
        select(c.claim_id).where(c.order_id.in_(ids), c.old_parts_owed > 0).distinct()
    )
    return sorted(claim_id for (claim_id,) in rows)
