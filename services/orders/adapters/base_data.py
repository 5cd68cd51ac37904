"""HQ base data tables (基础数据) and their SQL: the manufacturers' fault codes and labour prices,
the branches' approval thresholds, one version counter every change moves on, and the audit of
changes. Brands (with their warranty policies), models and the authorisation matrix are in orm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import BigId, upsert_on
from servicekit.errors import PreconditionFailed
from services.orders.adapters.orm import brands, metadata, models, store_authorisations
from services.orders.domain.base_data import FaultCode
from services.orders.domain.warranty import WarrantyPolicy

fault_codes = Table(
    "fault_codes",
    metadata,
    Column("brand_code", String(30), ForeignKey("brands.code"), primary_key=True),
    Column("kind", String(10), primary_key=True),  # symptom | fault | cause
    Column("code", String(30), primary_key=True),
    Column("description_zh", String(200), nullable=False),
    Column("description_en", String(200), nullable=False),
    # A retired code stays for the orders that name it; a new diagnosis may not use it.
    Column("active", Boolean, nullable=False),
)
"""现象/故障/原因代码: each manufacturer's tables."""

labour_prices = Table(
    "labour_prices",
    metadata,
    Column("brand_code", String(30), ForeignKey("brands.code"), primary_key=True),
    Column("repair_level", String(10), primary_key=True),
    Column("amount_fen", Integer, nullable=False),
)
"""劳务费: what the manufacturer pays per repair of a level under warranty."""

approval_thresholds = Table(
    "approval_thresholds",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("amount_fen", Integer, nullable=False),
)
"""A quote above its branch's amount needs the branch manager too."""

base_data_version = Table(
    "base_data_version",
    metadata,
    Column("id", Integer, primary_key=True),  # one row, id 1
    Column("version", Integer, nullable=False),
)
"""Moved on by every change in the same transaction: each replica's cache compares it on use."""

base_data_changes = Table(
    "base_data_changes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("what", String(30), nullable=False),
    Column("key", String(120), nullable=False),
    Column("value", Text, nullable=False),  # the row as it now is, JSON
    Column("version", Integer, nullable=False),
)
"""The audit of base data changes: who changed what, when, to what."""

POLICY_FIELDS = tuple(f.name for f in fields(WarrantyPolicy))


async def current_version(session: AsyncConnection) -> int:
    version = await session.scalar(
        select(base_data_version.c.version).where(base_data_version.c.id == 1)
    )
    return int(version or 0)


# The version column is a 32-bit integer.
MAX_VERSION = 2**31 - 1


async def record_change(
    session: AsyncConnection,
    user_id: str,
    at: datetime,
    what: str,
    key: str,
    value: Mapping[str, Any],
    expected_version: int = 0,
) -> int:
    """Move the version on and audit the change; the new version. With `expected_version`,
    only from that version: a change made meanwhile is a 412."""
    if expected_version > MAX_VERSION:
        # No version the column can hold: PostgreSQL would refuse to compare it.
        raise PreconditionFailed(f"the base data was never at version {expected_version}")
    statement = update(base_data_version).where(base_data_version.c.id == 1)
    if expected_version:
        statement = statement.where(base_data_version.c.version == expected_version)
    moved = await session.execute(statement.values(version=base_data_version.c.version + 1))
    if moved.rowcount != 1:
        raise PreconditionFailed(
            f"the base data is at version {await current_version(session)}, "
            f"not {expected_version}: read it again"
        )
    version = await current_version(session)
    await session.execute(
        base_data_changes.insert().values(
            at=at,
            user_id=user_id,
            what=what,
            key=key,
            value=json.dumps(dict(value), ensure_ascii=False, sort_keys=True),
            version=version,
        )
    )
    return version


@dataclass(frozen=True)
class Change:
    """One row of the audit."""

    seq: int
    at: datetime
    user_id: str
    what: str
    key: str
    value_json: str  # the row as it was set
    version: int


async def list_changes(
    session: AsyncConnection, what: str, key: str, limit: int, before_seq: int | None
) -> list[Change]:
    """The audit newest first, after the page that ended at `before_seq` (keyset on seq)."""
    c = base_data_changes.c
    conditions = []
    if what:
        conditions.append(c.what == what)
    if key:
        conditions.append(c.key == key)
    if before_seq is not None:
        conditions.append(c.seq < before_seq)
    rows = await session.execute(
        select(base_data_changes).where(*conditions).order_by(c.seq.desc()).limit(limit)
    )
    return [Change(r.seq, r.at, r.user_id, r.what, r.key, r.value, r.version) for r in rows]


async def brand_exists(session: AsyncConnection, brand: str) -> bool:
    return await session.scalar(select(brands.c.code).where(brands.c.code == brand)) is not None


def _upsert(session: AsyncConnection, table: Table, keys: list[str], row: dict[str, Any]) -> Any:
    statement = upsert_on(session.dialect.name, table).values(**row)
    return statement.on_conflict_do_update(
        index_elements=keys, set_={k: v for k, v in row.items() if k not in keys}
    )


