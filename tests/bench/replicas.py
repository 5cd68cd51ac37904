"""`make bench` on PostgreSQL: create-order and the paid-repair lifecycle through the gateway
with one replica of orders against two, in the same run.

Both systems run at once, each in schemas of its own; the loads take turns on them in
alternating slices (wrk for create-order at full load, CLIENTS connections; the lifecycle from
Python, FLOW_CLIENTS clients), so a shared machine changing speed weighs on both alike. For
each: create-order requests/s and p50/p95/p99, the CPU per order of the whole system and of
orders' replicas, how the orders were shared between the replicas (their /metrics), and the
lifecycle's runs/s and p50/p95. `BENCH_REPLICAS=0` skips it; `python -m tests.bench.replicas`
runs it alone."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devtools.system import LocalSystem, SystemConfig
from tests.bench import run_bench  # which imports this: its names are read when called

ORDERS_REPLICAS = (1, 2)
CREATE_METHOD = "CreateRepairOrder"


@dataclass
class ReplicaFigures:
    replicas: int
    create: run_bench.Figures
    # Each orders replica's share of the create-order calls, in percent.
    create_share_percent: list[float]
    system_cpu_ms_per_order: float
    orders_cpu_ms_per_order: float
    lifecycle_runs: int
    lifecycle_runs_per_s: float
    lifecycle_p50_ms: float
    lifecycle_p95_ms: float


class Side:
    """One system under load: its config, its demo users' sessions, its samples."""

    def __init__(self, replicas: int, database_url: str, folder: Path) -> None:
        config = SystemConfig.on_free_ports(
            folder,
            database_url=database_url,
            schema_prefix=f"rep{replicas}{uuid.uuid4().hex[:6]}_",
            env={"RATE_LIMIT_PER_SECOND": "0"},
            replicas={"orders": replicas},
        )
        self.replicas = replicas
        self.system = LocalSystem(config)
        self.create: list[run_bench.Sample] = []
        self.durations: list[float] = []
        self.lifecycle_seconds = 0.0
        self.create_cpu: dict[str, float] = {}

    @property
    def orders(self) -> list[str]:
        return self.system.config.processes_of("orders")

    async def created_by_replica(self) -> list[int]:
        """CreateRepairOrder calls each orders replica has answered OK, from its /metrics."""
        counts = []
        async with httpx.AsyncClient(timeout=5) as client:
            for name in self.orders:
                port = self.system.config.metrics_ports[name]
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                counts.append(created_in(text))
        return counts


def created_in(metrics: str) -> int:
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "aftersales_grpc_server_handled_total"
            and sample.labels.get("method") == CREATE_METHOD
            and sample.labels.get("code") == "OK"
        )
    )


