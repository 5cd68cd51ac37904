"""Demo base data for orders: brands with their models and warranty periods, which brands each
demo store is authorised for (every service type), the fault codes every demo manufacturer
keeps, labour prices and the branches' approval thresholds. Each table is seeded while it is
empty only, so what HQ changed or withdrew since stays so."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.demo import demo_data
from servicekit.runtime import Runtime
from services.orders.adapters.base_data import (
    approval_thresholds,
    fault_codes,
    labour_prices,
    seed_if_empty,
)
from services.orders.adapters.orm import brands, models, store_authorisations
from services.orders.domain.order import SERVICE_TYPES


async def seed(runtime: Runtime) -> None:
    data = demo_data()
    async with runtime.uow() as uow:
        session = uow.session
        if await session.scalar(select(brands.c.code).limit(1)) is None:
            await _seed_brands(session, data)
        await seed_if_empty(
            session,
            store_authorisations,
            (
                {"store_id": store, "brand_code": brand, "service_type": service_type}
                for store, brand_codes in data["store_authorisations"].items()
                for brand in brand_codes
                for service_type in SERVICE_TYPES
            ),
        )
        await seed_if_empty(
            session,
            fault_codes,
            (
                {"brand_code": b["code"], "kind": kind, "active": True, **code}
                for b in data["brands"]
                for kind, codes in data["fault_codes"].items()
                for code in codes
            ),
        )
        await seed_if_empty(
            session,
            labour_prices,
            (
                {"brand_code": brand, "repair_level": level, "amount_fen": fen}
                for brand, levels in data["labour_prices"].items()
                for level, fen in levels.items()
            ),
        )
        await seed_if_empty(
            session,
            approval_thresholds,
            (
                {"branch_id": branch, "amount_fen": fen}
                for branch, fen in data["approval_thresholds"].items()
            ),
        )
        await uow.commit()


async def _seed_brands(session: AsyncConnection, data: dict[str, Any]) -> None:
    await session.execute(
        brands.insert(), [{"code": b["code"], "name": b["name"]} for b in data["brands"]]
    )
    for brand, policy in data["warranty_policies"].items():
        await session.execute(update(brands).where(brands.c.code == brand).values(**policy))
    await session.execute(
        models.insert(),
        [
            {"brand_code": b["code"], "code": m["code"], "name": m["name"]}
            for b in data["brands"]
            for m in b["models"]
        ],
    )
