"""Every service's migrations build exactly the schema its tables describe, on SQLite and on
PostgreSQL: a model change without its migration fails here, not in production."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData

from servicekit import migrations
from servicekit.db import Database
from servicekit.testing import DatabaseTarget

SERVICES = ("orders", "inventory", "customers", "reporting")


def differences(connection: Connection, metadata: MetaData, schema: str | None) -> list[object]:
    options = {"version_table_schema": schema} if schema else {}
    context = MigrationContext.configure(connection, opts=options)
    return [d for d in compare_metadata(context, metadata) if d[0] != "remove_table"]


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_tables(service: str, db_target: DatabaseTarget) -> None:
    spec = importlib.import_module(f"services.{service}.service").SPEC
    db = Database(db_target.url, db_target.schema)
    await migrations.upgrade(db, spec.migrations_dir)
    async with db.engine.connect() as conn:
        found = await conn.run_sync(differences, spec.metadata, db_target.schema)
    await db.dispose()
    assert found == []
