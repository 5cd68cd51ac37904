"""`make bench`: the create-order path through the gateway at full load, against the gateway's
no-op path and a bare FastAPI → grpc.aio hop (tests/bench/bare_hop.py) as the baselines, on
the real processes; on PostgreSQL first (the production database) when it answers, then on
SQLite.

Load comes from wrk (Debian's package, installed when missing and we are root): a C client
that spends a small fraction of the server's CPU per request, so the figures are the server's.
The three paths run at full load in alternating slices, so a shared machine changing speed
during the run weighs on all alike. Prints requests/s and p50/p95/p99 latency for each, their
ratios to the bare hop, the CPU each process (PostgreSQL's backends and wrk included) spends
per request on each, the create-order latency at half its peak rate, the order-to-KPI delay
(an order stamped received → counted by reporting and visible through the API), and each
process's resident memory. Before the load, the CI check's own measure (tests/bench/
cpu_budget.py: orders one by one, process CPU per order).

Then issue 12's targets with met or missed, and the CPU per create-order against the figures
recorded in tests/bench/recorded.json (`BENCH_RECORD=1` records this run's instead).
Then, on PostgreSQL, create-order and the paid-repair lifecycle with one replica of orders
against two, side by side (tests/bench/replicas.py; `BENCH_REPLICAS=0` skips them), and the
report centre's dashboards over a seeded national history (tests/bench/dashboards.py;
`BENCH_DASHBOARDS=0` skips them).
`BENCH_PROFILE=1` runs py-spy on every service process during the create-order slices and
prints where each spent its samples (tests/bench/profiling.py).

Then the flows that need state (ids, ETags), from Python with httpx at light load: a paid
repair intake to closed (4 clients, then one alone), the issue of a part to an order (reserve
at the customer's approval, issue at the repair's start) and a transfer between two warehouses
of one branch (request → approve → ship → receive). For each: runs/s, p50/p95 of a run's wall
time, the gateway's own request time per run (its /metrics histogram sums, before and after),
and the CPU per run of the system and of the client. Figures also go to
bench-results/latest.json.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from devtools.system import LocalSystem, SystemConfig
from servicekit.db import Database
from servicekit.demo import DEMO_PASSWORD
from servicekit.identifiers import luhn_valid
from tests.bench import cpu_budget, dashboards, replicas
from tests.bench.bare_hop import BareHop
from tests.bench.profiling import Profiler

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# The full-load paths take turns in this many slices each (SECONDS in all per path).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# PostgreSQL to measure on (each service in a fresh schema, dropped afterwards); unset, the
# local server when it answers; "none" skips PostgreSQL. BENCH_SQLITE=0 skips SQLite.
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
STORE = "SH-001"
REST_SECONDS = 5
LUA = Path(__file__).with_name("load.lua")
# How the load generator shows among the processes.
LOAD_GENERATOR = "wrk"
RECORD = os.environ.get("BENCH_RECORD") == "1"
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
DASHBOARDS = os.environ.get("BENCH_DASHBOARDS", "1") != "0"
REPLICAS = os.environ.get("BENCH_REPLICAS", "1") != "0"
# The full-load paths, in the order they take turns: the wrk mode each sends, and its name.
PATHS = {
    "bare": ("ping", "bare hop (FastAPI→gRPC)"),
    "ping": ("ping", "no-op (gateway→gRPC)"),
    "create": ("create", "create order (peak)"),
}
# Makes keys and IMEIs unique across the wrk runs of one bench.
_runs = itertools.count(1)


@dataclass
class Figures:
    name: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass
class Sample:
    """What one wrk run gave: its latency histogram (µs → count), failures, time taken."""

    histogram: dict[int, int]
    errors: int
    seconds: float
    cpu_seconds: float  # wrk's own


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("make bench needs wrk: install it with `apt-get install wrk` (Debian/Ubuntu).")
    print("wrk is missing: installing it from Debian's packages ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    if not shutil.which("wrk"):
        sys.exit("apt-get installed wrk but it is not on PATH")


async def postgres_url() -> str | None:
    """BENCH_DATABASE_URL, or the machine's PostgreSQL when it answers within a few seconds."""
    url = os.environ.get("BENCH_DATABASE_URL", LOCAL_POSTGRES)
    if url.lower() in ("", "none"):
        return None
    db = Database(url)
    try:
        await asyncio.wait_for(db.ping(), 5)
    except Exception as error:
        if "BENCH_DATABASE_URL" in os.environ:
            raise
        print(f"PostgreSQL at {url} does not answer ({error!r}): SQLite only", flush=True)
        return None
    finally:
        await db.dispose()
    return url


