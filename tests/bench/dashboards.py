"""The report centre's dashboards over a national history (issue 13): `make bench` runs this on
PostgreSQL after the load, and `python -m tests.bench.dashboards` runs it alone.

A synthetic history (services/reporting/seed_history.py) is seeded into a fresh schema, the
reporting gRPC API serves it in this process, and GetKpis is called one call at a time, as a
caller in each scope: HQ, one branch and one of its stores, over the year up to the history's
last day and over 23 whole months with edge days at both ends. Prints p50 and p99 of each
(wall time of the call, the client's protobuf decoding included) and the history's size.

Environment: BENCH_DASHBOARD_STORES (default 1,000), BENCH_DASHBOARD_ORDERS (1,000,000; the
issue's size is 10,000 stores and 10,000,000 orders), BENCH_DASHBOARD_CALLS (60 per case, after
3 not counted), BENCH_DATABASE_URL (else the local PostgreSQL), BENCH_DASHBOARD_SCHEMA: a schema
to keep, seeded on the first run and measured again as it is on the next (the same sizes),
instead of a new one dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, text

from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from servicekit import migrations
from servicekit.auth import AuthContext
from servicekit.db import Database
from servicekit.grpc_client import call, open_channel
from servicekit.grpc_server import new_server
from servicekit.testing import acting_as, gateway_signer, session_trust
from servicekit.uow import UnitOfWork
from services.reporting import grpc_api
from services.reporting.adapters import repository
from services.reporting.adapters.orm import (
    open_orders,
    order_rollups,
    outbox,
    technician_rollups,
    turnaround_sketches,
)
from services.reporting.seed_history import Plan, branch_id, seed_history
from services.reporting.service import SPEC

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
STORES = int(os.environ.get("BENCH_DASHBOARD_STORES", "1000"))
ORDERS = int(os.environ.get("BENCH_DASHBOARD_ORDERS", "1000000"))
CALLS = int(os.environ.get("BENCH_DASHBOARD_CALLS", "60"))
WARM_UP = 3
BRANCHES = 30
UNTIL = date(2026, 11, 20)
"""The history's last day: fixed, so a kept schema and a new one hold the same history; not a
month's end, so the periods have edge days."""
ROLLUPS = (order_rollups, turnaround_sketches, open_orders, technician_rollups)


@dataclass(frozen=True)
class Case:
    """One dashboard: a caller, the unit they look at and a period."""

    name: str
    caller: AuthContext
    store_id: str
    date_from: date
    date_to: date


def cases(plan: Plan) -> list[Case]:
    """HQ, a branch and one of its stores, over a year and over 23 months with edge days."""
    last = plan.until or UNTIL
    first = last - timedelta(days=plan.days - 1)
    branch = branch_id(min(6, plan.branches - 1))
    store = plan.stores_of(min(6, plan.branches - 1))[0]
    periods = {
        "a year": (last - timedelta(days=364), last),
        # 23 whole months inside two years, and a few days either side of them.
        "23 months + edges": (first + timedelta(days=5), last - timedelta(days=5)),
    }
    callers = {
        "HQ": (AuthContext("bench-hq", "hq_analyst"), ""),
        f"branch {branch}": (AuthContext("bench-branch", "branch_manager", branch), ""),
        f"store {store}": (AuthContext("bench-branch", "branch_manager", branch), store),
    }
    return [
        Case(f"{who}, {span}", caller, store_id, since, until)
        for who, (caller, store_id) in callers.items()
        for span, (since, until) in periods.items()
    ]


@dataclass(frozen=True)
class Timing:
    name: str
    calls: int
    p50_ms: float
    p99_ms: float
    orders_received: int


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: with 60 calls, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timing(name: str, millis: list[float], orders_received: int) -> Timing:
    return Timing(
        name,
        len(millis),
        round(percentile(millis, 0.5), 1),
        round(percentile(millis, 0.99), 1),
        orders_received,
    )


