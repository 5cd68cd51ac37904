"""The door: what a Chinese keyboard types, dates at the edge of the calendar, identities that
change while their tokens live, and idempotency keys that fingerprint If-Match too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from servicekit.demo import DEMO_PASSWORD
from servicekit.testing import DatabaseTarget
from services.gateway.app import create_app
from services.gateway.deps import Gateway
from services.gateway.identities import FreshReads, Identities
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, intake, make_settings

PROBLEM = "application/problem+json"
TOKEN = "/api/v1/auth/token"

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


# --- identity that changes ------------------------------------------------------------------


@dataclass
class Replica:
    http: httpx.AsyncClient
    gw: Gateway

    async def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> httpx.Response:
        return await self.http.post(TOKEN, data={"username": username, "password": password})

    async def bearer(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
        reply = await self.sign_in(username, password)
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}


class Clock:
    """The replicas' monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# How old an identity epoch read the replicas take (IDENTITY_FRESH_SECONDS).
FRESH = 2.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=[FRESH, 0.0], ids=["fresh-for-2s", "fresh-for-0"])
async def replicas(
    db_target: DatabaseTarget, fakes: FakeServices, clock: Clock, request: pytest.FixtureRequest
) -> AsyncIterator[list[Replica]]:
    """Two gateway replicas on one database, as in prod: a change made through one must shut
    the old token out of it at once, and out of the other once its epoch read is due (at once
    too with IDENTITY_FRESH_SECONDS 0)."""
    async with contextlib.AsyncExitStack() as stack:
        found = []
        for _ in range(2):
            app = create_app(make_settings(db_target, fakes.address))
            await stack.enter_async_context(app.router.lifespan_context(app))
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw")
            )
            gw: Gateway = app.state.gateway
            gw.identities = Identities(gw.db, request.param, clock)
            found.append(Replica(http, gw))
        yield found


USER = "/api/v1/admin/users/zj001.tech"
AS_IS = {"display_name": "ZJ-001 维修工程师", "role": "technician", "org_unit_id": "ZJ-001"}


