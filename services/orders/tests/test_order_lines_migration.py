"""Migration 0012 on real-shaped data: orders written before it kept their part lines and
payments in the `work` JSON (older ones without the fields added since); after it every order
reads back the same, its lines and payments from their tables, and the JSON holds them no more.
Down again, the JSON has them back. The tables' constraints refuse what no order can be."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from servicekit import migrations
from servicekit.db import Database
from servicekit.testing import DatabaseTarget
from services.orders.adapters import repository
from services.orders.adapters.orm import order_lines, repair_orders
from services.orders.domain.order import (
    Diagnosis,
    FactoryReturn,
    PartLine,
    Payment,
    PlannedPart,
    Quote,
    RepairOrder,
    Work,
)
from services.orders.service import SPEC
from services.orders.tests.test_settlement import order

pytestmark = pytest.mark.service("orders")

BEFORE = "0011_settlement"
ORDERS = 1_100  # more than one batch of the migration (500)
AT = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


async def migrate_to(db: Database, revision: str, down: bool = False) -> None:
    def run(connection: Connection) -> None:
        config = migrations.alembic_config(SPEC.migrations_dir, connection, db.schema)
        (command.downgrade if down else command.upgrade)(config, revision)

    async with db.engine.connect() as conn:
        await db.create_schema(conn)
        await conn.run_sync(run)
        await conn.commit()


def old_json(work: Work, drop: tuple[str, ...] = ()) -> str:
    """The `work` JSON as orders wrote it before 0012, lines and payments inside; `drop`: the
    line fields an older order was written without."""
    body = asdict(work)
    for payment in body["payments"]:
        payment["at"] = payment["at"].isoformat()
    for line in body["lines"]:
        for name in drop:
            del line[name]
    if factory := body["factory"]:
        factory["shipped_at"] = factory["shipped_at"].isoformat()
        factory["received_at"] = None
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def real_shaped(rng: random.Random, i: int) -> tuple[Work, tuple[str, ...]]:
    """The works an order goes through: fresh (no steps), diagnosed with lines (reserved, short,
    issued, released, with serials, with a successor), paid at pickup, sent to the factory."""
    shape = i % 5
    if shape == 0:
        return Work(), ()
    lines = [
        PartLine(
            line_id=f"L{n + 1}",
            part_id=rng.choice(["HW-SCR-P60", "HW-BAT-P60", "HW-MAI-P60"]),
            quantity=rng.randint(1, 3),
            warranty=rng.random() < 0.5,
            reserved=rng.randint(0, 1),
            issued=rng.randint(0, 1),
            released=rng.random() < 0.1,
            old_part_kept=rng.random() < 0.3,
            retail_price_fen=rng.randint(0, 200_000),
            store_id=rng.choice(["", "SH-002"]),
            serials=tuple(f"SN{i}{n}{k}" for k in range(rng.randint(0, 2))),
            successor_part_id=rng.choice(["", "HW-BAT-P60-B"]),
            successor_available=rng.randint(0, 4),
        )
        for n in range(rng.randint(1, 3))
    ]
    work = Work(
        diagnosis=Diagnosis(
            "S-1", "F-LCD", "", ("replace_screen",), (PlannedPart("HW-SCR-P60", 1),), "L2"
        ),
        quote=Quote(6000, 80000, "SH-001"),
        customer_approved=True,
        lines=lines,
        actions_done=("replace_screen",),
        repair_level="L2",
        qc_failures=rng.randint(0, 2),
    )
    if shape in (2, 3):
        work.payments = [
            Payment("wechat_pay", rng.randint(1, 100_000), AT + timedelta(minutes=k))
            for k in range(shape - 1)
        ]
    if shape == 3:
        work.factory = FactoryReturn("SF", "SF123", AT)
    # Orders written before serials and successors were kept have no such fields at all.
    drop = ("serials", "successor_part_id", "successor_available") if shape == 4 else ()
    if drop:
        work.lines = [
            replace(x, serials=(), successor_part_id="", successor_available=0) for x in lines
        ]
    return work, drop


async def test_every_order_is_carried_over_and_back(db_target: DatabaseTarget) -> None:
    db = Database(db_target.url, db_target.schema)
    try:
        await migrate_to(db, BEFORE)
        rng = random.Random(12)
        expected: dict[str, Work] = {}
        written: dict[str, dict[str, Any]] = {}
        async with db.session() as session:
            for i in range(ORDERS):
                work, drop = real_shaped(rng, i)
                made: RepairOrder = replace(
                    order(), id=str(uuid.uuid4()), number=f"SH-001-260301-{i:04d}", work=Work()
                )
                await repository.add(session, made, "k")
                text = old_json(work, drop) if work != Work() else "{}"
                await session.execute(
                    update(repair_orders).where(repair_orders.c.id == made.id).values(work=text)
                )
                expected[made.id] = work
                written[made.id] = json.loads(old_json(work)) if text != "{}" else {}
            await session.commit()

        await migrate_to(db, "head")
        async with db.session() as session:
            for order_id, work in expected.items():
                found = await repository.get(session, order_id)
                assert found is not None
                assert found.work == work, order_id
            texts = (await session.execute(select(repair_orders.c.work))).scalars().all()
            assert not any('"lines"' in t or '"payments"' in t for t in texts)
            count = len((await session.execute(select(order_lines.c.line_id))).all())
            assert count == sum(len(w.lines) for w in expected.values())

        await migrate_to(db, BEFORE, down=True)
        async with db.session() as session:
            rows = await session.execute(select(repair_orders.c.id, repair_orders.c.work))
            back = {order_id: json.loads(text) for order_id, text in rows}
        assert back == written
    finally:
        await db.dispose()


async def test_the_tables_refuse_what_no_order_can_be(db_target: DatabaseTarget) -> None:
    db = Database(db_target.url, db_target.schema)
    try:
        await migrations.upgrade(db, SPEC.migrations_dir)
        made = replace(order(), id=str(uuid.uuid4()))
        async with db.session() as session:
            await repository.add(session, made, "k")
            await session.commit()
        line = {
            "order_id": made.id,
            "line_id": "L1",
            "position": 0,
            "part_id": "HW-SCR-P60",
            "quantity": 1,
            "warranty": True,
            "reserved": 0,
            "issued": 1,
            "released": False,
            "old_part_kept": False,
            "retail_price_fen": 100,
            "store_id": "",
            "serials": "",
            "successor_part_id": "",
            "successor_available": 0,
        }
        for bad in ({"quantity": 0}, {"issued": -1}, {"retail_price_fen": -1}, {"order_id": "x"}):
            async with db.session() as session:
                if db.engine.dialect.name == "sqlite":
                    await session.exec_driver_sql("PRAGMA foreign_keys=ON")
                with pytest.raises(IntegrityError):
                    await session.execute(order_lines.insert().values(**{**line, **bad}))
    finally:
        await db.dispose()
