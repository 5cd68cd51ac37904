"""Two replicas each of orders, inventory, customers and reporting on one PostgreSQL (a schema
per service, shared by its replicas), the gateway balancing over them: clerks take orders in
and walk paid repairs to closed while one replica of each service is SIGKILLed. Both replicas
served work; every order was taken once, is listed once and counted once by reporting; each
walked repair took its part from stock once. The clients retry a 5xx with the same
Idempotency-Key, as the console does. PostgreSQL only: replicas cannot share a SQLite file."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from devtools.system import SERVICES, LocalSystem, SystemConfig, check_replicas, parse_replicas
from servicekit.bus import DEAD_LETTERS_STREAM
from servicekit.db import Database
from servicekit.testing import eventually
from servicekit.timeutil import shanghai_day, utc_now
from tests.e2e.conftest import Api, repair_order

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
on_postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="replicas share a PostgreSQL database (TEST_DATABASE_URL)"
)

ORDERS = "/api/v1/repair-orders"
STORE, WAREHOUSE, PART = "SH-001", "WH-SH-001", "HW-BAT-P60"
CLERK, TECH, KEEPER, MANAGER = "sh001.clerk", "sh001.tech", "sh001.keeper", "sh.manager"
DIAGNOSIS = {
    "fault_code": "F-BAT",
    "cause_code": "C-AGE",
    "actions": ["replace_battery"],
    "parts": [{"part_id": PART, "quantity": 1}],
    "repair_level": "L2",
}
FINISH = {"actions_done": ["replace_battery"], "repair_level": "L2"}
# Each step of the paid repair and the status it leaves the order in.
WALK = [
    (TECH, "diagnosis", DIAGNOSIS, "diagnosed"),
    (CLERK, "quote", {"labour_fen": 8_000}, "awaiting_approval"),
    (CLERK, "approval", {"accepted": True}, "approved"),
    (TECH, "repair/start", {}, "in_repair"),
    (TECH, "repair/finish", FINISH, "quality_check"),
    (CLERK, "qc", {"passed": True}, "ready_for_pickup"),
]
CLIENTS = 4
# Repairs walked to closed before the kill and after it; as many orders only taken in.
BEFORE_KILL, AFTER_KILL = 3, 6
# Generous deadlines: the test waits for things to happen, it never times them.
WITHIN = 180.0


def test_replicas_are_named_service_equals_count() -> None:
    assert parse_replicas("orders=2, reporting=3,") == {"orders": 2, "reporting": 3}
    assert parse_replicas("") == {}


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("billing=2", "no service 'billing'; the services are orders, inventory"),
        ("gateway=2", "the gateway runs once"),
        ("orders=0", "orders='0': the count must be a whole number from 1 to 9"),
        ("orders=two", "orders='two'"),
        ("orders=2,orders=3", "orders is named twice"),
        ("orders", "'orders' is not <service>=<count>"),
    ],
)
def test_bad_replicas_are_refused_naming_the_fault(given: str, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        parse_replicas(given)


def test_several_replicas_need_postgresql() -> None:
    with pytest.raises(ValueError, match="orders cannot run as several replicas on SQLite"):
        check_replicas({"orders": 2}, None)
    with pytest.raises(ValueError, match="SQLite"):
        check_replicas({"orders": 2}, "sqlite+aiosqlite:///x.db")
    check_replicas({"orders": 1}, None)
    check_replicas({"orders": 2}, "postgresql://postgres@127.0.0.1/postgres")


def test_each_replica_has_its_own_ports_and_every_client_all_addresses(tmp_path: Path) -> None:
    config = SystemConfig(data_dir=tmp_path, replicas={"orders": 3})
    assert config.processes_of("orders") == ["orders", "orders-2", "orders-3"]
    assert [config.grpc_ports[name] for name in config.processes_of("orders")] == [
        50151,
        50251,
        50351,
    ]
    assert config.metrics_ports["orders-2"] == 9251
    assert config.address_of("orders") == "127.0.0.1:50151,127.0.0.1:50251,127.0.0.1:50351"
    assert config.address_of("inventory") == "127.0.0.1:50152"
    free = SystemConfig.on_free_ports(tmp_path, replicas={"reporting": 2})
    names = free.service_processes()
    assert len(names) == 5 and "reporting-2" in names
    assert len({free.grpc_ports[n] for n in names} | {free.metrics_ports[n] for n in names}) == 10


@pytest.fixture
async def replicated(tmp_path: Path) -> AsyncIterator[LocalSystem]:
    config = SystemConfig.for_tests(
        tmp_path,
        replicas=dict.fromkeys(SERVICES, 2),
        env={"RATE_LIMIT_PER_SECOND": "0"},
    )
    local = LocalSystem(config)
    try:
        await local.start()
        yield local
    finally:
        local.stop()
        await local.drop_schemas()
        print(f"logs in {local.log_dir}")
    assert local.bus_refusals() == []


@dataclass
class Tally:
    taken: list[str] = field(default_factory=list)  # every order taken in, by id
    closed: list[str] = field(default_factory=list)
    retried: int = 0  # answers of 502/503/504 sent again
    landed_on_retry: int = 0  # steps whose first try took effect though its answer was lost


class Clerks:
    """The store's staff on the gateway, retrying what a dead replica failed with the same
    Idempotency-Key (and the same If-Match) until a deadline."""

    def __init__(self, api: Api, tally: Tally) -> None:
        self.api, self.tally = api, tally

    async def send(
        self,
        method: str,
        user: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {**await self.api.as_user(user), **(headers or {})}
        deadline = time.monotonic() + 60
        while True:
            reply = await self.api.client.request(
                method, path, json=body, params=params, headers=sent
            )
            if reply.status_code not in (502, 503, 504):
                return reply
            assert time.monotonic() < deadline, f"{method} {path}: {reply.text}"
            self.tally.retried += 1
            await asyncio.sleep(0.2)

    async def read(self, order_id: str) -> httpx.Response:
        reply = await self.send("GET", CLERK, f"{ORDERS}/{order_id}")
        assert reply.status_code == 200, reply.text
        return reply

    async def take_in(self) -> str:
        body = repair_order()
        body["device"]["purchase_date"] = None  # out of warranty: the customer pays
        key = str(uuid.uuid4())
        reply = await self.send("POST", CLERK, ORDERS, body, headers={"Idempotency-Key": key})
        assert reply.status_code == 201, reply.text
        order_id: str = reply.json()["id"]
        self.tally.taken.append(order_id)
        return order_id

    async def step(
        self, order_id: str, etag: str, user: str, step: str, body: Any, status: str
    ) -> tuple[dict[str, Any], str]:
        headers = {"If-Match": etag, "Idempotency-Key": str(uuid.uuid4())}
        reply = await self.send("POST", user, f"{ORDERS}/{order_id}/{step}", body, headers=headers)
        if reply.status_code == 412:
            # A try whose answer was lost took effect: the order moved on exactly one step.
            reply = await self.read(order_id)
            assert reply.json()["version"] == int(etag.strip('"')) + 1, reply.text
            assert reply.json()["status"] == status, reply.text
            self.tally.landed_on_retry += 1
        assert reply.status_code == 200, f"{step}: {reply.text}"
        order: dict[str, Any] = reply.json()
        assert order["status"] == status, order
        return order, reply.headers["ETag"]

    async def paid_repair(self) -> None:
        order_id = await self.take_in()
        read = await self.read(order_id)
        order, etag = read.json(), read.headers["ETag"]
        for user, step, body, status in WALK:
            order, etag = await self.step(order_id, etag, user, step, body, status)
        due = {"method": "wechat_pay", "amount_fen": order["quote"]["total_fen"]}
        await self.step(order_id, etag, CLERK, "pickup", due, "closed")
        self.tally.closed.append(order_id)

    async def look_around(self) -> None:
        """What the store's people read meanwhile: stock (inventory), customers, figures."""
        mine = {"store_id": STORE}
        for user, path, params in (
            (KEEPER, f"/api/v1/warehouses/{WAREHOUSE}/stock", {}),
            (MANAGER, "/api/v1/customers", mine),
            (MANAGER, "/api/v1/reports/kpis", mine),
        ):
            reply = await self.send("GET", user, path, params=params)
            assert reply.status_code == 200, f"{path}: {reply.text}"


