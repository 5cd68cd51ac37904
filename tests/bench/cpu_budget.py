"""The CPU an order costs the system, measured the same way by the CI check
(tests/e2e/test_cpu_budget.py) and by `make bench`, and the figures recorded in the repository
(recorded.json) that both compare with.

The check's method: orders created one after the other through the gateway, the CPU seconds of
the system's processes (gateway, services, NATS) read from the operating system before and
after, once the consumers have handled every event the orders caused. Process CPU time, never
wall time: the machine is shared. PostgreSQL's backends are left out of this figure: matching
them needs the server on this machine and a view of its processes, which a CI runner need not
give, and a figure that sometimes has them and sometimes not compares with nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from nats.js import JetStreamContext

from devtools.system import LocalSystem
from servicekit.demo import DEMO_PASSWORD
from servicekit.identifiers import luhn_valid

RECORDED = Path(__file__).with_name("recorded.json")
CHECK_ORDERS = 150
CHECK_WARMUP = 20
# A regression fails the check only when it costs this many times the recorded figure: noise
# and a slower runner stay under it, a gross regression does not.
CHECK_LIMIT = 2.0
STORE = "SH-001"
CLERK, MANAGER = "sh001.clerk", "sh.manager"
ALL = "all"
# Consumer readings are READING_SECONDS apart: this many unchanged and drained say the work
# is done; this many unchanged and not drained, that the rest waits on nobody.
READING_SECONDS = 0.2
QUIET_READINGS, STUCK_READINGS = 3, 50
# Prefix of the check's IMEIs: apart from the bench's wrk (86) and flows (87).
IMEI_PREFIX = "88"


def database_name(system: LocalSystem) -> str:
    return "PostgreSQL" if system.config.database_url else "SQLite"


def system_processes(system: LocalSystem) -> dict[str, psutil.Process]:
    """The gateway, the services and our NATS server, by name."""
    found = {name: psutil.Process(pid) for name, pid in system.pids().items()}
    if system.nats and system.nats.process:
        found["nats-server"] = psutil.Process(system.nats.process.pid)
    return found


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each process."""
    return {name: sum(process.cpu_times()[:2]) for name, process in processes.items()}


def per_order_ms(
    before: dict[str, float], after: dict[str, float], orders: int
) -> dict[str, float]:
    """CPU milliseconds per order of each process between two readings, and of them all."""
    spent = {name: (after[name] - before[name]) * 1000 / orders for name in after}
    spent[ALL] = sum(spent.values())
    return {name: round(ms, 2) for name, ms in spent.items()}


def check_order(serial: int) -> dict[str, Any]:
    """The order wrk sends (load.lua): in warranty, a new customer and device each time."""
    body = f"{IMEI_PREFIX}{serial:012d}"
    imei = body + next(d for d in "0123456789" if luhn_valid(body + d))
    purchase = datetime.date.today() - datetime.timedelta(days=60)
    return {
        "customer": {"name": "压测客户", "phone": f"137{serial % 10**8:08d}"},
        "device": {
            "imei": imei,
            "brand": "huawei",
            "model": "p60",
            "purchase_date": purchase.isoformat(),
        },
        "fault": {"description": "benchmark: screen cracked"},
        "service_type": "repair",
    }


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    reply = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    )
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def orders_received(client: httpx.AsyncClient, manager: dict[str, str]) -> int:
    reply = await client.get("/api/v1/reports/kpis", params={"store_id": STORE}, headers=manager)
    reply.raise_for_status()
    return int(reply.json()["orders_received"])


async def create_orders(
    client: httpx.AsyncClient, clerk: dict[str, str], first: int, count: int
) -> None:
    for serial in range(first, first + count):
        headers = {**clerk, "Idempotency-Key": str(uuid.uuid4())}
        order = check_order(serial)
        reply = await client.post("/api/v1/repair-orders", json=order, headers=headers)
        if reply.status_code != 201:
            raise RuntimeError(f"create-order answered {reply.status_code}: {reply.text}")


def consumers_at_rest(states: list[dict[str, tuple[int, int, int]]]) -> bool:
    """Whether the readings of every durable consumer (pending, awaiting ack, last delivered)
    show the work done: each drained and nothing moved over the last QUIET_READINGS; or, for
    a consumer that nobody pulls from, nothing moved over the last STUCK_READINGS."""
    if not states:
        return False
    last = states[-1]
    drained = all(pending == 0 and unacked == 0 for pending, unacked, _ in last.values())
    needed = QUIET_READINGS if drained else STUCK_READINGS
    return len(states) >= needed and all(state == last for state in states[-needed:])


