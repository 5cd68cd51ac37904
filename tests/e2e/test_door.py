"""The door on the real processes (SQLite, or PostgreSQL with TEST_DATABASE_URL): a number typed
on a Chinese keyboard is stored as ASCII and found again; a date at the edge of the calendar is a
422 naming the field, never a 500."""

from __future__ import annotations

from tests.e2e.conftest import Api, new_imei, new_phone, repair_order

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
CALENDAR = "must be between 1990-01-01 and 2099-12-31"


async def test_a_full_width_imei_and_phone_are_kept_as_ascii_and_found_again(api: Api) -> None:
    imei, phone = new_imei(), new_phone()
    order = repair_order()
    order["customer"]["phone"] = phone.translate(FULL_WIDTH)
    order["device"]["imei"] = imei.translate(FULL_WIDTH)
    created = await api.post("sh001.clerk", "/api/v1/repair-orders", order)
    assert created.status_code == 201, created.text
    assert (created.json()["device"]["imei"], created.json()["customer"]["phone"]) == (imei, phone)

    passport = await api.get("sh001.clerk", f"/api/v1/devices/{imei}")
    assert passport.status_code == 200, passport.text
    assert [o["id"] for o in passport.json()["orders"]] == [created.json()["id"]]
    listed = await api.get("sh001.clerk", "/api/v1/repair-orders", imei=imei, phone=phone)
    assert [o["id"] for o in listed.json()["items"]] == [created.json()["id"]]


async def test_days_outside_the_calendar_are_422_naming_the_field(api: Api) -> None:
    for field, day in (("received_from", "0001-01-01"), ("received_to", "9999-12-31")):
        reply = await api.get("sh001.clerk", "/api/v1/repair-orders", **{field: day})
        assert reply.status_code == 422, reply.text
        assert reply.json()["errors"] == [{"field": field, "reason": CALENDAR}]

    order = repair_order(promised_date="9999-12-31")
    order["device"]["purchase_date"] = "0001-01-01"
    refused = await api.post("sh001.clerk", "/api/v1/repair-orders", order)
    assert refused.status_code == 422, refused.text
    assert sorted(e["field"] for e in refused.json()["errors"]) == [
        "device.purchase_date",
        "promised_date",
    ]
