"""`python -m services.reporting seed-history [options]`: fill an empty reporting database
with a synthetic history (domain/history.py) to measure the report centre at national scale;
defaults 10,000 stores in 30 branches and 10 million orders over two years up to yesterday.

The facts go in by COPY on PostgreSQL (INSERT on SQLite), a group of stores at a time, each
group in its own transaction; the rollups are the sum of the same `contributions` the
consumers add, summed in memory: a store's rows are written with its group, a branch's once
its stores are done, HQ's at the end, so no row is written twice.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from servicekit.db import Database
from servicekit.settings import Settings
from servicekit.timeutil import shanghai_day, utc_now
from services.reporting.adapters import repository
from services.reporting.domain.facts import OrderFact
from services.reporting.domain.history import store_history
from services.reporting.domain.rollups import RollupKey, Rollups, contributions, merge

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


def _add_into(total: Rollups, key: RollupKey, counters: Mapping[str, int]) -> None:
    row = total.get(key)
    if row is None:
        total[key] = dict(counters)
        return
    for name, amount in counters.items():
        row[name] = row.get(name, 0) + amount


async def seed_history(
    db: Database, plan: Plan, progress: Callable[[str], None] = lambda _: None
) -> Seeded:
    """Write the plan's history into `db`; refuses (ValueError) a database with orders."""
    last = plan.until or shanghai_day(utc_now()) - timedelta(days=1)
    first = last - timedelta(days=plan.days - 1)
    seeded = Seeded()
    hq: Rollups = {}
    store_index = 0
    async with db.session() as session:
        if not await repository.is_empty(session):
            raise ValueError("the reporting database has orders already: seed an empty one")
    for branch in range(plan.branches):
        branch_rollups: Rollups = {}
        stores = plan.stores_of(branch)
        for start in range(0, len(stores), STORES_PER_GROUP):
            facts: list[OrderFact] = []
            group: Rollups = {}
            for store in stores[start : start + STORES_PER_GROUP]:
                rng = random.Random(f"{plan.seed}-{store}")
                orders = plan.orders_of(store_index)
                store_index += 1
                for fact in store_history(rng, branch_id(branch), store, orders, first, last):
                    facts.append(fact)
                    for key, counters in contributions(fact).items():
                        level = (
                            hq if not key.branch_id else group if key.store_id else branch_rollups
                        )
                        _add_into(level, key, counters)
            async with db.session() as session:
                await repository.is_empty(session)  # begins the transaction COPY joins
                await repository.insert_facts(session, facts)
                await repository.insert_rollups(session, merge([group]))
                await session.commit()
            seeded.orders += len(facts)
            seeded.rollup_rows += len(group)
        async with db.session() as session:
            await repository.is_empty(session)
            await repository.insert_rollups(session, merge([branch_rollups]))
            await session.commit()
        seeded.rollup_rows += len(branch_rollups)
        progress(f"{branch_id(branch)}: {seeded.orders} orders so far")
    async with db.session() as session:
        await repository.is_empty(session)
        await repository.insert_rollups(session, merge([hq]))
        await session.commit()
    seeded.rollup_rows += len(hq)
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
