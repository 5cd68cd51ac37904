"""`make bench`: the create-order path through the gateway under concurrent clients, against a
bare gateway → gRPC no-op path as the baseline, on the real processes.

The two paths run at full load in alternating slices, so a shared machine changing speed
during the run weighs on both alike. Prints requests/s and p50/p95/p99 latency for both, their
ratio, the CPU each process spends per request on each, the create-order latency at half its
peak rate, the order-to-KPI delay (an order accepted → counted by reporting and visible
through the API), and each process's resident memory at rest. Figures also go to
bench-results/latest.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from devtools.system import LocalSystem, SystemConfig
from servicekit.demo import DEMO_PASSWORD
from tests.e2e.conftest import new_imei, new_phone

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
# PostgreSQL instead of the SQLite files (each service in a fresh schema, dropped afterwards).
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or None
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
# The two full-load paths take turns in this many slices each (SECONDS in all per path).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
STORE = "SH-001"


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
    """What one stretch of load gave: each success's latency, the failures, the time taken."""

    latencies: list[float]
    errors: int
    seconds: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def order_body() -> dict[str, object]:
    return {
        "customer": {"name": "压测客户", "phone": new_phone()},
        "device": {
            "imei": new_imei(),
            "brand": "huawei",
            "model": "p60",
            "purchase_date": "2026-06-01",
        },
        "fault": {"description": "benchmark: screen cracked"},
        "service_type": "repair",
    }