async def measure(sides: list[Side]) -> list[ReplicaFigures]:
    slice_seconds = max(1, round(run_bench.SECONDS / run_bench.ROUNDS))
    runs_per_slice = max(1, run_bench.FLOW_RUNS // run_bench.ROUNDS)
    async with (
        httpx.AsyncClient(base_url=sides[0].system.gateway_url, timeout=30) as first,
        httpx.AsyncClient(base_url=sides[1].system.gateway_url, timeout=30) as second,
    ):
        clients = [first, second]
        desks = []
        for side, client in zip(sides, clients, strict=True):
            tokens = {user: await run_bench.login(client, user) for user in run_bench.FLOW_USERS}
            desk = run_bench.Desk(client, tokens)
            stock = runs_per_slice * run_bench.ROUNDS + 10
            await run_bench.stock_up(
                desk, "sh001.keeper", run_bench.REPAIR_WAREHOUSE, run_bench.REPAIR_PART, stock
            )
            await run_bench.drive(side.system.gateway_url, "create", tokens["sh001.clerk"], 2)
            desks.append(desk)
        created_before = [await side.created_by_replica() for side in sides]
        print(
            f"orders with {' against '.join(str(s.replicas) for s in sides)} replicas: "
            f"create-order {run_bench.CLIENTS} connections (wrk), {run_bench.SECONDS} s each, "
            f"then the lifecycle {run_bench.FLOW_RUNS} runs each ({run_bench.FLOW_CLIENTS} "
            f"clients), in {run_bench.ROUNDS} alternating slices",
            flush=True,
        )
        for _ in range(run_bench.ROUNDS):
            for side, desk in zip(sides, desks, strict=True):
                before = run_bench.cpu_seconds(side.system)
                side.create.append(
                    await run_bench.drive(
                        side.system.gateway_url, "create", desk.tokens["sh001.clerk"], slice_seconds
                    )
                )
                spent = run_bench.cpu_spent(before, run_bench.cpu_seconds(side.system))
                for name, seconds in spent.items():
                    side.create_cpu[name] = side.create_cpu.get(name, 0.0) + seconds
        created_after = [await side.created_by_replica() for side in sides]
        run = next(run_bench._runs)
        serials = itertools.count(1)
        for _ in range(run_bench.ROUNDS):
            for side, desk in zip(sides, desks, strict=True):

                async def lifecycle(_: int, desk: run_bench.Desk = desk) -> None:
                    await run_bench.paid_repair(desk, run, next(serials))

                durations, seconds = await run_bench.concurrently(
                    run_bench.FLOW_CLIENTS, list(range(runs_per_slice)), lifecycle
                )
                side.durations += durations
                side.lifecycle_seconds += seconds
    return [
        figures_of(side, [a - b for a, b in zip(after, before, strict=True)])
        for side, before, after in zip(sides, created_before, created_after, strict=True)
    ]


def figures_of(side: Side, created: list[int]) -> ReplicaFigures:
    create = run_bench.figures(f"create order, orders ×{side.replicas}", side.create)
    orders = max(create.requests, 1)
    total = max(sum(created), 1)
    orders_cpu = sum(side.create_cpu.get(name, 0.0) for name in side.orders)
    return ReplicaFigures(
        replicas=side.replicas,
        create=create,
        create_share_percent=[round(100 * count / total, 1) for count in created],
        system_cpu_ms_per_order=round(sum(side.create_cpu.values()) * 1000 / orders, 2),
        orders_cpu_ms_per_order=round(orders_cpu * 1000 / orders, 2),
        lifecycle_runs=len(side.durations),
        lifecycle_runs_per_s=round(len(side.durations) / side.lifecycle_seconds, 2),
        lifecycle_p50_ms=round(run_bench.percentile_of(side.durations, 0.50) * 1000, 1),
        lifecycle_p95_ms=round(run_bench.percentile_of(side.durations, 0.95) * 1000, 1),
    )


async def bench_replicas(database_url: str) -> list[dict[str, Any]]:
    """Both systems started, measured side by side, stopped and their schemas dropped."""
    folder = Path(tempfile.mkdtemp(prefix="aftersales-bench-replicas-"))
    sides = [Side(n, database_url, folder / f"orders-x{n}") for n in ORDERS_REPLICAS]
    print(f"\n== orders: one replica against two, on PostgreSQL, in {folder} ...", flush=True)
    try:
        for side in sides:
            await side.system.start()
        results = await measure(sides)
    finally:
        for side in sides:
            side.system.stop()
            await side.system.drop_schemas()
    return [asdict(result) for result in results]


def latencies(figures: dict[str, Any]) -> str:
    return f"{figures['p50_ms']} / {figures['p95_ms']} / {figures['p99_ms']}"


def report(results: list[dict[str, Any]]) -> list[str]:
    """The figures side by side, one column per replica count."""
    header = "".join(f"{'orders ×' + str(r['replicas']):>26}" for r in results)
    rows: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
        ("create order /s", lambda r: r["create"]["rps"]),
        ("create p50 / p95 / p99 ms", lambda r: latencies(r["create"])),
        ("create errors", lambda r: r["create"]["errors"]),
        ("orders' share per replica %", lambda r: " / ".join(map(str, r["create_share_percent"]))),
        ("CPU ms per order, all", lambda r: r["system_cpu_ms_per_order"]),
        ("CPU ms per order, orders", lambda r: r["orders_cpu_ms_per_order"]),
        ("lifecycle runs /s", lambda r: r["lifecycle_runs_per_s"]),
        ("lifecycle p50 / p95 ms", lambda r: f"{r['lifecycle_p50_ms']} / {r['lifecycle_p95_ms']}"),
    ]
    lines = [f"{'orders replicas (PostgreSQL)':<30}{header}"]
    for label, value in rows:
        lines.append(f"{label:<30}" + "".join(f"{value(r)!s:>26}" for r in results))
    cores = os.cpu_count()
    lines.append(
        f"(both systems up at once on {cores} cores, the loads alternating; the lifecycle is "
        "intake to closed, 11 calls a run)"
    )
    return lines


async def main() -> None:
    run_bench.ensure_wrk()
    url = await run_bench.postgres_url()
    if not url:
        raise SystemExit("replicas need PostgreSQL: set BENCH_DATABASE_URL")
    print("\n".join(report(await bench_replicas(url))))


if __name__ == "__main__":
    asyncio.run(main())