def percentile(histogram: dict[int, int], q: float) -> float:
    """The q-quantile in milliseconds of a µs → count histogram."""
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank = min(total - 1, int(q * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            break
    return value / 1000


def percentile_of(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    gateway_url: str, path: str, token: str, seconds: int, rate: float | None = None
) -> Sample:
    """CLIENTS connections of one wrk thread, back to back, or pacing to about `rate`/s in all."""
    run = next(_runs)
    with tempfile.NamedTemporaryFile(prefix="bench-wrk-", suffix=".txt") as out:
        env = {
            **os.environ,
            "BENCH_MODE": path,
            "BENCH_TOKEN": token,
            "BENCH_RUN": str(run),
            # Two months old: in warranty, whatever today is.
            "BENCH_PURCHASE": (datetime.date.today() - datetime.timedelta(days=60)).isoformat(),
            "BENCH_DELAY_MS": str(1000 * CLIENTS / rate if rate else 0),
            "BENCH_OUT": out.name,
        }
        # wrk's CPU: it is our only child reaped in between.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = await asyncio.create_subprocess_exec(
            "wrk",
            "-t1",
            f"-c{CLIENTS}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(LUA),
            gateway_url,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode != 0:
            raise RuntimeError(f"wrk failed ({process.returncode}):\n{output.decode()}")
        return read_sample(
            Path(out.name),
            (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        )


def read_sample(path: Path, cpu_seconds: float) -> Sample:
    """What load.lua's `done` wrote: duration, failures, then the latency histogram."""
    lines = path.read_text().split()
    duration_us, status_errors, socket_errors = map(int, lines[0:3])
    values = list(map(int, lines[3:]))
    return Sample(
        histogram=dict(zip(values[0::2], values[1::2], strict=True)),
        errors=status_errors + socket_errors,
        seconds=duration_us / 1e6,
        cpu_seconds=cpu_seconds,
    )


def figures(name: str, samples: list[Sample]) -> Figures:
    histogram: dict[int, int] = {}
    for sample in samples:
        for value, count in sample.histogram.items():
            histogram[value] = histogram.get(value, 0) + count
    errors = sum(sample.errors for sample in samples)
    # wrk's histogram holds every response; failures are not successes' latency, but they are
    # few (reported) and cannot be told apart in it.
    requests = sum(histogram.values()) - errors
    seconds = sum(sample.seconds for sample in samples)
    return Figures(
        name=name,
        requests=requests,
        errors=errors,
        seconds=round(seconds, 2),
        rps=round(requests / seconds, 1),
        p50_ms=round(percentile(histogram, 0.50), 2),
        p95_ms=round(percentile(histogram, 0.95), 2),
        p99_ms=round(percentile(histogram, 0.99), 2),
    )


async def kpi_count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    reply = await client.get("/api/v1/reports/kpis", params={"store_id": STORE}, headers=headers)
    return int(reply.json()["orders_received"])


async def settled_kpi_count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The KPI count once the consumers have caught up (unchanged for a second)."""
    deadline = time.monotonic() + 30
    last = await kpi_count(client, headers)
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        count = await kpi_count(client, headers)
        if count == last:
            return count
        last = count
    return last


async def wait_counted(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> None:
    """Until the KPI count reaches `count`, or 30 s have passed."""
    for _ in range(300):
        if await kpi_count(client, headers) >= count:
            # One more poll of the poller sees it too.
            await asyncio.sleep(0.05)
            return
        await asyncio.sleep(0.1)


async def poll_kpi(
    client: httpx.AsyncClient, headers: dict[str, str], stop: asyncio.Event
) -> list[tuple[float, int]]:
    """(wall time, KPI count) every 10 ms until told to stop."""
    seen = []
    while not stop.is_set():
        seen.append((time.time(), await kpi_count(client, headers)))
        await asyncio.sleep(0.01)
    return seen


async def received_since(
    client: httpx.AsyncClient, headers: dict[str, str], since: float
) -> list[float]:
    """When orders stamped each order of STORE received at or after `since` (wall time)."""
    found = []
    cursor = None
    while True:
        params: dict[str, Any] = {"store_id": STORE, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        reply = (await client.get("/api/v1/repair-orders", params=params, headers=headers)).json()
        for order in reply["items"]:
            stamp = datetime.datetime.fromisoformat(order["received_at"].replace("Z", "+00:00"))
            if stamp.timestamp() >= since:
                found.append(stamp.timestamp())
        cursor = reply.get("next_cursor")
        if not cursor:
            return sorted(found)


def order_to_kpi_delays(
    base: int, received: list[float], seen: list[tuple[float, int]]
) -> list[float]:
    """The k-th order received counts as visible at the first poll whose count reaches base + k.
    The poll interval (10 ms) bounds the error; the stamp is taken inside orders' transaction,
    so the delay includes its commit."""
    delays = []
    for k, accepted in enumerate(received, start=1):
        visible = next((t for t, count in seen if count >= base + k and t >= accepted), None)
        if visible is not None:
            delays.append(visible - accepted)
    return delays


def resident_mb(system: LocalSystem) -> dict[str, float]:
    return {
        name: round(proc.memory_info().rss / 2**20, 1)
        for name, proc in cpu_budget.system_processes(system).items()
    }


def postgres_backends(system: LocalSystem) -> list[psutil.Process]:
    """The PostgreSQL server processes serving our processes' connections: the server ends of
    the TCP connections our processes hold to its port. Empty when it is not on this machine
    or we may not see other users' sockets."""
    url = system.config.database_url
    if not url:
        return []
    port = urlsplit(url).port or 5432
    ours = set(system.pids().values())
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    client_ports = {_port(c.laddr) for c in connections if c.pid in ours and _port(c.raddr) == port}
    backends = []
    for c in connections:
        if c.pid and _port(c.laddr) == port and _port(c.raddr) in client_ports:
            try:
                backends.append(psutil.Process(c.pid))
            except psutil.NoSuchProcess:
                continue
    return backends


def _port(address: Any) -> int | None:
    """The port of a psutil address, None for an unconnected end (an empty tuple)."""
    return int(address[1]) if address else None


def cpu_seconds(system: LocalSystem) -> dict[str, float]:
    """CPU seconds (user + system) so far of each process, PostgreSQL backends by pid."""
    found = cpu_budget.cpu_seconds(cpu_budget.system_processes(system))
    for backend in postgres_backends(system):
        try:
            found[f"postgresql:{backend.pid}"] = sum(backend.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return found


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per process, the CPU seconds between two readings; PostgreSQL's backends summed (one
    that connected in between counts in full, one that exited is lost: pools keep theirs)."""
    spent: dict[str, float] = {}
    for name, seconds in after.items():
        key = "postgresql" if name.startswith("postgresql:") else name
        spent[key] = spent.get(key, 0.0) + seconds - before.get(name, 0.0)
    return spent


async def interleaved(
    system: LocalSystem, bare: BareHop, token: str, profiler: Profiler | None
) -> dict[str, tuple[Figures, dict[str, float]]]:
    """The bare hop, the no-op and create-order at full load, taking turns in ROUNDS slices
    each, so a shared machine speeding up or slowing down during the run weighs on all alike.
    For each: its figures, and the CPU milliseconds each process spent per request on it (the
    bare hop's own two processes for it, the system's for the others). The profiler, if any,
    samples the services during the create-order slices."""
    samples: dict[str, list[Sample]] = {path: [] for path in PATHS}
    cpu: dict[str, dict[str, float]] = {path: {} for path in PATHS}
    slice_seconds = max(1, round(SECONDS / ROUNDS))

    def read(path: str) -> dict[str, float]:
        if path == "bare":
            return cpu_budget.cpu_seconds(bare.processes())
        return cpu_seconds(system)

    for _ in range(ROUNDS):
        for path, (mode, _name) in PATHS.items():
            url = bare.url if path == "bare" else system.gateway_url
            profiled = profiler if path == "create" else None
            if profiled:
                profiled.start(system.pids())
            before = read(path)
            sample = await drive(url, mode, token, slice_seconds)
            samples[path].append(sample)
            # The consumers' catching up belongs to the path that gave them the work.
            await asyncio.sleep(0.5)
            spent = cpu_spent(before, read(path))
            if profiled:
                profiled.stop()
            spent[LOAD_GENERATOR] = sample.cpu_seconds
            for name, seconds in spent.items():
                cpu[path][name] = cpu[path].get(name, 0.0) + seconds
    result = {}
    for path, (_mode, name) in PATHS.items():
        found = figures(name, samples[path])
        per_request = {
            process: round(seconds * 1000 / max(found.requests, 1), 2)
            for process, seconds in cpu[path].items()
        }
        result[path] = (found, per_request)
    return result


def ratios(bare: Figures, noop: Figures, create: Figures) -> dict[str, float | None]:
    """Throughput of the gateway's paths against the bare hop's, and create against no-op."""

    def ratio(one: Figures, other: Figures) -> float | None:
        return round(one.rps / other.rps, 3) if other.rps else None

    return {
        "no-op / bare": ratio(noop, bare),
        "create / bare": ratio(create, bare),
        "create / no-op": ratio(create, noop),
    }


@dataclass
class Target:
    """One of issue 12's targets: `value` must be at most (or at least) `limit`."""

    name: str
    value: float | None
    limit: float
    at_most: bool

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.met:
            return "met"
        return f"missed by {abs(self.value - self.limit):.2f}"


def targets(run: dict[str, Any]) -> list[Target]:
    """Issue 12's targets, from one database's run."""
    alone = run["flows"][LIFECYCLE_ALONE]
    return [
        Target(
            "CPU ms per create-order, all processes",
            run["system_cpu_ms_per_request"]["create_peak"],
            5.0,
            at_most=True,
        ),
        Target("no-op / bare hop req/s", run["ratios"]["no-op / bare"], 0.6, at_most=False),
        Target("create / bare hop req/s", run["ratios"]["create / bare"], 0.25, at_most=False),
        Target("create p99 ms at half peak", run["create_half"]["p99_ms"], 50.0, at_most=True),
        Target(
            "paid repair p50 server ms (one client)",
            alone["server_p50_ms"],
            100.0,
            at_most=True,
        ),
    ]


def peak_cpu_by_process(run: dict[str, Any]) -> dict[str, float]:
    """CPU ms per create-order at peak of each process of the system, and of them all."""
    found = {
        name: ms
        for name, ms in run["cpu_ms_per_request"]["create_peak"].items()
        if name != LOAD_GENERATOR
    }
    found[cpu_budget.ALL] = round(sum(found.values()), 2)
    return found


def recorded_entry(run: dict[str, Any], day: datetime.date) -> dict[str, Any]:
    """What recorded.json keeps of a database's run."""
    return {
        "recorded": day.isoformat(),
        "machine": cpu_budget.machine_note(),
        "commit": git_commit(),
        "create_order_cpu_ms": peak_cpu_by_process(run),
        "check_cpu_ms_per_order": run["check_cpu_ms_per_order"],
        "calibration_ms": run["calibration_ms"],
    }


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def record(runs: list[dict[str, Any]], path: Path = cpu_budget.RECORDED) -> None:
    """This run's figures into recorded.json, each database's in place of its old ones."""
    recorded = cpu_budget.load_recorded(path)
    for run in runs:
        recorded[run["database"]] = recorded_entry(run, datetime.date.today())
    path.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")
    print(f"figures recorded in {path}")


def compared_with_recorded(run: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """How far this run's CPU per create-order moved from the recorded figures, and the CI
    check's measure against its limit."""
    entry = recorded.get(run["database"])
    if not entry:
        return [f"nothing recorded for {run['database']} in {cpu_budget.RECORDED.name}"]
    check = run["check_cpu_ms_per_order"]
    limit = cpu_budget.check_limit_ms(recorded, run["database"], run["calibration_ms"])
    verdict = "within" if check[cpu_budget.ALL] <= limit else "BEYOND"
    return [
        f"CPU ms per create-order at peak, recorded {entry['recorded']} ({entry['machine']}, "
        f"{entry['commit']}) → now:",
        *(
            f"  {line}"
            for line in cpu_budget.moved(entry["create_order_cpu_ms"], peak_cpu_by_process(run))
        ),
        f"the CI check's measure ({cpu_budget.CHECK_ORDERS} orders one by one; gateway, "
        "services, NATS), recorded → now:",
        *(f"  {line}" for line in cpu_budget.moved(entry["check_cpu_ms_per_order"], check)),
        f"  {verdict} the CI check's limit of {limit} ms ({cpu_budget.CHECK_LIMIT:g} × recorded)",
    ]


def system_cpu(per_request: dict[str, float]) -> float:
    """CPU ms per request of the system under test: every process but the load generator."""
    return round(sum(v for k, v in per_request.items() if k != LOAD_GENERATOR), 2)


async def login(client: httpx.AsyncClient, username: str) -> str:
    reply = await client.post(
        "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


async def paced_with_kpi(
    system: LocalSystem,
    client: httpx.AsyncClient,
    token: str,
    manager: dict[str, str],
    rate: float,
) -> tuple[Sample, list[float], list[float]]:
    """Orders at about `rate`/s for SECONDS while the KPI is polled: the load's sample, the
    orders' received stamps, and each one's order-to-KPI delay."""
    base = await settled_kpi_count(client, manager)
    stop = asyncio.Event()
    poller = asyncio.create_task(poll_kpi(client, manager, stop))
    try:
        started = time.time()
        sample = await drive(system.gateway_url, "create", token, SECONDS, rate)
        received = await received_since(client, manager, started)
        await wait_counted(client, manager, base + len(received))
    finally:
        stop.set()
        seen = await poller
    return sample, received, order_to_kpi_delays(base, received, seen)


# Flows with state (ids, versions, ETags): driven from Python with httpx at light load, a few
# clients back to back. The client's CPU is measured and printed beside the server's.
FLOW_CLIENTS = int(os.environ.get("BENCH_FLOW_CLIENTS", "4"))
# How many runs of each flow: a paid repair intake to closed, an issue to an order, a transfer.
FLOW_RUNS = int(os.environ.get("BENCH_FLOW_RUNS", "50"))
ORDERS = "/api/v1/repair-orders"
# The repair's part (a Huawei P60 battery) from the store's warehouse; transfers move a Samsung
# battery from Zhejiang's central warehouse to its store ZJ-001.
REPAIR_PART, REPAIR_WAREHOUSE = "HW-BAT-P60", "WH-SH-001"
TRANSFER_PART, TRANSFER_FROM, TRANSFER_TO = "SS-BAT-GALAXYS24", "WH-ZJ", "WH-ZJ-001"
DIAGNOSIS = {
    "fault_code": "F-BAT",
    "cause_code": "C-AGE",
    "actions": ["replace_battery"],
    "parts": [{"part_id": REPAIR_PART, "quantity": 1}],
    "repair_level": "L2",
}
FINISH = {"actions_done": ["replace_battery"], "repair_level": "L2"}
LIFECYCLE, LIFECYCLE_ALONE = "paid repair intake→closed", "paid repair, one client"
ISSUE, TRANSFER = "issue to order", "transfer"
FLOW_USERS = ("sh001.clerk", "sh001.tech", "sh001.keeper", "zj001.keeper", "zj.manager")


@dataclass
class FlowFigures:
    name: str
    clients: int
    runs: int
    calls_per_run: int
    seconds: float
    runs_per_s: float
    p50_ms: float
    p95_ms: float
    server_ms_per_run: float  # the gateway's own request time summed over the run's calls
    system_cpu_ms_per_run: float
    client_cpu_ms_per_run: float
    server_p50_ms: float | None = None  # of each run's server time, when read run by run


class Desk:
    """The demo users' sessions on the gateway: each call as one of them, failing loudly."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    async def post(
        self, user: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.tokens[user]}", **(headers or {})}
        reply = await self.client.post(path, json=body, headers=sent)
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"{user} POST {path}: {reply.status_code} {reply.text}")
        return reply

    async def keyed(self, user: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A stock document, with its Idempotency-Key as a real client sends it."""
        reply = await self.post(user, path, body, {"Idempotency-Key": str(uuid.uuid4())})
        return dict(reply.json())

    async def step(
        self, order: Order, user: str, step: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A lifecycle step sent with the ETag of the answer before; the order after it."""
        reply = await self.post(user, f"{ORDERS}/{order.id}/{step}", body, {"If-Match": order.etag})
        order.etag = reply.headers["ETag"]
        return dict(reply.json())


@dataclass
class Order:
    id: str
    etag: str
    due_fen: int = 0


def paid_repair_order(run: int, serial: int) -> dict[str, Any]:
    """A repair with no proof of purchase (out of warranty: the customer pays); the IMEI and
    phone unique within the bench."""
    body14 = f"87{run % 10000:04d}{serial:08d}"
    imei = body14 + next(d for d in "0123456789" if luhn_valid(body14 + d))
    return {
        "customer": {"name": "压测客户", "phone": f"138{run % 1000:03d}{serial % 100000:05d}"},
        "device": {"imei": imei, "brand": "huawei", "model": "p60", "purchase_date": None},
        "fault": {"description": "benchmark: battery drains"},
        "service_type": "repair",
    }


async def quoted(desk: Desk, run: int, serial: int) -> Order:
    """Taken in, opened for its ETag, diagnosed with one part and quoted: 4 calls."""
    created = await desk.post("sh001.clerk", ORDERS, paid_repair_order(run, serial))
    order_id = created.json()["id"]
    read = await desk.client.get(
        f"{ORDERS}/{order_id}", headers={"Authorization": f"Bearer {desk.tokens['sh001.clerk']}"}
    )
    read.raise_for_status()
    order = Order(order_id, read.headers["ETag"])
    await desk.step(order, "sh001.tech", "diagnosis", DIAGNOSIS)
    quote = await desk.step(order, "sh001.clerk", "quote", {"labour_fen": 8_000})
    order.due_fen = quote["quote"]["total_fen"]
    return order


async def issued(desk: Desk, order: Order) -> None:
    """The customer accepts (the part is reserved), the repair starts (it is issued): 2 calls."""
    await desk.step(order, "sh001.clerk", "approval", {"accepted": True})
    await desk.step(order, "sh001.tech", "repair/start", {})


async def paid_repair(desk: Desk, run: int, serial: int) -> None:
    """tests/e2e's paid repair, intake to closed, a failed QC included: 11 calls."""
    order = await quoted(desk, run, serial)
    await issued(desk, order)
    await desk.step(order, "sh001.tech", "repair/finish", FINISH)
    await desk.step(order, "sh001.clerk", "qc", {"passed": False, "note": "touch dead"})
    await desk.step(order, "sh001.tech", "repair/finish", FINISH)
    await desk.step(order, "sh001.clerk", "qc", {"passed": True})
    payment = {"method": "wechat_pay", "amount_fen": order.due_fen}
    await desk.step(order, "sh001.clerk", "pickup", payment)


async def transfer(desk: Desk) -> None:
    """Requested by the store's keeper, approved and shipped by the branch, received: 4 calls."""
    body = {
        "from_warehouse_id": TRANSFER_FROM,
        "to_warehouse_id": TRANSFER_TO,
        "lines": [{"part_number": TRANSFER_PART, "quantity": 1}],
    }
    doc = await desk.keyed("zj001.keeper", "/api/v1/transfers", body)
    path = f"/api/v1/transfers/{doc['id']}"
    await desk.keyed("zj.manager", f"{path}/approve", {})
    await desk.keyed("zj.manager", f"{path}/ship", {})
    await desk.keyed("zj001.keeper", f"{path}/receive", {})


async def stock_up(desk: Desk, user: str, warehouse: str, part: str, quantity: int) -> None:
    """Enough of the part for the flow's runs, whatever the demo data holds."""
    receipt = {"part_number": part, "quantity": quantity, "unit_cost_fen": 10_000}
    await desk.keyed(user, f"/api/v1/warehouses/{warehouse}/receipts", receipt)


async def concurrently(
    clients: int, items: list[Any], one: Callable[[Any], Awaitable[None]]
) -> tuple[list[float], float]:
    """`one` on every item, `clients` at a time back to back: each run's seconds, and the
    wall seconds of them all."""
    queue = iter(items)
    durations: list[float] = []

    async def client() -> None:
        # One iterator shared by the clients: each item is taken once.
        for item in queue:
            started = time.perf_counter()
            await one(item)
            durations.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return durations, time.perf_counter() - started


def server_seconds(metrics: str) -> float:
    """The gateway's request time summed over every API route, from its /metrics text
    (the scrapes themselves left out)."""
    total = 0.0
    for family in text_string_to_metric_families(metrics):
        if family.name != "aftersales_http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum") and sample.labels.get("route") != "/metrics":
                total += sample.value
    return total


async def gateway_seconds(client: httpx.AsyncClient) -> float:
    return server_seconds((await client.get("/metrics")).text)


async def one_by_one(
    client: httpx.AsyncClient, items: list[Any], one: Callable[[Any], Awaitable[None]]
) -> tuple[list[float], list[float], float]:
    """`one` on every item in turn, the gateway's request time read around each: each run's
    wall seconds and server seconds, and the wall seconds of the runs (the reads left out)."""
    durations, server = [], []
    for item in items:
        before = await gateway_seconds(client)
        started = time.perf_counter()
        await one(item)
        durations.append(time.perf_counter() - started)
        server.append(await gateway_seconds(client) - before)
    return durations, server, sum(durations)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measured_flow(
    system: LocalSystem,
    client: httpx.AsyncClient,
    name: str,
    clients: int,
    calls_per_run: int,
    items: list[Any],
    one: Callable[[Any], Awaitable[None]],
) -> FlowFigures:
    """`one` over the items with `clients` clients, and what it cost: each run's wall time,
    the gateway's summed request time, the system's and this client's CPU. One client alone
    reads the gateway's request time around each run too, for its p50 (those reads' CPU is
    in the system's)."""
    server, cpu, own = await gateway_seconds(client), cpu_seconds(system), own_cpu_seconds()
    server_runs: list[float] = []
    if clients == 1:
        durations, server_runs, seconds = await one_by_one(client, items, one)
    else:
        durations, seconds = await concurrently(clients, items, one)
    own = own_cpu_seconds() - own
    system_spent = sum(cpu_spent(cpu, cpu_seconds(system)).values())
    server = await gateway_seconds(client) - server
    runs = len(durations)
    return FlowFigures(
        name=name,
        clients=clients,
        runs=runs,
        calls_per_run=calls_per_run,
        seconds=round(seconds, 2),
        runs_per_s=round(runs / seconds, 1),
        p50_ms=round(percentile_of(durations, 0.50) * 1000, 1),
        p95_ms=round(percentile_of(durations, 0.95) * 1000, 1),
        server_ms_per_run=round(server * 1000 / runs, 1),
        system_cpu_ms_per_run=round(system_spent * 1000 / runs, 1),
        client_cpu_ms_per_run=round(own * 1000 / runs, 1),
        server_p50_ms=round(percentile_of(server_runs, 0.50) * 1000, 1) if server_runs else None,
    )


async def flows(system: LocalSystem, client: httpx.AsyncClient) -> list[FlowFigures]:
    """The paid repair intake to closed, the issue of a part to an order (reserve + issue) and
    a transfer between two warehouses of one branch, FLOW_RUNS each."""
    desk = Desk(client, {user: await login(client, user) for user in FLOW_USERS})
    run = next(_runs)
    serials = itertools.count(1)
    # The lifecycles twice over and the issues each take one.
    await stock_up(desk, "sh001.keeper", REPAIR_WAREHOUSE, REPAIR_PART, 3 * FLOW_RUNS)
    await stock_up(desk, "zj.manager", TRANSFER_FROM, TRANSFER_PART, FLOW_RUNS)

    async def lifecycle(_: int) -> None:
        await paid_repair(desk, run, next(serials))

    runs = list(range(FLOW_RUNS))
    repairs = await measured_flow(system, client, LIFECYCLE, FLOW_CLIENTS, 11, runs, lifecycle)
    # One client alone: the lifecycle's own time, no queueing behind the others.
    alone = await measured_flow(system, client, LIFECYCLE_ALONE, 1, 11, runs, lifecycle)

    # Orders brought to their quote beforehand (not measured): the issue flow is only the
    # reserve and the issue.
    ready = [await quoted(desk, run, next(serials)) for _ in range(FLOW_RUNS)]

    async def issue(order: Order) -> None:
        await issued(desk, order)

    issues = await measured_flow(system, client, ISSUE, FLOW_CLIENTS, 2, ready, issue)

    async def move(_: int) -> None:
        await transfer(desk)

    transfers = await measured_flow(system, client, TRANSFER, FLOW_CLIENTS, 4, runs, move)
    return [repairs, alone, issues, transfers]


async def bench(database_url: str | None) -> dict[str, Any]:
    """One full run on one database: start the system, measure, stop it; the figures."""
    folder = Path(tempfile.mkdtemp(prefix="aftersales-bench-"))
    config = SystemConfig.on_free_ports(folder, env={"RATE_LIMIT_PER_SECOND": "0"})
    if database_url:
        config.database_url = database_url
        config.schema_prefix = f"bench{uuid.uuid4().hex[:6]}_"
    system = LocalSystem(config)
    bare = BareHop(folder / "logs")
    database = cpu_budget.database_name(system)
    profiler = Profiler(folder / "profile") if PROFILE else None
    print(f"\n== {database}: starting the system and the bare hop in {folder} ...", flush=True)
    await system.start()
    try:
        await bare.start()
        await asyncio.sleep(3)
        memory_at_rest = resident_mb(system)
        # What the processes spend doing nothing (polls, timers): it weighs on every request's
        # share, the more the fewer requests a second.
        before = cpu_seconds(system)
        await asyncio.sleep(REST_SECONDS)
        at_rest = {
            name: round(seconds * 1000 / REST_SECONDS, 1)
            for name, seconds in cpu_spent(before, cpu_seconds(system)).items()
        }
        async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
            print(
                f"the CI check's measure: {cpu_budget.CHECK_ORDERS} orders one by one ...",
                flush=True,
            )
            calibration = cpu_budget.calibration_ms()
            check = await cpu_budget.check_cpu_per_order(system, client)
            calibration = min(calibration, cpu_budget.calibration_ms())
            token = await login(client, "sh001.clerk")
            manager = {"Authorization": f"Bearer {await login(client, 'sh.manager')}"}

            await drive(bare.url, "ping", token, 2)
            await drive(system.gateway_url, "ping", token, 2)
            await drive(system.gateway_url, "create", token, 2)
            print(
                f"driving {CLIENTS} connections (wrk), {SECONDS} s per path in {ROUNDS} "
                "alternating slices"
                + (", py-spy on the create slices" if profiler else "")
                + " ...",
                flush=True,
            )
            measured = await interleaved(system, bare, token, profiler)
            hop, hop_cpu = measured["bare"]
            baseline, baseline_cpu = measured["ping"]
            create, create_cpu = measured["create"]

            half_rate = create.rps / 2
            paced_sample, received, delays = await paced_with_kpi(
                system, client, token, manager, half_rate
            )
            paced = figures("create order @ half peak", [paced_sample])

            print(
                f"driving the repair lifecycle, issues and transfers: {FLOW_RUNS} each, "
                f"{FLOW_CLIENTS} clients (httpx) ...",
                flush=True,
            )
            flow_figures = await flows(system, client)
        await asyncio.sleep(3)
        memory_after = resident_mb(system)
    finally:
        bare.stop()
        system.stop()
        await system.drop_schemas()
    # Kept only when the run failed, for its logs.
    shutil.rmtree(folder, ignore_errors=True)

    return {
        "database": database,
        "bare": asdict(hop),
        "baseline": asdict(baseline),
        "create_peak": asdict(create),
        "create_half": asdict(paced),
        "half_rate_target": round(half_rate, 1),
        "ratios": ratios(hop, baseline, create),
        "cpu_ms_per_request": {
            "bare": hop_cpu,
            "baseline": baseline_cpu,
            "create_peak": create_cpu,
        },
        "system_cpu_ms_per_request": {
            "bare": system_cpu(hop_cpu),
            "baseline": system_cpu(baseline_cpu),
            "create_peak": system_cpu(create_cpu),
        },
        "check_cpu_ms_per_order": check,
        "calibration_ms": calibration,
        "profiled": profiler is not None,
        "profile": profiler.report() if profiler else [],
        "flows": {f.name: asdict(f) for f in flow_figures},
        "order_to_kpi": {
            "orders": len(received),
            "measured": len(delays),
            "p50_ms": round(percentile_of(delays, 0.5) * 1000, 1),
            "p95_ms": round(percentile_of(delays, 0.95) * 1000, 1),
            "p99_ms": round(percentile_of(delays, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(delays) * 1000, 1) if delays else None,
        },
        "cpu_ms_per_second_at_rest": at_rest,
        "memory_at_rest_mb": memory_at_rest,
        "memory_after_load_mb": memory_after,
    }


def print_run(run: dict[str, Any], recorded: dict[str, Any]) -> None:
    print(f"\n{run['database']}")
    print(f"{'path':<28}{'req':>8}{'err':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for key in ("bare", "baseline", "create_peak", "create_half"):
        f = run[key]
        print(
            f"{f['name']:<28}{f['requests']:>8}{f['errors']:>6}{f['rps']:>9}{f['p50_ms']:>9}"
            f"{f['p95_ms']:>9}{f['p99_ms']:>9}"
        )
    if run["profiled"]:
        print("(profiled: py-spy shared the cores during the create slices, so they ran slower)")
    print(", ".join(f"{name} {value}" for name, value in run["ratios"].items()))
    for key, name in (("bare", "bare hop"), ("baseline", "no-op"), ("create_peak", "create order")):
        per_request = run["cpu_ms_per_request"][key]
        print(
            f"CPU ms per request, {name}: all {run['system_cpu_ms_per_request'][key]:.2f} ("
            + ", ".join(f"{k} {v}" for k, v in per_request.items())
            + ")"
        )
    print(
        f"\n{'flow':<28}{'clients':>8}{'runs':>6}{'calls':>6}{'runs/s':>8}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'server ms':>11}{'CPU ms':>8}{'client':>8}"
    )
    for f in run["flows"].values():
        print(
            f"{f['name']:<28}{f['clients']:>8}{f['runs']:>6}{f['calls_per_run']:>6}{f['runs_per_s']:>8}"
            f"{f['p50_ms']:>9}{f['p95_ms']:>9}{f['server_ms_per_run']:>11}"
            f"{f['system_cpu_ms_per_run']:>8}{f['client_cpu_ms_per_run']:>8}"
        )
    print(
        "(a flow's p50/p95: client wall time of one run; server ms: the gateway's request time "
        "summed over its calls, mean per run; CPU ms: the system's per run, with one client "
        "two /metrics reads per run in it; client: httpx's)"
    )
    print()
    print(
        "CPU ms per second at rest: "
        + ", ".join(f"{k} {v}" for k, v in run["cpu_ms_per_second_at_rest"].items())
    )
    kpi = run["order_to_kpi"]
    print(
        f"create-order at half peak: {run['create_half']['rps']}/s, aimed at "
        f"{run['half_rate_target']}/s"
    )
    print(
        f"order-to-KPI delay: p50 {kpi['p50_ms']} ms, p95 {kpi['p95_ms']} ms, "
        f"p99 {kpi['p99_ms']} ms over {kpi['measured']} of {kpi['orders']} orders "
        "(target p99 < 250)"
    )
    print(
        "resident memory at rest (MB, target < 150 each): "
        + ", ".join(f"{k} {v}" for k, v in run["memory_at_rest_mb"].items())
    )
    print(
        "resident memory after load (MB): "
        + ", ".join(f"{k} {v}" for k, v in run["memory_after_load_mb"].items())
    )
    print(f"\nissue 12's targets on {run['database']}:")
    for target in targets(run):
        sign = "≤" if target.at_most else "≥"
        print(
            f"  {target.name:<42}{target.value!s:>9}  (target {sign} {target.limit:g})  "
            f"{target.verdict()}"
        )
    print()
    for line in compared_with_recorded(run, recorded):
        print(line)
    if run["profile"]:
        print(f"\nwhere the create-order slices' CPU went on {run['database']} (py-spy):")
        for line in run["profile"]:
            print(line)


def print_side_by_side(runs: list[dict[str, Any]]) -> None:
    rows = [
        ("bare hop req/s", lambda r: r["bare"]["rps"]),
        ("no-op req/s", lambda r: r["baseline"]["rps"]),
        ("create req/s (peak)", lambda r: r["create_peak"]["rps"]),
        ("no-op / bare (≥ 0.6)", lambda r: r["ratios"]["no-op / bare"]),
        ("create / bare (≥ 0.25)", lambda r: r["ratios"]["create / bare"]),
        ("create / no-op", lambda r: r["ratios"]["create / no-op"]),
        ("create p50 / p99 ms (peak)", lambda r: _pair(r["create_peak"])),
        ("create p50 / p99 ms (half)", lambda r: _pair(r["create_half"])),
        ("CPU ms / bare hop", lambda r: r["system_cpu_ms_per_request"]["bare"]),
        ("CPU ms / no-op", lambda r: r["system_cpu_ms_per_request"]["baseline"]),
        ("CPU ms / create (≤ 5)", lambda r: r["system_cpu_ms_per_request"]["create_peak"]),
        ("wrk CPU ms / create", lambda r: r["cpu_ms_per_request"]["create_peak"]["wrk"]),
        ("CI check CPU ms / create", lambda r: r["check_cpu_ms_per_order"][cpu_budget.ALL]),
        ("order-to-KPI p99 ms", lambda r: r["order_to_kpi"]["p99_ms"]),
        ("repair p50 / p95 ms (wall)", lambda r: _flow_pair(r, LIFECYCLE)),
        ("repair server ms (mean)", lambda r: r["flows"][LIFECYCLE]["server_ms_per_run"]),
        ("repair alone p50 / p95 ms", lambda r: _flow_pair(r, LIFECYCLE_ALONE)),
        ("repair alone server p50 (<100)", lambda r: r["flows"][LIFECYCLE_ALONE]["server_p50_ms"]),
        ("issue to order /s", lambda r: r["flows"][ISSUE]["runs_per_s"]),
        ("issue p50 / p95 ms", lambda r: _flow_pair(r, ISSUE)),
        ("transfer /s", lambda r: r["flows"][TRANSFER]["runs_per_s"]),
        ("transfer p50 / p95 ms", lambda r: _flow_pair(r, TRANSFER)),
    ]
    print("\n" + f"{'':<32}" + "".join(f"{r['database']:>16}" for r in runs))
    for label, value in rows:
        print(f"{label:<32}" + "".join(f"{value(r)!s:>16}" for r in runs))


def _pair(f: dict[str, Any]) -> str:
    return f"{f['p50_ms']} / {f['p99_ms']}"


def _flow_pair(run: dict[str, Any], name: str) -> str:
    return f"{run['flows'][name]['p50_ms']} / {run['flows'][name]['p95_ms']}"


async def main() -> None:
    ensure_wrk()
    runs = []
    url = await postgres_url()
    if url:
        runs.append(await bench(url))
    if os.environ.get("BENCH_SQLITE", "1") != "0":
        runs.append(await bench(None))
    recorded = cpu_budget.load_recorded()
    for run in runs:
        print_run(run, recorded)
    print_side_by_side(runs)
    # Issue 14's orders with one replica against two (tests/bench/replicas.py), PostgreSQL only.
    scaled = await replicas.bench_replicas(url) if url and REPLICAS else None
    if scaled:
        print("\n" + "\n".join(replicas.report(scaled)))
    # Issue 13's dashboards over a national history (tests/bench/dashboards.py), PostgreSQL only.
    boards = await dashboards.bench_dashboards(url) if url and DASHBOARDS else None
    if boards:
        print("\n" + "\n".join(dashboards.report(boards)))
    if RECORD:
        record(runs)
    save(
        json.dumps(
            {
                "clients": CLIENTS,
                "seconds_per_phase": SECONDS,
                "rounds": ROUNDS,
                "load_generator": "wrk",
                "cpu_count": os.cpu_count(),
                "runs": runs,
                "orders_replicas": scaled,
                "dashboards": boards,
            },
            indent=2,
            ensure_ascii=False,
        )
    )


def save(figures: str) -> None:
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(figures)
    print(f"\nfigures written to {out / 'latest.json'}")


if __name__ == "__main__":
    asyncio.run(main())
