"""Use cases of the customers service: plain async functions over a unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aftersales.events.v1 import events_pb2
from servicekit.errors import NotFound, invalid
from servicekit.identifiers import imei_problem, mobile_problem
from servicekit.inbox import UnprocessableEvent
from servicekit.timeutil import from_timestamp
from servicekit.uow import UnitOfWork
from services.customers.adapters import repository
from services.customers.domain.customer import (
    Customer,
    Device,
    UnusableVisit,
    Visit,
    check_visit,
    customer_after_visit,
    device_after_visit,
)

NewUow = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class CustomerProfile:
    """A customer with the devices they own now."""

    customer: Customer
    devices: list[Device]


def visit_from_order_received(event: events_pb2.OrderReceived) -> Visit:
    # An event without its own intake time falls back to when it occurred.
    received = event.received_at if event.HasField("received_at") else event.meta.occurred_at
    return Visit(
        order_id=event.order_id,
        branch_id=event.meta.branch_id,
        store_id=event.meta.store_id,
        customer_name=event.customer.name,
        phone=event.customer.phone,
        imei=event.device.imei,
        brand=event.device.brand,
        model=event.device.model,
        received_at=from_timestamp(received),
    )


async def record_order_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
    """A work order was taken in: the customer and their device become known (or are brought
    up to date) and the order joins the customer's history. The consumer commits."""
    visit = visit_from_order_received(event)
    try:
        check_visit(visit)
    except UnusableVisit as error:
        raise UnprocessableEvent(str(error)) from error
    session = uow.session
    if await repository.order_known(session, visit.order_id):
        return  # the same order announced again under another event id: counted already
    known = await repository.customer_by_phone(session, visit.phone, for_update=True)
    customer = customer_after_visit(known, visit, new_id=str(uuid.uuid4()))
    if known is None:
        await repository.add_customer(session, customer)
    else:
        await repository.update_customer(session, customer)
    seen = await repository.device_by_imei(session, visit.imei, for_update=True)
    device = device_after_visit(seen, visit, customer.id)
    if seen is None:
        await repository.add_device(session, device)
    else:
        await repository.update_device(session, device)
    await repository.add_order(session, customer.id, visit)


async def find_customer(new_uow: NewUow, phone: str, imei: str) -> CustomerProfile:
    """A returning customer by exact phone, or by the IMEI of a device they own now."""
    if phone:
        if problem := mobile_problem(phone):
            raise invalid("phone", problem)
    elif imei:
        if problem := imei_problem(imei):
            raise invalid("imei", problem)
    else:
        raise invalid("phone", "give phone or imei")
    async with new_uow() as uow:
        session = uow.session
        if phone:
            customer = await repository.customer_by_phone(session, phone)
        else:
            device = await repository.device_by_imei(session, imei)
            customer = await repository.customer_by_id(session, device.owner_id) if device else None
        if customer is None:
            # The number or IMEI stays out of the message: it ends up in logs.
            raise NotFound("no customer with this phone" if phone else "no device with this IMEI")
        owned = await repository.devices_of(session, customer.id)
    return CustomerProfile(customer, owned)