async def drive(
    client: httpx.AsyncClient,
    request: str,
    headers: dict[str, str],
    seconds: float,
    clients: int,
    rate: float | None = None,
    completions: list[float] | None = None,
) -> Sample:
    """`clients` workers send back to back (closed loop), or at `rate` in total when paced."""
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    interval = clients / rate if rate else 0.0

    async def worker(index: int) -> None:
        nonlocal errors
        next_at = started + (interval * index / clients)
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            if interval:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                next_at += interval
            sent = time.perf_counter()
            if request == "ping":
                reply = await client.get("/api/v1/ping", headers=headers)
                ok = reply.status_code == 200
            else:
                reply = await client.post(
                    "/api/v1/repair-orders",
                    json=order_body(),
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                ok = reply.status_code == 201
            done = time.perf_counter()
            if ok:
                latencies.append(done - sent)
                if completions is not None:
                    completions.append(done)
            else:
                errors += 1

    await asyncio.gather(*(worker(i) for i in range(clients)))
    return Sample(latencies, errors, time.perf_counter() - started)


def figures(name: str, samples: list[Sample]) -> Figures:
    latencies = [latency for sample in samples for latency in sample.latencies]
    seconds = sum(sample.seconds for sample in samples)
    return Figures(
        name=name,
        requests=len(latencies),
        errors=sum(sample.errors for sample in samples),
        seconds=round(seconds, 2),
        rps=round(len(latencies) / seconds, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p95_ms=round(percentile(latencies, 0.95) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
    )


async def kpi_count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    reply = await client.get("/api/v1/reports/kpis", params={"store_id": STORE}, headers=headers)
    return int(reply.json()["orders_received"])


async def order_to_kpi_delays(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    base: int,
    completions: list[float],
    stop: asyncio.Event,
) -> list[float]:
    """Poll the KPI: the k-th accepted order counts as visible at the first poll whose count
    reaches base + k. The poll interval (10 ms) bounds the error."""
    seen: list[tuple[float, int]] = []
    while not stop.is_set() or (seen and seen[-1][1] < base + len(completions)):
        seen.append((time.perf_counter(), await kpi_count(client, headers)))
        if stop.is_set() and time.perf_counter() - seen[0][0] > SECONDS + 30:
            break
        await asyncio.sleep(0.01)
    delays = []
    for k, accepted in enumerate(sorted(completions), start=1):
        visible = next((t for t, count in seen if count >= base + k and t >= accepted), None)
        if visible is not None:
            delays.append(visible - accepted)
    return delays


def resident_mb(system: LocalSystem) -> dict[str, float]:
    found = {}
    for name, pid in system.pids().items():
        found[name] = round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    if system.nats and system.nats.process:
        found["nats-server"] = round(
            psutil.Process(system.nats.process.pid).memory_info().rss / 2**20, 1
        )
    return found


def processes(system: LocalSystem) -> dict[str, psutil.Process]:
    found = {name: psutil.Process(pid) for name, pid in system.pids().items()}
    if system.nats and system.nats.process:
        found["nats-server"] = psutil.Process(system.nats.process.pid)
    found["load generator"] = psutil.Process()
    return found


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(proc.cpu_times()[:2]) for name, proc in procs.items()}


async def interleaved(
    client: httpx.AsyncClient,
    procs: dict[str, psutil.Process],
    headers: dict[str, str],
) -> dict[str, tuple[Figures, dict[str, float]]]:
    """The no-op and create-order paths at full load, taking turns in ROUNDS slices each, so a
    shared machine speeding up or slowing down during the run weighs on both alike. For each:
    its figures, and the CPU milliseconds each process spent per request on it."""
    paths = {"ping": "no-op (gateway→gRPC)", "create": "create order (peak)"}
    samples: dict[str, list[Sample]] = {path: [] for path in paths}
    cpu: dict[str, dict[str, float]] = {path: dict.fromkeys(procs, 0.0) for path in paths}
    for _ in range(ROUNDS):
        for path in paths:
            before = cpu_seconds(procs)
            samples[path].append(await drive(client, path, headers, SECONDS / ROUNDS, CLIENTS))
            # The consumers' catching up belongs to the path that gave them the work.
            await asyncio.sleep(0.5)
            after = cpu_seconds(procs)
            for name in procs:
                cpu[path][name] += after[name] - before[name]
    result = {}
    for path, name in paths.items():
        found = figures(name, samples[path])
        per_request = {
            process: round(seconds * 1000 / max(found.requests, 1), 2)
            for process, seconds in cpu[path].items()
        }
        result[path] = (found, per_request)
    return result


def print_cpu(name: str, per_request: dict[str, float]) -> None:
    total = sum(v for k, v in per_request.items() if k != "load generator")
    print(
        f"CPU ms per request, {name}: system {total:.2f} ("
        + ", ".join(f"{k} {v}" for k, v in per_request.items())
        + ")"
    )


def print_figures(rows: list[Figures]) -> None:
    print(f"{'path':<28}{'req':>8}{'err':>6}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for f in rows:
        print(
            f"{f.name:<28}{f.requests:>8}{f.errors:>6}{f.rps:>9}{f.p50_ms:>9}{f.p95_ms:>9}"
            f"{f.p99_ms:>9}"
        )


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="aftersales-bench-"))
    config = SystemConfig.on_free_ports(folder, env={"RATE_LIMIT_PER_SECOND": "0"})
    if DATABASE_URL:
        config.database_url = DATABASE_URL
        config.schema_prefix = f"bench{uuid.uuid4().hex[:6]}_"
    system = LocalSystem(config)
    print(f"starting the system in {folder} on {DATABASE_URL or 'SQLite'} ...", flush=True)
    await system.start()
    try:
        await asyncio.sleep(3)
        memory_at_rest = resident_mb(system)
        limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
        async with httpx.AsyncClient(
            base_url=system.gateway_url, timeout=30, limits=limits
        ) as client:
            token = (
                await client.post(
                    "/api/v1/auth/token",
                    data={"username": "sh001.clerk", "password": DEMO_PASSWORD},
                )
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            manager = (
                await client.post(
                    "/api/v1/auth/token", data={"username": "sh.manager", "password": DEMO_PASSWORD}
                )
            ).json()["access_token"]
            manager_headers = {"Authorization": f"Bearer {manager}"}

            await drive(client, "ping", headers, 2, CLIENTS)
            await drive(client, "create", headers, 2, CLIENTS)

            print(
                f"driving {CLIENTS} concurrent clients, {SECONDS:.0f} s per path in "
                f"{ROUNDS} alternating slices ...",
                flush=True,
            )
            measured = await interleaved(client, processes(system), headers)
            baseline, baseline_cpu = measured["ping"]
            create, create_cpu = measured["create"]
            await asyncio.sleep(2)

            half_rate = create.rps / 2
            completions: list[float] = []
            base = await kpi_count(client, manager_headers)
            stop = asyncio.Event()
            poller = asyncio.create_task(
                order_to_kpi_delays(client, manager_headers, base, completions, stop)
            )
            paced = figures(
                f"create order @ {half_rate:.0f}/s",
                [
                    await drive(
                        client,
                        "create",
                        headers,
                        SECONDS,
                        CLIENTS,
                        rate=half_rate,
                        completions=completions,
                    )
                ],
            )
            stop.set()
            delays = await poller
        await asyncio.sleep(3)
        memory_after = resident_mb(system)
    finally:
        system.stop()
        await system.drop_schemas()
    # Kept only when the run failed, for its logs.
    shutil.rmtree(folder, ignore_errors=True)

    ratio = create.rps / baseline.rps if baseline.rps else float("nan")
    kpi = {
        "orders": len(completions),
        "measured": len(delays),
        "p50_ms": round(percentile(delays, 0.5) * 1000, 1),
        "p95_ms": round(percentile(delays, 0.95) * 1000, 1),
        "p99_ms": round(percentile(delays, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(delays) * 1000, 1) if delays else None,
    }
    print()
    print_figures([baseline, create, paced])
    print()
    print_cpu("no-op", baseline_cpu)
    print_cpu("create order", create_cpu)
    print(f"create-order / no-op throughput: {ratio:.2f} (target >= 0.50)")
    print(f"create-order p99 at half peak ({half_rate:.0f}/s): {paced.p99_ms} ms (target < 50)")
    print(
        f"order-to-KPI delay: p50 {kpi['p50_ms']} ms, p95 {kpi['p95_ms']} ms, "
        f"p99 {kpi['p99_ms']} ms over {kpi['measured']} orders (target p99 < 250)"
    )
    print(
        "resident memory at rest (MB, target < 150 each): "
        + ", ".join(f"{k} {v}" for k, v in memory_at_rest.items())
    )
    print(
        "resident memory after load (MB): " + ", ".join(f"{k} {v}" for k, v in memory_after.items())
    )
    save(
        json.dumps(
            {
                "clients": CLIENTS,
                "database": "postgresql" if DATABASE_URL else "sqlite",
                "seconds_per_phase": SECONDS,
                "rounds": ROUNDS,
                "baseline": asdict(baseline),
                "create_peak": asdict(create),
                "create_half": asdict(paced),
                "ratio": round(ratio, 3),
                "cpu_ms_per_request": {"baseline": baseline_cpu, "create_peak": create_cpu},
                "order_to_kpi": kpi,
                "memory_at_rest_mb": memory_at_rest,
                "memory_after_load_mb": memory_after,
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


def save(figures: str) -> None:
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(figures)
    print(f"\nfigures written to {out / 'latest.json'}")


if __name__ == "__main__":
    asyncio.run(main())
