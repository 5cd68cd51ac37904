"""Reading and writing customers, devices and their orders. SQL lives here; rules live in
domain/."""

from __future__ import annotations

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.timeutil import as_utc
from services.customers.adapters.orm import customer_orders, customers, devices
from services.customers.domain.customer import Customer, Device, Visit


def _customer_from_row(row: Row[tuple[object, ...]]) -> Customer:
    m = row._mapping
    return Customer(
        id=m["id"],
        phone=m["phone"],
        name=m["name"],
        order_count=m["order_count"],
        first_seen_at=as_utc(m["first_seen_at"]),
        last_seen_at=as_utc(m["last_seen_at"]),
        last_store_id=m["last_store_id"],
        email=m["email"],
        marketing_consent=m["marketing_consent"],
    )


def _device_from_row(row: Row[tuple[object, ...]]) -> Device:
    m = row._mapping
    return Device(
        imei=m["imei"],
        owner_id=m["customer_id"],
        brand=m["brand"],
        model=m["model"],
        first_seen_at=as_utc(m["first_seen_at"]),
        last_seen_at=as_utc(m["last_seen_at"]),
    )


# Built once, values bound per call: the consumer runs these for every order taken in.
_CUSTOMER_BY_PHONE = select(customers).where(customers.c.phone == bindparam("phone"))
# `for_update` locks the row on PostgreSQL until the transaction ends, so two replicas counting
# orders of one customer at once cannot lose a count (SQLite has one writer anyway).
_CUSTOMER_BY_PHONE_FOR_UPDATE = _CUSTOMER_BY_PHONE.with_for_update()
_DEVICE_BY_IMEI = select(devices).where(devices.c.imei == bindparam("imei"))
_DEVICE_BY_IMEI_FOR_UPDATE = _DEVICE_BY_IMEI.with_for_update()
_ORDER_KNOWN = select(customer_orders.c.order_id).where(
    customer_orders.c.order_id == bindparam("order_id")
)
_UPDATE_CUSTOMER = customers.update().where(customers.c.id == bindparam("customer_id"))
_UPDATE_DEVICE = devices.update().where(devices.c.imei == bindparam("device_imei"))


async def customer_by_phone(
    session: AsyncConnection, phone: str, for_update: bool = False
) -> Customer | None:
    query = _CUSTOMER_BY_PHONE_FOR_UPDATE if for_update else _CUSTOMER_BY_PHONE
    row = (await session.execute(query, {"phone": phone})).first()
    return _customer_from_row(row) if row else None


async def customer_by_id(session: AsyncConnection, customer_id: str) -> Customer | None:
    row = (await session.execute(select(customers).where(customers.c.id == customer_id))).first()
    return _customer_from_row(row) if row else None


async def device_by_imei(
    session: AsyncConnection, imei: str, for_update: bool = False
) -> Device | None:
    query = _DEVICE_BY_IMEI_FOR_UPDATE if for_update else _DEVICE_BY_IMEI
    row = (await session.execute(query, {"imei": imei})).first()
    return _device_from_row(row) if row else None


async def devices_of(session: AsyncConnection, customer_id: str) -> list[Device]:
    rows = await session.execute(
        select(devices)
        .where(devices.c.customer_id == customer_id)
        .order_by(devices.c.first_seen_at, devices.c.imei)
    )
    return [_device_from_row(row) for row in rows]


async def order_known(session: AsyncConnection, order_id: str) -> bool:
    return await session.scalar(_ORDER_KNOWN, {"order_id": order_id}) is not None


def _customer_values(customer: Customer) -> dict[str, object]:
    return {
        "phone": customer.phone,
        "name": customer.name,
        "email": customer.email,
        "marketing_consent": customer.marketing_consent,
        "order_count": customer.order_count,
        "first_seen_at": customer.first_seen_at,
        "last_seen_at": customer.last_seen_at,
        "last_store_id": customer.last_store_id,
    }


async def add_customer(session: AsyncConnection, customer: Customer) -> None:
    # Values as parameters, not .values(): the compiled INSERT is cached (a consumer hot path).
    await session.execute(customers.insert(), {"id": customer.id, **_customer_values(customer)})


async def update_customer(session: AsyncConnection, customer: Customer) -> None:
    await session.execute(
        _UPDATE_CUSTOMER, {"customer_id": customer.id, **_customer_values(customer)}
    )


def _device_values(device: Device) -> dict[str, object]:
    return {
        "customer_id": device.owner_id,
        "brand": device.brand,
        "model": device.model,
        "first_seen_at": device.first_seen_at,
        "last_seen_at": device.last_seen_at,
    }


async def add_device(session: AsyncConnection, device: Device) -> None:
    await session.execute(devices.insert(), {"imei": device.imei, **_device_values(device)})


async def update_device(session: AsyncConnection, device: Device) -> None:
    await session.execute(_UPDATE_DEVICE, {"device_imei": device.imei, **_device_values(device)})


async def add_order(session: AsyncConnection, customer_id: str, visit: Visit) -> None:
    await session.execute(
        customer_orders.insert(),
        {
            "order_id": visit.order_id,
            "customer_id": customer_id,
            "branch_id": visit.branch_id,
            "store_id": visit.store_id,
            "received_at": visit.received_at,
        },
    )
