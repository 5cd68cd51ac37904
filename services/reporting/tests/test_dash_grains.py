"""The rollups' coarser grains (weeks, quarters, years): any period read from the fewest rows
that tile it gives the same figures as the same period summed from its days, in the domain,
from the database, and for the history written before the grains (migration 0008); a bulk
load's row sums equal the consumers' contributions."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    select,
)

from servicekit import migrations
from servicekit.db import Database
from servicekit.runtime import Runtime
from servicekit.testing import DatabaseTarget
from services.reporting.adapters import repository
from services.reporting.adapters.orm import order_rollups, technician_rollups
from services.reporting.domain.facts import OrderFact
from services.reporting.domain.history import store_history
from services.reporting.domain.kpis import FIGURE_COUNTERS, add_counters
from services.reporting.domain.period import (
    DAY,
    GRAINS,
    Period,
    grain_end,
    grain_start,
    tiles,
)
from services.reporting.domain.rollups import (
    ALL,
    FigureKey,
    Rollups,
    TechnicianKey,
    TurnaroundKey,
    as_rollups,
    coarser_sums,
    contributions,
    level_up,
    merge,
    store_day_contributions,
    store_day_sums,
)
from services.reporting.service import SPEC

FIRST, LAST = date(2024, 11, 21), date(2026, 11, 20)

# A row per bucket, as the releases before migration 0009 kept the turnaround sketches.
turnaround_buckets = Table(
    "turnaround_buckets",
    MetaData(),
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("grain", String(1), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
)
periods = st.builds(
    lambda start, length: Period(start, min(start + timedelta(days=length - 1), LAST)),
    st.dates(FIRST, LAST),
    st.integers(1, 800),
)


def days_of(period: Period) -> list[date]:
    return [period.first + timedelta(days=i) for i in range(period.days)]


@settings(max_examples=300, deadline=None)
@given(periods)
def test_the_tiles_cover_every_day_of_a_period_once(period: Period) -> None:
    covered = [
        day
        for tile in tiles(period)
        for start in starts_of(tile.grain, tile.first, tile.last)
        for day in days_of(Period(start, grain_end(tile.grain, start)))
    ]
    assert covered == days_of(period)


def starts_of(grain: str, first: date, last: date) -> list[date]:
    found = [first]
    while (after := grain_end(grain, found[-1]) + timedelta(days=1)) <= last:
        found.append(after)
    return found


def test_a_year_is_a_few_dozen_rows_not_365() -> None:
    year = Period(date(2025, 11, 21), date(2026, 11, 20))
    rows = [start for tile in tiles(year) for start in starts_of(tile.grain, tile.first, tile.last)]
    assert len(rows) == 3 + 1 + 1 + 3 + 1 + 1 + 2 + 5
    assert {t.grain for t in tiles(year)} == {"d", "w", "m", "q"}


@pytest.mark.parametrize("grain", GRAINS)
def test_every_grain_starts_on_its_first_day(grain: str) -> None:
    day = date(2024, 1, 1)
    while day <= date(2026, 12, 31):
        start = grain_start(grain, day)
        assert start <= day <= grain_end(grain, start)
        assert grain_start(grain, start) == start
        day += timedelta(days=1)


def history() -> list[OrderFact]:
    """Three stores in two branches over two years."""
    facts: list[OrderFact] = []
    stores = [("B01", "B01-0001"), ("B01", "B01-0002"), ("B02", "B02-0001")]
    for n, (branch, store) in enumerate(stores):
        facts += store_history(random.Random(n), branch, store, 400, FIRST, LAST)
    return facts


HISTORY = history()
ROLLUPS = merge(contributions(f) for f in HISTORY)


def from_tiles(rollups: Rollups, period: Period) -> Rollups:
    """The period's rows by unit, split and bucket, summed over the tiles' rows."""
    wanted = {
        (tile.grain, start)
        for tile in tiles(period)
        for start in starts_of(tile.grain, tile.first, tile.last)
    }
    return _summed(rollups, lambda key: (key.grain, key.day) in wanted)


def from_days(rollups: Rollups, period: Period) -> Rollups:
    return _summed(rollups, lambda key: key.grain == DAY and period.first <= key.day <= period.last)


def _summed(rollups: Rollups, keep: Callable[[Any], bool]) -> Rollups:
    total: Rollups = {}
    for key, counters in rollups.items():
        if isinstance(key, FigureKey | TurnaroundKey | TechnicianKey) and keep(key):
            undated = dataclasses.replace(key, grain="", day=FIRST)
            total[undated] = add_counters([total.get(undated, {}), counters])
    return merge([total])


@settings(max_examples=150, deadline=None)
@given(periods)
def test_a_period_read_from_its_tiles_equals_it_summed_from_days(period: Period) -> None:
    assert from_tiles(ROLLUPS, period) == from_days(ROLLUPS, period)


def test_a_bulk_loads_row_sums_are_the_contributions() -> None:
    store = [f for f in HISTORY if f.store_id == "B01-0001"]
    day_sums = store_day_sums(store)
    assert as_rollups(day_sums) == merge(store_day_contributions(f) for f in store)
    all_grains = coarser_sums(day_sums)
    assert as_rollups(all_grains) == merge(contributions(f, store_only=True) for f in store)
    branch = {
        key: counters
        for key, counters in merge(contributions(f) for f in store).items()
        if key.branch_id and not key.store_id
    }
    assert as_rollups(level_up(all_grains)) == branch


# --- from the database -----------------------------------------------------------------------


@pytest.mark.service("reporting")
async def test_the_repository_answers_any_period_as_its_days_add_up(runtime: Runtime) -> None:
    async with runtime.uow() as uow:
        await repository.insert_facts(uow.session, HISTORY)
        await repository.insert_rollups(uow.session, ROLLUPS)
        await uow.commit()
    rng = random.Random(8)
    for _ in range(12):
        start = FIRST + timedelta(days=rng.randrange(700))
        period = Period(start, min(start + timedelta(days=rng.randrange(1, 500)), LAST))
        days = from_days(ROLLUPS, period)
        async with runtime.uow() as uow:
            session = uow.session
            hq_split = await repository.figure_rows(session, None, None, period)
            branches = await repository.unit_rows(session, None, None, period)
            hq_sketch = await repository.turnaround_sketch(session, None, None, period)
            branch_sketches = await repository.unit_sketches(session, None, None, period)
            store_sketches = await repository.unit_sketches(session, "B01", None, period)
            technicians = await repository.technician_rows(session, "B01", None, period)
        assert {(t, b): c for t, b, c in hq_split} == figures_of(days, "", "", split=True)
        assert {(b, s): c for b, s, c in branches} == {
            (b, ""): figures_of(days, b, "")[(ALL, ALL)]
            for b in ("B01", "B02")
            if (b, "") in units(days)
        }
        assert hq_sketch == sketch_of(days, "", "")
        assert branch_sketches == {
            (b, ""): sketch_of(days, b, "") for b in ("B01", "B02") if sketch_of(days, b, "")
        }
        assert store_sketches == {
            ("B01", s): sketch_of(days, "B01", s)
            for s in ("B01-0001", "B01-0002")
            if sketch_of(days, "B01", s)
        }
        assert {(r[0], r[2]): r[3] for r in technicians} == {
            (k.technician_id, k.store_id): full(c, repository.TECHNICIAN_COUNTERS)
            for k, c in days.items()
            if isinstance(k, TechnicianKey) and k.branch_id == "B01"
        }


def full(counters: dict[str, int], names: Iterable[str]) -> dict[str, int]:
    return {name: counters.get(name, 0) for name in names}


def units(rows: Rollups) -> set[tuple[str, str]]:
    return {(k.branch_id, k.store_id) for k in rows if isinstance(k, FigureKey)}


def figures_of(
    rows: Rollups, branch: str, store: str, *, split: bool = False
) -> dict[tuple[str, str], dict[str, int]]:
    return {
        (k.service_type, k.brand): full(c, FIGURE_COUNTERS)
        for k, c in rows.items()
        if isinstance(k, FigureKey)
        and (k.branch_id, k.store_id) == (branch, store)
        and (k.service_type != ALL) == split
    }


def sketch_of(rows: Rollups, branch: str, store: str) -> dict[int, int]:
    return {
        k.bucket: c["n"]
        for k, c in rows.items()
        if isinstance(k, TurnaroundKey) and (k.branch_id, k.store_id) == (branch, store)
    }


@pytest.mark.service("reporting")
async def test_the_migration_fills_the_new_grains_from_the_rows_before_it(
    db_target: DatabaseTarget,
) -> None:
    db = Database(db_target.url, db_target.schema)

    def to(connection: Connection, revision: str) -> None:
        config = migrations.alembic_config(SPEC.migrations_dir, connection, db_target.schema)
        command.upgrade(config, revision)

    # The history as 0007 kept it: day and month rows only.
    before = {
        key: counters
        for key, counters in ROLLUPS.items()
        if getattr(key, "grain", "m") in ("d", "m")
    }
    async with db.engine.connect() as conn:
        await db.create_schema(conn)
        await conn.run_sync(to, "0007_dashboard_rollups")
        for table, kind in [
            (order_rollups, FigureKey),
            (turnaround_buckets, TurnaroundKey),
            (technician_rollups, TechnicianKey),
        ]:
            names = [f.name for f in dataclasses.fields(kind)]
            rows = [
                {**dict(zip(names, dataclasses.astuple(key), strict=True)), **counters}
                for key, counters in before.items()
                if isinstance(key, kind)
            ]
            await conn.execute(table.insert(), [full_row(table, row) for row in rows])
        await conn.run_sync(to, "head")
        found: Rollups = await repository.stored_turnarounds(conn)
        for table, kind in [
            (order_rollups, FigureKey),
            (technician_rollups, TechnicianKey),
        ]:
            names = [f.name for f in dataclasses.fields(kind)]
            counters = [c.name for c in table.c if c.name not in names]
            for row in await conn.execute(select(table)):
                values = row._mapping
                found[kind(*(values[n] for n in names))] = {n: int(values[n]) for n in counters}
        await conn.commit()
    await db.dispose()
    assert merge([found]) == {
        key: counters
        for key, counters in ROLLUPS.items()
        if isinstance(key, FigureKey | TurnaroundKey | TechnicianKey)
    }


def full_row(table: Table, row: dict[str, object]) -> dict[str, object]:
    """Every column named, so the rows insert as one executemany."""
    return {column.name: row.get(column.name, 0) for column in table.c}
