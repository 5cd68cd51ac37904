"""The hand-written migration matches the tables in orm.py, and demo data loads once."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from servicekit.db import Database
from services.gateway.demo import demo_users, load_demo_data
from services.gateway.orm import metadata, org_units, users
from services.gateway.scope import OrgTree


async def test_migrations_match_the_models(db: Database) -> None:
    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_demo_data_loads_once(db: Database) -> None:
    await load_demo_data(db)
    await load_demo_data(db)
    async with db.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(org_units)) == 7
        assert await conn.scalar(select(func.count()).select_from(users)) == len(demo_users())
        names = set((await conn.execute(select(users.c.username))).scalars())
    assert {"hq.admin", "hq.analyst", "sh.manager", "zj.manager", "zj002.tech"} <= names
    assert {"sh001.clerk", "sh002.keeper", "zj001.tech"} <= names
    assert {"sh.followup", "zj.followup"} <= names
    assert len(names) == 6 + 4 * 3
    tree = await OrgTree.load(db)
    assert tree.path("ZJ-002") == ("ZJ", "ZJ-002")
