"""Every unit's total row (service type and brand ALL) is the sum of its rows by service type
and brand: in what an order contributes, and in what migration 0007 backfills for the rows
written before it."""

from __future__ import annotations

import random
from datetime import date

import pytest
from alembic import command
from sqlalchemy import Connection, select

from servicekit import migrations
from servicekit.db import Database
from servicekit.testing import DatabaseTarget
from services.reporting.adapters.orm import order_rollups
from services.reporting.domain.history import store_history
from services.reporting.domain.kpis import FIGURE_COUNTERS, add_counters
from services.reporting.domain.rollups import ALL, FigureKey, contributions, merge
from services.reporting.service import SPEC


def test_a_units_total_row_is_the_sum_of_its_split_rows() -> None:
    facts = list(
        store_history(
            random.Random(3), "B01", "B01-0001", 300, date(2026, 9, 1), date(2026, 11, 30)
        )
    )
    rollups = merge(contributions(f) for f in facts)
    figures = [k for k in rollups if isinstance(k, FigureKey)]
    totals = {k for k in figures if k.service_type == ALL}
    split: dict[tuple, list] = {}
    for key in figures:
        if key.service_type != ALL:
            assert key.brand != ALL
            split.setdefault((key.branch_id, key.store_id, key.grain, key.day), []).append(
                rollups[key]
            )
    assert {(k.branch_id, k.store_id, k.grain, k.day) for k in totals} == set(split)
    for key in totals:
        assert key.brand == ALL
        assert rollups[key] == add_counters(
            split[(key.branch_id, key.store_id, key.grain, key.day)]
        )
    hq_received = sum(
        rollups[k].get("received", 0) for k in totals if k.grain == "d" and not k.branch_id
    )
    assert hq_received == 300


@pytest.mark.service("reporting")
async def test_the_migration_adds_the_total_rows_of_the_rows_written_before_it(
    db_target: DatabaseTarget,
) -> None:
    db = Database(db_target.url, db_target.schema)

    def to(connection: Connection, revision: str) -> None:
        config = migrations.alembic_config(SPEC.migrations_dir, connection, db_target.schema)
        command.upgrade(config, revision)

    async with db.engine.connect() as conn:
        await db.create_schema(conn)
        await conn.run_sync(to, "0006_outbox_leases")
        day = date(2026, 11, 1)
        rows = [
            ("SH", "SH-001", "repair", "huawei", 2, 1),
            ("SH", "SH-001", "swap", "apple", 3, 0),
            ("SH", "", "repair", "huawei", 5, 1),
        ]
        for branch, store, kind, brand, received, closed in rows:
            await conn.execute(
                order_rollups.insert().values(
                    branch_id=branch,
                    store_id=store,
                    grain="m",
                    day=day,
                    service_type=kind,
                    brand=brand,
                    received=received,
                    closed=closed,
                )
            )
        await conn.run_sync(to, "head")
        found = await conn.execute(select(order_rollups).where(order_rollups.c.service_type == ALL))
        totals = {
            (r.branch_id, r.store_id): {n: getattr(r, n) for n in FIGURE_COUNTERS if getattr(r, n)}
            for r in found
        }
        await conn.commit()
    await db.dispose()
    assert totals == {
        ("SH", "SH-001"): {"received": 5, "closed": 1},
        ("SH", ""): {"received": 5, "closed": 1},
    }


def test_store_only_contributions_are_the_store_rows_of_the_full_ones() -> None:
    facts = store_history(
        random.Random(4), "B02", "B02-0001", 200, date(2026, 10, 1), date(2026, 11, 30)
    )
    for fact in facts:
        full = contributions(fact)
        assert contributions(fact, store_only=True) == {
            key: counters for key, counters in full.items() if key.store_id
        }
