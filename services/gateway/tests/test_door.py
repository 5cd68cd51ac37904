"""The door: what a Chinese keyboard types, dates at the edge of the calendar, identities that
change while their tokens live, and idempotency keys that fingerprint If-Match too."""

from __future__ import annotations

import httpx
import pytest

from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, intake

IMEI = "490154203237518"
PHONE = "13812345678"
FULL_WIDTH_IMEI = "４９０１５４２０３２３７５１８"
FULL_WIDTH_PHONE = "13８１２３４５６７８"


# --- input a Chinese keyboard types ---------------------------------------------------------


async def test_a_full_width_imei_and_phone_reach_the_services_as_ascii(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    headers = await auth_headers(client, "sh001.clerk")
    body = intake()
    body["customer"] = {"name": "张三", "phone": FULL_WIDTH_PHONE}
    body["device"] = {"imei": FULL_WIDTH_IMEI, "brand": "huawei", "model": "mate60"}
    reply = await client.post("/api/v1/repair-orders", json=body, headers=headers)
    assert reply.status_code == 201, reply.text
    sent = fakes.seen.requests[-1]
    assert (sent.customer.phone, sent.device.imei) == (PHONE, IMEI)

    await client.get(
        "/api/v1/repair-orders",
        params={"imei": FULL_WIDTH_IMEI, "phone": FULL_WIDTH_PHONE},
        headers=headers,
    )
    assert (fakes.seen.requests[-1].imei, fakes.seen.requests[-1].phone) == (IMEI, PHONE)


async def test_a_customer_is_found_by_the_full_width_number_typed(
    client: httpx.AsyncClient,
) -> None:
    headers = await auth_headers(client, "zj001.clerk")
    for params in ({"phone": FULL_WIDTH_PHONE}, {"imei": FULL_WIDTH_IMEI}):
        found = await client.get("/api/v1/customers/lookup", params=params, headers=headers)
        assert found.status_code == 200, found.text
        assert found.json()["id"] == "c-1"


@pytest.mark.parametrize(
    ("path", "field", "day"),
    [
        ("/api/v1/repair-orders", "received_from", "0001-01-01"),
        ("/api/v1/repair-orders", "received_to", "9999-12-31"),
        ("/api/v1/repair-orders", "swap_due_by", "9999-12-31"),
        ("/api/v1/reports/kpis", "date_from", "0001-01-01"),
        ("/api/v1/reports/kpis", "date_to", "9999-12-31"),
    ],
)
async def test_a_query_day_outside_the_calendar_is_422_naming_it(
    client: httpx.AsyncClient, fakes: FakeServices, path: str, field: str, day: str
) -> None:
    headers = await auth_headers(client, "sh.manager")
    calls = len(fakes.seen.requests)
    reply = await client.get(path, params={field: day}, headers=headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"] == [
        {"field": field, "reason": "must be between 1990-01-01 and 2099-12-31"}
    ]
    assert len(fakes.seen.requests) == calls  # refused at the door
