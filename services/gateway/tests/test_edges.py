"""The gateway's edges: unstorable text refused by field, oversized bodies refused before they
are read, the login throttle and bounded password checks (deactivated users: test_door.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from servicekit.demo import DEMO_PASSWORD
from servicekit.errors import TooManyRequests
from servicekit.testing import DatabaseTarget
from services.gateway.app import create_app
from services.gateway.deps import Gateway
from services.gateway.login import (
    FIRST_LOCK,
    FIRST_SLOW_DOWN,
    FORGET_AFTER,
    LONGEST_LOCK,
    LONGEST_SLOW_DOWN,
    PasswordChecks,
    lock_for,
    slow_down_for,
)
from services.gateway.orm import login_failures
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import intake, make_settings

PROBLEM = "application/problem+json"
TOKEN = "/api/v1/auth/token"
PER_ADDRESS = 10


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


class Slept(list[float]):
    """The sign-in slow-downs asked for, in seconds, instead of waiting them out."""

    async def append_async(self, seconds: float) -> None:
        self.append(seconds)


@dataclass
class Edge:
    http: httpx.AsyncClient
    gw: Gateway
    clock: Clock
    fakes: FakeServices
    slept: Slept

    async def login(
        self, username: str, password: str, address: str | None = None
    ) -> httpx.Response:
        """A sign-in, from `address` as the (trusted, local) proxy names it."""
        headers = {"X-Forwarded-For": address} if address else {}
        return await self.http.post(
            TOKEN, data={"username": username, "password": password}, headers=headers
        )

    async def bearer(self, username: str) -> dict[str, str]:
        reply = await self.login(username, DEMO_PASSWORD)
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}


@pytest.fixture
async def edge(db_target: DatabaseTarget, fakes: FakeServices) -> AsyncIterator[Edge]:
    settings = make_settings(
        db_target,
        fakes.address,
        max_body_bytes=64 * 1024,
        login_failures_per_address=PER_ADDRESS,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        gw: Gateway = app.state.gateway
        clock = Clock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
        slept = Slept()
        gw.login_throttle.clock = clock
        gw.login_throttle.sleep = slept.append_async
        yield Edge(http, gw, clock, fakes, slept)


def fields(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == PROBLEM
    return [e["field"] for e in reply.json()["errors"]]


# --- unstorable text ---------------------------------------------------------------------


async def test_unstorable_text_in_a_json_body_is_named_by_its_path(edge: Edge) -> None:
    clerk = await edge.bearer("sh001.clerk")
    nul = intake(customer={"name": "张\x00三", "phone": "13812345678"})
    assert fields(await edge.http.post("/api/v1/repair-orders", json=nul, headers=clerk)) == [
        "customer.name"
    ]
    # A lone surrogate can only come as a JSON escape; it is not Unicode text.
    surrogate = (
        '{"customer": {"name": "x", "phone": "13812345678"}, "device": {"imei": '
        '"490154203237518", "brand": "huawei", "model": "mate60"}, '
        '"fault": {"description": "cracked \\ud800"}, "service_type": "repair"}'
    )
    reply = await edge.http.post(
        "/api/v1/repair-orders",
        content=surrogate,
        headers={**clerk, "Content-Type": "application/json"},
    )
    assert fields(reply) == ["fault.description"]
    assert edge.fakes.seen.requests == []  # neither reached orders


async def test_unstorable_text_in_query_path_and_form_is_named(edge: Edge) -> None:
    clerk = await edge.bearer("sh001.clerk")
    query = await edge.http.get("/api/v1/repair-orders?imei=49015%00", headers=clerk)
    assert fields(query) == ["imei"]
    path = await edge.http.get("/api/v1/repair-orders/ro-1%00", headers=clerk)
    assert fields(path) == ["order_id"]
    form = await edge.login("sh001\x00clerk", DEMO_PASSWORD)
    assert fields(form) == ["username"]
    assert edge.fakes.seen.requests == []


async def test_deeply_nested_json_is_no_server_error(edge: Edge) -> None:
    clerk = await edge.bearer("sh001.clerk")
    headers = {**clerk, "Content-Type": "application/json"}

    def nested(depth: int) -> str:
        return "[" * depth + '"\\u0000"' + "]" * depth

    # Within the JSON parser's depth the NUL is found, however deep; past it, the body is not
    # JSON: refused by a route that reads it, ignored by one that takes none.
    brands = "/api/v1/brands"
    within = await edge.http.request("GET", brands, content=nested(900), headers=headers)
    assert fields(within) == [".".join(["0"] * 900)]
    past = await edge.http.post("/api/v1/repair-orders", content=nested(5000), headers=headers)
    assert past.status_code == 400, past.text
    ignored = await edge.http.request("GET", brands, content=nested(5000), headers=headers)
    assert ignored.status_code == 200, ignored.text


# --- body cap ------------------------------------------------------------------------------


async def test_a_declared_oversized_body_is_refused_before_it_is_read(edge: Edge) -> None:
    clerk = await edge.bearer("sh001.clerk")
    body = intake(fault={"description": "x" * (70 * 1024)})
    reply = await edge.http.post("/api/v1/repair-orders", json=body, headers=clerk)
    assert reply.status_code == 413
    assert reply.headers["content-type"] == PROBLEM
    assert reply.json()["status"] == 413
    assert edge.fakes.seen.requests == []


async def test_a_chunked_body_is_cut_off_when_it_passes_the_limit(edge: Edge) -> None:
    clerk = await edge.bearer("sh001.clerk")
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"fault": {"description": "'
        for _ in range(1000):  # 1000 x 1 KiB, far past the 64 KiB limit
            sent += 1
            yield b"x" * 1024
        yield b'"}}'

    reply = await edge.http.post(
        "/api/v1/repair-orders",
        content=chunks(),
        headers={**clerk, "Content-Type": "application/json"},
    )
    assert reply.status_code == 413
    assert reply.json()["status"] == 413
    assert sent < 100  # reading stopped at the limit, not at the end
    assert edge.fakes.seen.requests == []
    # A small body still goes through.
    small = await edge.http.post("/api/v1/repair-orders", json=intake(), headers=clerk)
    assert small.status_code == 201


# --- login throttle ------------------------------------------------------------------------


def test_locks_grow_with_failures_up_to_a_cap() -> None:
    assert lock_for(4, 5) is None
    assert lock_for(5, 5) == FIRST_LOCK
    assert lock_for(6, 5) == 2 * FIRST_LOCK
    assert lock_for(7, 5) == 4 * FIRST_LOCK
    assert lock_for(50, 5) == LONGEST_LOCK
    assert FORGET_AFTER > LONGEST_LOCK


def count_checks(gw: Gateway) -> list[str]:
    """Every password check from now on, by the password it was given."""
    checked: list[str] = []
    verify = gw.password_checks.verify

    async def counting(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return await verify(password_hash, password)

    gw.password_checks.verify = counting  # type: ignore[method-assign]
    return checked


async def test_a_locked_username_gets_429_without_its_password_checked(edge: Edge) -> None:
    for _ in range(5):
        assert (await edge.login("sh002.tech", "wrong")).status_code == 401
    checked = count_checks(edge.gw)
    right = await edge.login("sh002.tech", DEMO_PASSWORD)
    wrong = await edge.login("sh002.tech", "wrong")
    for reply in (right, wrong):
        assert reply.status_code == 429
        assert reply.headers["Retry-After"] == "30"
        assert reply.headers["content-type"] == PROBLEM
    assert right.json() == wrong.json()
    assert checked == []  # the same answer, and no work that could tell them apart

    edge.clock.advance(timedelta(seconds=31))
    assert (await edge.login("sh002.tech", "wrong")).status_code == 401
    longer = await edge.login("sh002.tech", DEMO_PASSWORD)
    assert longer.status_code == 429
    assert longer.headers["Retry-After"] == "60"

    edge.clock.advance(timedelta(seconds=61))
    assert (await edge.login("sh002.tech", DEMO_PASSWORD)).status_code == 200
    # The success cleared the count: one more failure is just a failure.
    assert (await edge.login("sh002.tech", "wrong")).status_code == 401
    assert (await edge.login("sh002.tech", DEMO_PASSWORD)).status_code == 200


async def test_unknown_usernames_are_throttled_like_known_ones(edge: Edge) -> None:
    for _ in range(5):
        assert (await edge.login("nobody.here", "guess")).status_code == 401
    assert (await edge.login("nobody.here", "guess")).status_code == 429


async def test_one_address_failing_for_many_usernames_is_locked(edge: Edge) -> None:
    for n in range(PER_ADDRESS):
        assert (await edge.login(f"guess.{n}", "guess")).status_code == 401
    # Another username, even a real one with its right password, from that address: locked.
    assert (await edge.login("zj001.clerk", DEMO_PASSWORD)).status_code == 429


async def test_parallel_wrong_logins_are_checked_a_few_at_a_time(edge: Edge) -> None:
    running = 0
    most = 0
    verify = edge.gw.password_checks.verify

    async def watched(password_hash: str | None, password: str) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await verify(password_hash, password)
        finally:
            running -= 1

    edge.gw.password_checks.verify = watched  # type: ignore[method-assign]
    replies = await asyncio.gather(*(edge.login("zj002.tech", "wrong") for _ in range(30)))
    statuses = [r.status_code for r in replies]
    assert most <= edge.gw.settings.password_checks_at_once
    assert set(statuses) == {401, 429}
    # Sign-ins waiting for a check look again once it is their turn: a few past the limit.
    assert statuses.count(401) <= 5 + edge.gw.settings.password_checks_at_once


async def test_a_long_queue_for_password_checks_answers_429_at_once() -> None:
    checks = PasswordChecks(1)
    release = asyncio.Event()
    entered = 0

    async def sign_in() -> None:
        nonlocal entered
        async with checks.turn():
            entered += 1
            await release.wait()

    holders = [asyncio.create_task(sign_in()) for _ in range(1 + checks.max_waiting)]
    await asyncio.sleep(0)
    assert (entered, checks.waiting) == (1, checks.max_waiting)
    with pytest.raises(TooManyRequests) as refused:
        async with checks.turn():
            pass
    assert refused.value.retry_after_seconds == 1
    release.set()
    await asyncio.gather(*holders)
    assert entered == 1 + checks.max_waiting  # everyone who queued got their turn
    checks.close()


async def test_aged_out_failures_are_pruned(edge: Edge) -> None:
    assert (await edge.login("sh001.keeper", "wrong")).status_code == 401
    edge.clock.advance(FORGET_AFTER + timedelta(seconds=1))
    # The (username, address) pair's count, the address's and the username's.
    assert await edge.gw.login_throttle.prune() == 3
    async with edge.gw.db.session() as session:
        assert (await session.execute(select(login_failures))).first() is None


# --- a username is never locked for everyone -----------------------------------------------

THERE = "203.0.113.7"
HOME = "198.51.100.9"


async def test_a_username_failing_from_one_address_is_locked_there_only(edge: Edge) -> None:
    for _ in range(5):
        assert (await edge.login("sh001.tech", "wrong", THERE)).status_code == 401
    assert (await edge.login("sh001.tech", DEMO_PASSWORD, THERE)).status_code == 429
    # Its owner, elsewhere, signs in: slowed down a little, not locked out.
    edge.slept.clear()
    assert (await edge.login("sh001.tech", DEMO_PASSWORD, HOME)).status_code == 200
    assert edge.slept == [FIRST_SLOW_DOWN.total_seconds()]


async def test_a_username_failing_from_everywhere_is_slowed_down_never_locked(
    edge: Edge,
) -> None:
    for n in range(20):
        assert (await edge.login("sh001.tech", "wrong", f"192.0.2.{n}")).status_code == 401
    assert edge.slept[:2] == [0.5, 1.0]  # from the limit on, doubling
    edge.slept.clear()
    assert (await edge.login("sh001.tech", DEMO_PASSWORD, HOME)).status_code == 200
    assert edge.slept == [LONGEST_SLOW_DOWN.total_seconds()]
    # The owner's success clears the username's count: no more waiting.
    edge.slept.clear()
    assert (await edge.login("sh001.tech", DEMO_PASSWORD, HOME)).status_code == 200
    assert edge.slept == []


def test_slow_downs_grow_with_failures_up_to_a_cap() -> None:
    assert slow_down_for(4, 5) is None
    assert slow_down_for(5, 5) == FIRST_SLOW_DOWN
    assert slow_down_for(6, 5) == 2 * FIRST_SLOW_DOWN
    assert slow_down_for(50, 5) == LONGEST_SLOW_DOWN


# --- the client's address, from a trusted proxy only ---------------------------------------


async def test_x_forwarded_for_is_honoured_only_from_the_trusted_proxy_range(
    db_target: DatabaseTarget, fakes: FakeServices
) -> None:
    app = create_app(make_settings(db_target, fakes.address, forwarded_allow_ips="10.0.0.0/8"))

    def through(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gw")

    async def sign_in(http: httpx.AsyncClient, password: str) -> int:
        form = {"username": "sh001.tech", "password": password}
        reply = await http.post(TOKEN, data=form, headers={"X-Forwarded-For": THERE})
        return reply.status_code

    async with (
        app.router.lifespan_context(app),
        through("10.1.2.3") as ingress,
        through("192.0.2.50") as outsider,
    ):
        app.state.gateway.login_throttle.sleep = Slept().append_async
        for _ in range(5):
            assert await sign_in(ingress, "wrong") == 401
        # The ingress names the client: that client is locked, whichever pod it came through.
        assert await sign_in(ingress, DEMO_PASSWORD) == 429
        # Anyone else's X-Forwarded-For is ignored: the peer itself is the client.
        assert await sign_in(outsider, DEMO_PASSWORD) == 200