async def put_brand(session: AsyncConnection, code: str, name: str) -> None:
    """A new manufacturer takes the warranty defaults of its columns; an existing one is
    renamed."""
    await session.execute(_upsert(session, brands, ["code"], {"code": code, "name": name}))


async def put_model(session: AsyncConnection, brand: str, code: str, name: str) -> None:
    await session.execute(
        _upsert(
            session,
            models,
            ["brand_code", "code"],
            {"brand_code": brand, "code": code, "name": name},
        )
    )


async def fault_code_rows(
    session: AsyncConnection, brand: str = "", kind: str = "", active_only: bool = False
) -> list[FaultCode]:
    c = fault_codes.c
    conditions = []
    if brand:
        conditions.append(c.brand_code == brand)
    if kind:
        conditions.append(c.kind == kind)
    if active_only:
        conditions.append(c.active.is_(True))
    rows = await session.execute(
        select(fault_codes).where(*conditions).order_by(c.brand_code, c.kind, c.code)
    )
    return [
        FaultCode(r.brand_code, r.kind, r.code, r.description_zh, r.description_en, r.active)
        for r in rows
    ]


async def put_fault_code(session: AsyncConnection, code: FaultCode) -> None:
    await session.execute(
        _upsert(
            session,
            fault_codes,
            ["brand_code", "kind", "code"],
            {
                "brand_code": code.brand,
                "kind": code.kind,
                "code": code.code,
                "description_zh": code.description_zh,
                "description_en": code.description_en,
                "active": code.active,
            },
        )
    )


async def labour_price_rows(
    session: AsyncConnection, brand: str = ""
) -> list[tuple[str, str, int]]:
    """(brand, repair level, fen)."""
    c = labour_prices.c
    statement = select(c.brand_code, c.repair_level, c.amount_fen).order_by(
        c.brand_code, c.repair_level
    )
    if brand:
        statement = statement.where(c.brand_code == brand)
    return [(b, level, fen) for b, level, fen in await session.execute(statement)]


async def put_labour_price(session: AsyncConnection, brand: str, level: str, fen: int) -> None:
    await session.execute(
        _upsert(
            session,
            labour_prices,
            ["brand_code", "repair_level"],
            {"brand_code": brand, "repair_level": level, "amount_fen": fen},
        )
    )


async def warranty_policies(session: AsyncConnection) -> dict[str, WarrantyPolicy]:
    rows = await session.execute(select(brands).order_by(brands.c.code))
    return {
        row.code: WarrantyPolicy(**{name: getattr(row, name) for name in POLICY_FIELDS})
        for row in rows
    }


async def put_warranty_policy(session: AsyncConnection, brand: str, policy: WarrantyPolicy) -> None:
    await session.execute(update(brands).where(brands.c.code == brand).values(**asdict(policy)))


async def authorisation_rows(
    session: AsyncConnection, store_id: str = "", brand: str = ""
) -> list[tuple[str, str, str]]:
    """(store, brand, service type)."""
    c = store_authorisations.c
    statement = select(c.store_id, c.brand_code, c.service_type).order_by(
        c.store_id, c.brand_code, c.service_type
    )
    if store_id:
        statement = statement.where(c.store_id == store_id)
    if brand:
        statement = statement.where(c.brand_code == brand)
    return [(s, b, t) for s, b, t in await session.execute(statement)]


async def set_authorisation(
    session: AsyncConnection, store_id: str, brand: str, service_type: str, authorised: bool
) -> None:
    c = store_authorisations.c
    key = {"store_id": store_id, "brand_code": brand, "service_type": service_type}
    if authorised:
        statement = upsert_on(session.dialect.name, store_authorisations).values(**key)
        await session.execute(statement.on_conflict_do_nothing())
    else:
        await session.execute(
            store_authorisations.delete().where(
                c.store_id == store_id, c.brand_code == brand, c.service_type == service_type
            )
        )


async def threshold_rows(session: AsyncConnection, branch_id: str = "") -> dict[str, int]:
    c = approval_thresholds.c
    statement = select(c.branch_id, c.amount_fen).order_by(c.branch_id)
    if branch_id:
        statement = statement.where(c.branch_id == branch_id)
    return {branch: fen for branch, fen in await session.execute(statement)}


async def put_threshold(session: AsyncConnection, branch_id: str, fen: int) -> None:
    await session.execute(
        _upsert(
            session, approval_thresholds, ["branch_id"], {"branch_id": branch_id, "amount_fen": fen}
        )
    )


async def seed_if_empty(
    session: AsyncConnection, table: Table, rows: Iterable[dict[str, Any]]
) -> None:
    """Demo data, the first time only: what HQ changed or withdrew since stays so."""
    if await session.scalar(select(func.count()).select_from(table)):
        return
    rows = list(rows)
    if rows:
        await session.execute(table.insert(), rows)
