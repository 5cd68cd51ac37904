"""`python -m services.reporting seed-history [options]`: fill an empty reporting database
with a synthetic history (domain/history.py) to measure the report centre at national scale;
defaults 10,000 stores in 30 branches and 10 million orders over two years up to yesterday.

On PostgreSQL each branch is seeded by a worker process (one per core): it draws its stores'
orders, sums their store day rows by the same rules the consumers' `contributions` follow
(domain/rollups.py store_day_sums), adds those up into the coarser grains, and writes a group
of stores at a time, facts and store rows by COPY in one transaction; its stores' rows
summed are its branch's rows, written once its stores are done, and the branches' summed are
HQ's, written at the end. So no row is written twice and a worker sends back only its
branch's rows. The tables' secondary indexes are dropped before and built after (a sort each,
not ten million inserts), and the tables vacuumed. On SQLite one process does it all (one
writer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from multiprocessing import get_context

from servicekit.db import Database
from servicekit.settings import Settings
from servicekit.timeutil import shanghai_day, utc_now
from services.reporting.adapters import repository
from services.reporting.domain.facts import OrderFact
from services.reporting.domain.history import store_history
from services.reporting.domain.rollups import (
    RowSums,
    add_sums,
    coarser_sums,
    level_up,
    store_day_sums,
)

STORES_PER_GROUP = 50


@dataclass(frozen=True)
class Plan:
    stores: int = 10_000
    branches: int = 30
    orders: int = 10_000_000
    days: int = 730
    until: date | None = None  # the last day of the history; None: yesterday (Shanghai)
    seed: int = 13

    def stores_of(self, branch: int) -> list[str]:
        """Stores are dealt to branches in turn: B07-0001, B07-0002, ..."""
        count = len(range(branch, self.stores, self.branches))
        return [f"{branch_id(branch)}-{n:04d}" for n in range(1, count + 1)]

    def orders_of(self, store_index: int) -> int:
        share, rest = divmod(self.orders, self.stores)
        return share + (store_index < rest)


def branch_id(branch: int) -> str:
    return f"B{branch + 1:02d}"


@dataclass
class Seeded:
    orders: int = 0
    rollup_rows: int = 0


@dataclass(frozen=True)
class BranchJob:
    """One branch's share of the history: its stores are the plan's from `first_store` on."""

    url: str
    schema: str | None
    plan: Plan
    branch: int
    first_store: int
    first: date
    last: date


async def _write(db: Database, facts: list[OrderFact], sums: RowSums) -> None:
    async with db.session() as session:
        await repository.is_empty(session)  # begins the transaction COPY joins
        await repository.insert_facts(session, facts)
        await repository.insert_sums(session, sums)
        await session.commit()


def _rows(sums: RowSums) -> int:
    return sum(len(rows) for rows in sums.values())


async def seed_branch(db: Database, job: BranchJob) -> tuple[int, int, RowSums]:
    """Write one branch's facts and store and branch rows; its orders, the rows written and
    its branch rows (for HQ's)."""
    plan = job.plan
    branch_rows: RowSums = {}
    orders = rows = 0
    stores = plan.stores_of(job.branch)
    for start in range(0, len(stores), STORES_PER_GROUP):
        facts: list[OrderFact] = []
        group: RowSums = {}
        for offset, store in enumerate(stores[start : start + STORES_PER_GROUP], start):
            rng = random.Random(f"{plan.seed}-{store}")
            count = plan.orders_of(job.first_store + offset)
            history = list(
                store_history(rng, branch_id(job.branch), store, count, job.first, job.last)
            )
            facts += history
            add_sums(group, coarser_sums(store_day_sums(history)))
        await _write(db, facts, group)
        orders += len(facts)
        rows += _rows(group)
        add_sums(branch_rows, level_up(group))
    await _write(db, [], branch_rows)
    return orders, rows + _rows(branch_rows), branch_rows


def _seed_branch_in_worker(job: BranchJob) -> tuple[int, int, RowSums]:
    async def run() -> tuple[int, int, RowSums]:
        db = Database(job.url, job.schema, pool_size=1)
        try:
            return await seed_branch(db, job)
        finally:
            await db.dispose()

    return asyncio.run(run())


async def seed_history(
    db: Database,
    plan: Plan,
    progress: Callable[[str], None] = lambda _: None,
    workers: int | None = None,
) -> Seeded:
    """Write the plan's history into `db`; refuses (ValueError) a database with orders.
    `workers`: processes seeding branches side by side (PostgreSQL; default one per core)."""
    last = plan.until or shanghai_day(utc_now()) - timedelta(days=1)
    first = last - timedelta(days=plan.days - 1)
    async with db.session() as session:
        if not await repository.is_empty(session):
            raise ValueError("the reporting database has orders already: seed an empty one")
    jobs = []
    first_store = 0
    for branch in range(plan.branches):
        jobs.append(BranchJob(db.url, db.schema, plan, branch, first_store, first, last))
        first_store += len(plan.stores_of(branch))
    processes = 0 if db.is_sqlite else (workers or os.cpu_count() or 1)
    seeded = Seeded()
    hq: RowSums = {}

    def done(result: tuple[int, int, RowSums]) -> None:
        orders, rows, branch_rows = result
        seeded.orders += orders
        seeded.rollup_rows += rows
        add_sums(hq, level_up(branch_rows))
        progress(f"{seeded.orders} orders so far")

    bulk = not db.is_sqlite
    if bulk:
        async with db.session() as session:
            await repository.drop_indexes(session)
            await session.commit()
    try:
        if processes > 1:
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
                pending = [loop.run_in_executor(pool, _seed_branch_in_worker, job) for job in jobs]
                for finished in asyncio.as_completed(pending):
                    done(await finished)
        else:
            for job in jobs:
                done(await seed_branch(db, job))
        await _write(db, [], hq)
        seeded.rollup_rows += _rows(hq)
    finally:
        if bulk:
            progress("building the indexes")
            async with db.session() as session:
                await repository.create_indexes(session)
                await session.commit()
    if bulk:
        await repository.vacuum(db)
    return seeded


def parse(args: list[str]) -> Plan:
    parser = argparse.ArgumentParser(prog="python -m services.reporting seed-history")
    defaults = Plan()
    parser.add_argument("--stores", type=int, default=defaults.stores)
    parser.add_argument("--branches", type=int, default=defaults.branches)
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--until", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    ns = parser.parse_args(args)
    if min(ns.stores, ns.branches, ns.days) < 1 or ns.orders < 0 or ns.branches > ns.stores:
        parser.error("stores, branches and days must be at least 1, and branches ≤ stores")
    return Plan(ns.stores, ns.branches, ns.orders, ns.days, ns.until, ns.seed)


async def seed_history_command(args: list[str]) -> int:
    plan = parse(args)
    settings = Settings.from_env("reporting")
    db = Database(settings.database_url, settings.db_schema)
    started = time.monotonic()
    try:
        seeded = await seed_history(db, plan, lambda line: print(line, file=sys.stderr))
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    seconds = time.monotonic() - started
    print(f"{seeded.orders} orders, {seeded.rollup_rows} rollup rows in {seconds:.0f} s")
    return 0
