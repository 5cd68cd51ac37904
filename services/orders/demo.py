"""Demo base data for orders: brands with their models and warranty periods, and which brands
each demo store is authorised for. Idempotent: what exists is left alone."""

from __future__ import annotations

from sqlalchemy import select

from servicekit.demo import demo_data
from servicekit.runtime import Runtime
from services.orders.adapters.orm import brands, models, store_authorisations


async def seed(runtime: Runtime) -> None:
    data = demo_data()
    async with runtime.uow() as uow:
        session = uow.session
        if await session.scalar(select(brands.c.code).limit(1)) is not None:
            return
        await session.execute(
            brands.insert(), [{"code": b["code"], "name": b["name"]} for b in data["brands"]]
        )
        await session.execute(
            models.insert(),
            [
                {"brand_code": b["code"], "code": m["code"], "name": m["name"]}
                for b in data["brands"]
                for m in b["models"]
            ],
        )
        await session.execute(
            store_authorisations.insert(),
            [
                {"store_id": store, "brand_code": brand}
                for store, brand_codes in data["store_authorisations"].items()
                for brand in brand_codes
            ],
        )
        await uow.commit()