async def consumer_states(js: JetStreamContext) -> dict[str, tuple[int, int, int]]:
    states = {}
    for stream in await js.streams_info():
        name = str(stream.config.name)
        for info in await js.consumers_info(name):
            delivered = info.delivered.stream_seq if info.delivered else 0
            states[f"{name}/{info.name}"] = (
                info.num_pending or 0,
                info.num_ack_pending or 0,
                delivered or 0,
            )
    return states


async def wait_consumed(
    system: LocalSystem,
    client: httpx.AsyncClient,
    manager: dict[str, str],
    expected: int,
    timeout: float = 60.0,
) -> None:
    """Until reporting counted `expected` orders (so orders published them) and every durable
    consumer has handled what came (the consumers' own events included). Past the timeout it
    goes on: work left out only makes the figure smaller, never fails the check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await orders_received(client, manager) >= expected:
            break
        await asyncio.sleep(0.1)
    nc = await system.connect_bus()
    try:
        js = nc.jetstream()
        states: list[dict[str, tuple[int, int, int]]] = []
        while time.monotonic() < deadline and not consumers_at_rest(states):
            states.append(await consumer_states(js))
            await asyncio.sleep(READING_SECONDS)
    finally:
        await nc.close()


async def check_cpu_per_order(
    system: LocalSystem,
    client: httpx.AsyncClient,
    orders: int = CHECK_ORDERS,
    warmup: int = CHECK_WARMUP,
) -> dict[str, float]:
    """The CI check's measure: CPU milliseconds per create-order of each of the system's
    processes (and "all"), over `orders` created one after the other, after `warmup` more."""
    clerk, manager = await login(client, CLERK), await login(client, MANAGER)
    # Serials from the clock: another run on the same system takes new devices and phones.
    first = int(time.time()) % 10**6 * 10**4
    base = await orders_received(client, manager)
    await create_orders(client, clerk, first, warmup)
    await wait_consumed(system, client, manager, base + warmup)
    processes = system_processes(system)
    before = cpu_seconds(processes)
    await create_orders(client, clerk, first + warmup, orders)
    await wait_consumed(system, client, manager, base + warmup + orders)
    return per_order_ms(before, cpu_seconds(processes), orders)


def load_recorded(path: Path = RECORDED) -> dict[str, Any]:
    if not path.exists():
        return {}
    recorded: dict[str, Any] = json.loads(path.read_text())
    return recorded


def calibration_ms() -> float:
    """CPU ms this process spends on a fixed piece of pure Python (JSON, hashing, dicts: what a
    request's path is made of), best of five: how fast this machine runs the platform's kind of
    work now. The same machine is seen twice as slow at times (a shared host), and the check
    must not fail on that."""
    document = {f"field{i}": [i, str(i) * 3, {"nested": i % 7}] for i in range(200)}
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(60):
            text = json.dumps(document, sort_keys=True)
            hash(text)
            json.loads(text)
        best = min(best, time.process_time() - start)
    return round(best * 1000, 2)


def check_limit_ms(
    recorded: dict[str, Any], database: str, calibration: float | None = None
) -> float:
    """The CPU per order beyond which the CI check fails on `database`: twice the recorded
    figure, raised by as much as this machine runs the calibration slower now than when the
    figure was recorded (never lowered: a calibration read while the machine was busy must not
    tighten the check)."""
    entry = recorded.get(database, {})
    figure = entry.get("check_cpu_ms_per_order", {}).get(ALL)
    if figure is None:
        raise LookupError(f"{RECORDED.name} holds no check figure for {database}")
    then = entry.get("calibration_ms")
    scale = max(1.0, calibration / float(then)) if calibration and then else 1.0
    return round(CHECK_LIMIT * float(figure) * scale, 2)


def machine_note() -> str:
    """Cores, CPU model and Python, and BENCH_MACHINE_NOTE when set (say "shared" there)."""
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    note = f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"
    extra = os.environ.get("BENCH_MACHINE_NOTE")
    return f"{note}; {extra}" if extra else note


def moved(before: dict[str, float], after: dict[str, float]) -> list[str]:
    """Per process in either reading: `name before → after ms (±ms, ±%)`, "all" first."""
    names = sorted(set(before) | set(after), key=lambda name: (name != ALL, name))
    lines = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            lines.append(f"{name} {_ms(old)} → {_ms(new)} ms")
            continue
        change = f"{new - old:+.2f} ms"
        if old:
            change += f", {(new - old) * 100 / old:+.0f} %"
        lines.append(f"{name} {old:.2f} → {new:.2f} ms ({change})")
    return lines


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