@pytest.mark.parametrize(
    ("change", "signs_in_again"),
    [
        ({"role": "clerk"}, True),
        ({"org_unit_id": "ZJ-002"}, True),
        ({"password": "another-password"}, True),
        ({"active": False}, False),
    ],
)
async def test_a_change_of_identity_refuses_older_tokens_here_at_once_elsewhere_when_due(
    replicas: list[Replica], clock: Clock, change: dict[str, object], signs_in_again: bool
) -> None:
    here, there = replicas
    admin = await here.bearer("hq.admin")
    old = await there.bearer("zj001.tech")
    # The other replica knows the user now (cached): it must not trust that past the change.
    assert (await there.http.get("/api/v1/me", headers=old)).status_code == 200

    changed = await here.http.put(USER, json={**AS_IS, **change}, headers=admin)
    assert changed.status_code == 200, changed.text

    refused = await here.http.get("/api/v1/me", headers=old)
    assert refused.status_code == 401, refused.text
    clock.now += FRESH
    for replica in replicas:
        refused = await replica.http.get("/api/v1/me", headers=old)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == PROBLEM
    password = str(change.get("password", DEMO_PASSWORD))
    again = await there.sign_in("zj001.tech", password)
    assert again.status_code == (200 if signs_in_again else 401)
    if signs_in_again:
        me = await there.http.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {again.json()['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json()["role"] == change.get("role", "technician")
        assert me.json()["store_id"] == change.get("org_unit_id", "ZJ-001")


async def test_another_replica_lets_a_revoked_token_in_no_longer_than_its_epoch_is_fresh(
    replicas: list[Replica], clock: Clock
) -> None:
    here, there = replicas
    fresh_for = there.gw.identities.fresh_for
    old = await there.bearer("zj001.tech")
    assert (await there.http.get("/api/v1/me", headers=old)).status_code == 200
    deactivated = await here.http.put(
        USER, json={**AS_IS, "active": False}, headers=await here.bearer("hq.admin")
    )
    assert deactivated.status_code == 200, deactivated.text

    # Within the window the other replica has not read the epoch again (0: no window at all).
    clock.now += fresh_for / 2
    still = await there.http.get("/api/v1/me", headers=old)
    assert still.status_code == (200 if fresh_for else 401)
    clock.now += fresh_for / 2
    assert (await there.http.get("/api/v1/me", headers=old)).status_code == 401


async def test_a_token_newer_than_the_version_known_is_read_afresh(
    replicas: list[Replica],
) -> None:
    here, there = replicas
    old = await there.bearer("zj001.tech")
    assert (await there.http.get("/api/v1/me", headers=old)).status_code == 200
    changed = await here.http.put(
        USER, json={**AS_IS, "role": "clerk"}, headers=await here.bearer("hq.admin")
    )
    assert changed.status_code == 200, changed.text
    # Signed in again through the replica that made the change: the other one, whose epoch
    # read is not due yet, lets the new token in rather than hold it to the version it knew.
    new = await here.bearer("zj001.tech")
    assert (await there.http.get("/api/v1/me", headers=new)).status_code == 200
    assert (await there.http.get("/api/v1/me", headers=old)).status_code == 401


async def test_a_password_reset_refuses_older_tokens_on_every_replica(
    replicas: list[Replica], clock: Clock
) -> None:
    here, there = replicas
    old = await there.bearer("zj001.tech")
    reset = await here.http.post(
        f"{USER}/password",
        json={"password": "reset-password"},
        headers=await here.bearer("hq.admin"),
    )
    assert reset.status_code == 200, reset.text
    assert (await here.http.get("/api/v1/me", headers=old)).status_code == 401
    clock.now += FRESH
    assert (await there.http.get("/api/v1/me", headers=old)).status_code == 401
    assert (await there.sign_in("zj001.tech", "reset-password")).status_code == 200


async def test_a_new_display_name_keeps_the_tokens(replicas: list[Replica]) -> None:
    here, there = replicas
    token = await there.bearer("zj001.tech")
    renamed = await here.http.put(
        USER, json={**AS_IS, "display_name": "张工"}, headers=await here.bearer("hq.admin")
    )
    assert renamed.status_code == 200, renamed.text
    assert (await there.http.get("/api/v1/me", headers=token)).status_code == 200
    # The identity epoch moved for nothing: no one else's token is refused either.
    assert (await here.http.get("/api/v1/me", headers=token)).status_code == 200


async def test_requests_arriving_together_share_one_fresh_read() -> None:
    reads = 0
    release = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        await release.wait()
        release.clear()
        return reads

    async def settle() -> None:
        """Let every task run until it waits on something."""
        for _ in range(5):
            await asyncio.sleep(0)

    fresh = FreshReads(read)
    first = [asyncio.ensure_future(fresh.value()) for _ in range(5)]
    await settle()
    assert reads == 1  # one read for the five
    # These arrived while the first read was running: it may have begun before a change they
    # must see, so they wait for the next read, which starts when the first ends.
    later = [asyncio.ensure_future(fresh.value()) for _ in range(3)]
    await settle()
    assert reads == 1
    release.set()
    assert await asyncio.gather(*first) == [1] * 5
    await settle()
    assert reads == 2
    release.set()
    assert await asyncio.gather(*later) == [2] * 3


async def test_a_read_fresh_enough_is_taken_and_one_begun_before_expiry_is_not_kept() -> None:
    clock = Clock()
    reads = 0
    release = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        await release.wait()
        release.clear()
        return reads

    fresh = FreshReads(read, fresh_for=1.0, clock=clock)
    first = asyncio.ensure_future(fresh.value())
    await asyncio.sleep(0)
    release.set()
    assert await first == 1
    clock.now += 0.9
    assert await fresh.value() == 1  # read 0.9 s before: fresh enough, no read
    clock.now += 0.1
    # Due: the next caller waits for a new read. It is expired while it runs (a change made
    # here), so what it read is not kept past its own callers.
    second = asyncio.ensure_future(fresh.value())
    for _ in range(3):  # until the read has begun
        await asyncio.sleep(0)
    assert reads == 2
    fresh.expire()
    release.set()
    assert await second == 2
    third = asyncio.ensure_future(fresh.value())
    await asyncio.sleep(0)
    release.set()
    assert (await third, reads) == (3, 3)


# --- the idempotency fingerprint ------------------------------------------------------------

DIAGNOSIS = {"fault_code": "F-LCD", "repair_level": "L2", "parts": [{"part_id": "HW-SCR-001"}]}


async def test_a_key_reused_with_another_if_match_is_422_naming_the_key(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    clerk = await auth_headers(client, "sh001.clerk")
    created = await client.post("/api/v1/repair-orders", json=intake(), headers=clerk)
    step = f"/api/v1/repair-orders/{created.json()['id']}/diagnosis"
    tech = {**await auth_headers(client, "sh001.tech"), "Idempotency-Key": "diagnose-1"}

    stale = await client.post(step, json=DIAGNOSIS, headers={**tech, "If-Match": '"7"'})
    assert stale.status_code == 412
    replayed = await client.post(step, json=DIAGNOSIS, headers={**tech, "If-Match": '"7"'})
    assert (replayed.status_code, replayed.headers["Idempotent-Replayed"]) == (412, "true")

    # Re-read the ETag, retried with the same key: not a replay of the old 412 for 24 hours.
    calls = len(fakes.seen.requests)
    reused = await client.post(step, json=DIAGNOSIS, headers={**tech, "If-Match": '"1"'})
    assert reused.status_code == 422, reused.text
    assert [e["field"] for e in reused.json()["errors"]] == ["Idempotency-Key"]
    assert len(fakes.seen.requests) == calls
    fresh = {**tech, "Idempotency-Key": "diagnose-2", "If-Match": '"1"'}
    assert (await client.post(step, json=DIAGNOSIS, headers=fresh)).status_code == 200
