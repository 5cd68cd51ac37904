"""Dates an intake form or an order filter may name: the business calendar (1990-2099); outside
it a 422 naming the field, never a 500 from a day with no bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput
from servicekit.grpc_client import call
from servicekit.runtime import close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, acting_as, service_settings, serving
from services.orders import handlers
from services.orders.domain.intake import IntakeForm, validate_intake
from services.orders.service import SPEC

TODAY = date(2026, 3, 1)
CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
FORM = IntakeForm(
    customer_name="张三",
    customer_phone="13812345678",
    imei="490154203237518",
    brand="huawei",
    model="P60",
    colour="",
    purchase_date="2026-01-01",
    fault_description="screen cracked",
    symptom_code="",
    service_type="repair",
    accessories="",
    appearance="",
    promised_date="2026-03-05",
)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"purchase_date": "0001-01-01"}, "device.purchase_date"),
        ({"purchase_date": "1989-12-31"}, "device.purchase_date"),
        ({"promised_date": "9999-12-31"}, "promised_date"),
        ({"promised_date": "2100-01-01"}, "promised_date"),
    ],
)
def test_a_date_outside_the_calendar_is_refused_by_name(
    changes: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_intake(replace(FORM, **changes), TODAY, ["P60"])
    assert [(e.field, e.reason) for e in caught.value.errors] == [
        (field, "must be between 1990-01-01 and 2099-12-31")
    ]


def test_dates_inside_the_calendar_are_taken() -> None:
    intake = validate_intake(FORM, TODAY, ["P60"])
    assert (intake.purchase_date, intake.promised_date) == (date(2026, 1, 1), date(2026, 3, 5))


@pytest.mark.parametrize(
    "named",
    [
        {"received_from": "0001-01-01"},
        {"received_to": "9999-12-31"},
        {"swap_due_by": "9999-12-31"},
    ],
)
def test_a_filter_day_outside_the_calendar_is_refused_by_name(named: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        handlers.order_filter(
            CLERK,
            branch_id="",
            store_id="",
            status="",
            service_type="",
            imei="",
            phone="",
            received_from=named.get("received_from", ""),
            received_to=named.get("received_to", ""),
            swap_due_by=named.get("swap_due_by", ""),
        )
    assert [(e.field, e.reason) for e in caught.value.errors] == [
        (field, "must be between 1990-01-01 and 2099-12-31") for field in named
    ]


@pytest.mark.service("orders")
async def test_a_filter_day_called_over_grpc_answers_the_precise_reason(
    db_target: DatabaseTarget, nats_server: NatsServer
) -> None:
    runtime = await open_runtime(SPEC, service_settings("orders", db_target, nats_server.url))
    asked = orders_pb2.ListRepairOrdersRequest(received_from="0001-01-01", received_to="3/1")
    try:
        async with serving(SPEC, runtime) as channel:
            stub = orders_pb2_grpc.OrdersServiceStub(channel)
            with acting_as(CLERK), pytest.raises(InvalidInput) as caught:
                await call(stub.ListRepairOrders, asked)
    finally:
        await close_runtime(runtime)
    assert [(e.field, e.reason) for e in caught.value.errors] == [
        ("received_from", "must be between 1990-01-01 and 2099-12-31"),
        ("received_to", "must be a date as YYYY-MM-DD"),
    ]