@asynccontextmanager
async def reporting_api(db: Database) -> AsyncIterator[reporting_pb2_grpc.ReportingServiceStub]:
    """GetKpis on a free port in this process, read from `db`; callers sign as the gateway."""
    server, _health = new_server(SPEC.name, session_trust())
    grpc_api.register(server, lambda: UnitOfWork(db, outbox, lambda: None))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", SPEC.name, gateway_signer())
    try:
        yield reporting_pb2_grpc.ReportingServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def time_case(
    stub: reporting_pb2_grpc.ReportingServiceStub, case: Case, calls: int
) -> Timing:
    request = reporting_pb2.GetKpisRequest(
        store_id=case.store_id,
        date_from=case.date_from.isoformat(),
        date_to=case.date_to.isoformat(),
    )
    millis = []
    with acting_as(case.caller):
        for n in range(WARM_UP + calls):
            started = time.perf_counter()
            answer = await call(stub.GetKpis, request)
            if n >= WARM_UP:
                millis.append((time.perf_counter() - started) * 1000)
    return timing(case.name, millis, answer.orders_received)


async def history_size(db: Database, plan: Plan) -> dict[str, int]:
    size = {"stores": plan.stores, "branches": plan.branches, "days": plan.days}
    async with db.session() as session:
        for table in ROLLUPS:
            count = select(func.count()).select_from(table)
            size[f"{table.name} rows"] = int((await session.execute(count)).scalar_one())
        orders = await session.execute(text("SELECT count(*) FROM order_facts"))
        size["orders"] = int(orders.scalar_one())
    size["rollup rows"] = sum(size[f"{t.name} rows"] for t in ROLLUPS)
    return size


async def measure(url: str, schema: str | None, plan: Plan, calls: int = CALLS) -> dict[str, Any]:
    """Seed `plan` into `schema` unless it holds a history already, then time every case."""
    db = Database(url, schema)
    figures: dict[str, Any] = {}
    try:
        await migrations.upgrade(db, SPEC.migrations_dir)
        async with db.session() as session:
            empty = await repository.is_empty(session)
        if empty:
            started = time.monotonic()
            seeded = await seed_history(db, plan)
            figures["seed_seconds"] = round(time.monotonic() - started, 1)
            figures["seed_orders_per_second"] = round(
                seeded.orders / max(figures["seed_seconds"], 0.1)
            )
        figures["size"] = await history_size(db, plan)
        async with reporting_api(db) as stub:
            figures["dashboards"] = [
                asdict(await time_case(stub, case, calls)) for case in cases(plan)
            ]
    finally:
        await db.dispose()
    figures["load_average"] = [round(n, 1) for n in os.getloadavg()]
    return figures


async def bench_dashboards(url: str) -> dict[str, Any]:
    """The section `make bench` runs: a new schema on `url`, dropped afterwards, unless
    BENCH_DASHBOARD_SCHEMA names one to keep (seeded the first time)."""
    plan = Plan(stores=STORES, branches=BRANCHES, orders=ORDERS, days=730, until=UNTIL)
    kept = os.environ.get("BENCH_DASHBOARD_SCHEMA")
    schema = kept or f"bench_dashboards_{uuid.uuid4().hex[:8]}"
    try:
        return await measure(url, schema, plan)
    finally:
        if not kept:
            admin = Database(url)
            async with admin.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await admin.dispose()


def report(figures: dict[str, Any]) -> list[str]:
    size = figures["size"]
    lines = [
        "Dashboards (GetKpis over gRPC, one call at a time) over "
        f"{size['orders']:,} orders, {size['stores']:,} stores, {size['branches']} branches, "
        f"{size['days']} days; {size['rollup rows']:,} rollup rows "
        f"({size['order_rollups rows']:,} in order_rollups)",
    ]
    if "seed_seconds" in figures:
        lines.append(
            f"  seeded in {figures['seed_seconds']} s "
            f"({figures['seed_orders_per_second']:,} orders/s)"
        )
    lines.append(f"  {'':<40}{'p50 ms':>9}{'p99 ms':>9}{'calls':>7}")
    for row in figures["dashboards"]:
        lines.append(f"  {row['name']:<40}{row['p50_ms']:>9}{row['p99_ms']:>9}{row['calls']:>7}")
    lines.append(f"  load average during the run: {figures['load_average']}")
    return lines


async def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL", LOCAL_POSTGRES)
    print("\n".join(report(await bench_dashboards(url))))


if __name__ == "__main__":
    asyncio.run(main())