def work_done(metrics: str) -> int:
    """A replica's calls served (health checks aside) and events handled, from its /metrics."""
    done = 0.0
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "aftersales_grpc_server_handled_total":
                done += sample.value if sample.labels["method"] not in ("Check", "Watch") else 0
            elif sample.name == "aftersales_inbox_messages_total":
                done += sample.value if sample.labels["outcome"] == "handled" else 0
    return int(done)


async def work_by_replica(system: LocalSystem, names: list[str]) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5) as client:
        replies = await asyncio.gather(
            *(
                client.get(f"http://127.0.0.1:{system.config.metrics_ports[name]}/metrics")
                for name in names
            )
        )
    return {name: work_done(reply.text) for name, reply in zip(names, replies, strict=True)}


async def on_hand(clerks: Clerks) -> int:
    reply = await clerks.send("GET", KEEPER, f"/api/v1/warehouses/{WAREHOUSE}/stock")
    assert reply.status_code == 200, reply.text
    return int(next(lv["on_hand"] for lv in reply.json()["levels"] if lv["part_number"] == PART))


async def drained(system: LocalSystem) -> bool:
    """Every order event published and handled by reporting: nothing in orders' outbox, nothing
    pending or unacknowledged on reporting's consumer of the orders stream."""
    db = Database(system.config.database_url or "")
    try:
        async with db.begin() as conn:
            schema = f"{system.config.schema_prefix}orders"
            unpublished = await conn.scalar(
                text(f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL')
            )
    finally:
        await db.dispose()
    nc = await system.connect_bus()
    try:
        info = await nc.jetstream().consumer_info("ORDERS", "reporting-orders")
    finally:
        await nc.close()
    return unpublished == 0 and info.num_pending == 0 and info.num_ack_pending == 0


async def orders_in_database(system: LocalSystem) -> Counter[str]:
    db = Database(system.config.database_url or "")
    try:
        async with db.begin() as conn:
            schema = f"{system.config.schema_prefix}orders"
            rows = await conn.execute(
                text(f'SELECT id FROM "{schema}".repair_orders WHERE store_id = :store'),
                {"store": STORE},
            )
            return Counter(str(row[0]) for row in rows)
    finally:
        await db.dispose()


async def listed(clerks: Clerks, path: str, user: str, **params: str) -> Counter[str]:
    """Every id a paged list of the gateway shows, with how often."""
    seen: Counter[str] = Counter()
    cursor = None
    while True:
        query = {**params, "limit": "100", **({"cursor": cursor} if cursor else {})}
        reply = await clerks.send("GET", user, path, params=query)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        seen.update(str(item.get("order_id") or item["id"]) for item in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return seen


@on_postgres_only
async def test_replicas_share_the_work_and_one_killed_of_each_loses_and_doubles_nothing(
    replicated: LocalSystem,
) -> None:
    system = replicated
    today = shanghai_day(utc_now())
    window = {
        "store_id": STORE,
        "date_from": (today - timedelta(days=1)).isoformat(),
        "date_to": (today + timedelta(days=1)).isoformat(),
    }
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        api = Api(client)
        tally = Tally()
        clerks = Clerks(api, tally)
        receipt = {"part_number": PART, "quantity": 100, "unit_cost_fen": 10_000}
        stocked = await clerks.send(
            "POST",
            KEEPER,
            f"/api/v1/warehouses/{WAREHOUSE}/receipts",
            receipt,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert stocked.status_code in (200, 201), stocked.text
        stock_before = await on_hand(clerks)
        listed_before = await listed(clerks, ORDERS, MANAGER, store_id=STORE)
        counted_before = await listed(
            clerks, "/api/v1/reports/kpis/orders", MANAGER, figure="received", **window
        )

        stop = asyncio.Event()

        async def clerk() -> None:
            while not stop.is_set():
                await clerks.paid_repair()
                await clerks.take_in()
                await clerks.look_around()

        workers = [asyncio.create_task(clerk()) for _ in range(CLIENTS)]
        try:
            everyone = system.config.service_processes()

            async def all_replicas_served() -> dict[str, int] | None:
                assert not any(w.done() and w.exception() for w in workers)
                work = await work_by_replica(system, everyone)
                enough = len(tally.closed) >= BEFORE_KILL
                return work if enough and min(work.values()) > 0 else None

            before_kill = await eventually(all_replicas_served, within=WITHIN, interval=0.5)
            killed = [f"{service}-2" for service in SERVICES]
            for name in killed:
                system.kill(name)
            closed_at_kill = len(tally.closed)

            async def went_on() -> bool:
                assert not any(w.done() and w.exception() for w in workers)
                return len(tally.closed) >= closed_at_kill + AFTER_KILL

            await eventually(went_on, within=WITHIN, interval=0.5)
            stop.set()
            await asyncio.gather(*workers)
        finally:
            stop.set()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

        survivors = list(SERVICES)
        after = await work_by_replica(system, survivors)
        # Both replicas of every service served work before one of them was killed, and the
        # survivor went on serving.
        assert all(before_kill[name] > 0 for name in everyone), before_kill
        assert all(after[name] > before_kill[name] for name in survivors), (before_kill, after)
        assert sorted(system.dead()) == sorted(killed)

        taken = Counter(tally.taken)
        assert max(taken.values()) == 1  # every intake answered one new order
        await eventually(lambda: drained(system), within=WITHIN, interval=0.5)

        # The orders database: each order once, nothing more.
        in_database = await orders_in_database(system)
        assert in_database - Counter(listed_before) == taken
        # The gateway's list: each once.
        shown = await listed(clerks, ORDERS, MANAGER, store_id=STORE)
        assert shown - listed_before == taken
        # Reporting: each order counted once, as received and, if walked, as closed.
        counted = await listed(
            clerks, "/api/v1/reports/kpis/orders", MANAGER, figure="received", **window
        )
        assert counted - counted_before == taken
        closed = await listed(
            clerks, "/api/v1/reports/kpis/orders", MANAGER, figure="closed", **window
        )
        assert Counter(tally.closed) == Counter({i: n for i, n in closed.items() if i in taken})
        # Inventory: each walked repair issued its one part once.
        assert await on_hand(clerks) == stock_before - len(tally.closed)
        # And nothing was given up on.
        nc = await system.connect_bus()
        try:
            letters = await nc.jetstream().stream_info(DEAD_LETTERS_STREAM)
        finally:
            await nc.close()
        assert letters.state.messages == 0
        print(
            f"{len(tally.taken)} orders taken, {len(tally.closed)} walked to closed; "
            f"{tally.retried} answers retried, {tally.landed_on_retry} steps landed on a retry; "
            f"work before the kill {before_kill}, survivors after {after}"
        )
