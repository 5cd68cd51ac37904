"""FindCustomer through a real in-process gRPC server and the shared client: answers come back
as protobuf, failures as the domain errors the service raised, with their field errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aftersales.customers.v1 import customers_pb2, customers_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import FieldError, InvalidInput, NotFound, Unauthenticated
from servicekit.grpc_client import call
from servicekit.runtime import Runtime
from servicekit.testing import acting_as, serving
from servicekit.timeutil import from_timestamp
from services.customers import handlers
from services.customers.service import SPEC
from services.customers.tests.support import IMEI, PHONE, Lane, order_received

pytestmark = pytest.mark.service("customers")

# A technician at another branch: the customer base is shared chain-wide.
ELSEWHERE = AuthContext("u-tech", "technician", "ZJ", "ZJ-002")


@pytest.fixture
async def stub(runtime: Runtime) -> AsyncIterator[customers_pb2_grpc.CustomersServiceStub]:
    async with serving(SPEC, runtime) as channel:
        yield customers_pb2_grpc.CustomersServiceStub(channel)


async def test_a_customer_is_found_by_phone_and_by_imei(
    runtime: Runtime, lane: Lane, stub: customers_pb2_grpc.CustomersServiceStub
) -> None:
    event = order_received(lane)
    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, event, lane.keys)
        await uow.commit()

    with acting_as(ELSEWHERE):
        by_phone = await call(stub.FindCustomer, customers_pb2.FindCustomerRequest(phone=PHONE))
        by_imei = await call(stub.FindCustomer, customers_pb2.FindCustomerRequest(imei=IMEI))

    assert by_phone == by_imei
    assert (by_phone.name, by_phone.phone, by_phone.order_count) == ("张三", PHONE, 1)
    assert by_phone.last_store_id == lane.store_id
    assert from_timestamp(by_phone.last_seen_at) == from_timestamp(event.received_at)
    assert [(d.imei, d.brand, d.model) for d in by_phone.devices] == [(IMEI, "huawei", "p60")]


async def test_an_unknown_customer_is_not_found(
    runtime: Runtime, stub: customers_pb2_grpc.CustomersServiceStub
) -> None:
    with acting_as(ELSEWHERE):
        for request in (
            customers_pb2.FindCustomerRequest(phone=PHONE),
            customers_pb2.FindCustomerRequest(imei=IMEI),
        ):
            with pytest.raises(NotFound):
                await call(stub.FindCustomer, request)


@pytest.mark.parametrize(
    ("request_", "field", "reason"),
    [
        (customers_pb2.FindCustomerRequest(phone="12345678901"), "phone", "mainland mobile"),
        (customers_pb2.FindCustomerRequest(imei="490154203237519"), "imei", "Luhn"),
        (customers_pb2.FindCustomerRequest(imei="4901542032"), "imei", "15 digits"),
        (customers_pb2.FindCustomerRequest(), "phone", "give phone or imei"),
    ],
    ids=["phone-not-mobile", "imei-bad-check-digit", "imei-too-short", "no-key"],
)
async def test_a_bad_key_is_refused_naming_the_field(
    runtime: Runtime,
    stub: customers_pb2_grpc.CustomersServiceStub,
    request_: customers_pb2.FindCustomerRequest,
    field: str,
    reason: str,
) -> None:
    with acting_as(ELSEWHERE), pytest.raises(InvalidInput) as caught:
        await call(stub.FindCustomer, request_)
    [error] = caught.value.errors
    assert isinstance(error, FieldError)
    assert error.field == field
    assert reason in error.reason


async def test_a_call_without_an_auth_context_is_refused(
    runtime: Runtime, stub: customers_pb2_grpc.CustomersServiceStub
) -> None:
    with pytest.raises(Unauthenticated):
        await call(stub.FindCustomer, customers_pb2.FindCustomerRequest(phone=PHONE))
