"""The rules of who a customer is and who owns a device after a visit: pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.customers.domain.customer import (
    UnusableVisit,
    Visit,
    check_visit,
    customer_after_visit,
    device_after_visit,
)

MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def visit(**changes: object) -> Visit:
    values: dict[str, object] = dict(
        order_id="o-1",
        branch_id="SH",
        store_id="SH-001",
        customer_name="张三",
        phone="13812345678",
        imei="490154203237518",
        brand="huawei",
        model="p60",
        received_at=MONDAY,
    )
    values.update(changes)
    return Visit(**values)  # type: ignore[arg-type]


def test_first_visit_makes_a_customer_with_one_order() -> None:
    customer = customer_after_visit(None, visit(customer_name=" 张三 "), new_id="c-1")
    assert (customer.id, customer.phone, customer.name) == ("c-1", "13812345678", "张三")
    assert customer.order_count == 1
    assert customer.first_seen_at == customer.last_seen_at == MONDAY
    assert customer.last_store_id == "SH-001"
    assert customer.marketing_consent is False
    assert customer.email is None


def test_returning_customer_takes_the_latest_name_and_store() -> None:
    first = customer_after_visit(None, visit(), new_id="c-1")
    later = MONDAY + timedelta(days=3)
    again = customer_after_visit(
        first,
        visit(order_id="o-2", customer_name="张三丰", store_id="ZJ-001", received_at=later),
        new_id="unused",
    )
    assert again.id == "c-1"
    assert again.name == "张三丰"
    assert again.order_count == 2
    assert (again.first_seen_at, again.last_seen_at, again.last_store_id) == (
        MONDAY,
        later,
        "ZJ-001",
    )


def test_an_empty_name_keeps_the_one_we_know() -> None:
    first = customer_after_visit(None, visit(), new_id="c-1")
    again = customer_after_visit(
        first, visit(customer_name="  ", received_at=MONDAY + timedelta(hours=1)), "x"
    )
    assert again.name == "张三"


def test_a_late_older_visit_counts_but_rolls_nothing_back() -> None:
    current = customer_after_visit(
        None, visit(customer_name="张三丰", store_id="SH-002"), new_id="c-1"
    )
    earlier = MONDAY - timedelta(days=30)
    after = customer_after_visit(
        current, visit(order_id="o-0", store_id="SH-001", received_at=earlier), "x"
    )
    assert after.order_count == 2
    assert after.name == "张三丰"
    assert (after.last_seen_at, after.last_store_id) == (MONDAY, "SH-002")
    assert after.first_seen_at == earlier


def test_a_new_device_belongs_to_whoever_brought_it() -> None:
    device = device_after_visit(None, visit(), customer_id="c-1")
    assert (device.imei, device.owner_id, device.brand, device.model) == (
        "490154203237518",
        "c-1",
        "huawei",
        "p60",
    )
    assert device.first_seen_at == device.last_seen_at == MONDAY


def test_a_device_brought_in_by_someone_else_moves_to_them_and_keeps_first_seen() -> None:
    device = device_after_visit(None, visit(), customer_id="c-1")
    later = MONDAY + timedelta(days=100)
    moved = device_after_visit(device, visit(phone="13900001111", received_at=later), "c-2")
    assert moved.owner_id == "c-2"
    assert (moved.first_seen_at, moved.last_seen_at) == (MONDAY, later)


def test_a_late_older_visit_does_not_move_the_device_back() -> None:
    device = device_after_visit(None, visit(), customer_id="c-2")
    earlier = MONDAY - timedelta(days=100)
    after = device_after_visit(device, visit(received_at=earlier), "c-1")
    assert after.owner_id == "c-2"
    assert (after.first_seen_at, after.last_seen_at) == (earlier, MONDAY)


def test_a_device_keeps_its_brand_when_a_visit_names_none() -> None:
    device = device_after_visit(None, visit(), customer_id="c-1")
    later = replace(visit(brand="", model=""), received_at=MONDAY + timedelta(days=1))
    assert device_after_visit(device, later, "c-1").brand == "huawei"


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"phone": "12812345678"}, ["phone"]),
        ({"imei": "490154203237519"}, ["imei"]),
        ({"phone": "", "imei": "", "order_id": ""}, ["no order id", "phone", "imei"]),
    ],
)
def test_a_visit_without_a_usable_phone_or_imei_is_refused(
    changes: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(UnusableVisit) as caught:
        check_visit(visit(**changes))
    message = str(caught.value)
    assert all(name in message for name in names)


def test_the_refusal_keeps_personal_data_out_of_the_logs() -> None:
    with pytest.raises(UnusableVisit) as caught:
        check_visit(visit(phone="12812345678", imei="490154203237519"))
    assert "12812345678" not in str(caught.value)
    assert "490154203237519" not in str(caught.value)


def test_a_good_visit_passes() -> None:
    check_visit(visit())
