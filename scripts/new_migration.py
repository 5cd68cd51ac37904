"""Autogenerate a migration for a service from its models (`make migration SERVICE=orders
MSG="add closed_at"`): upgrades a scratch SQLite database to head, diffs it against the
models and writes the new revision into the service's migrations/versions/. Review it before
committing; the outbox and inbox tables come from servicekit.migrations.create_messaging_tables."""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import Connection

from servicekit import migrations
from servicekit.db import Database


async def main(service: str, message: str) -> None:
    spec = importlib.import_module(f"services.{service}.service").SPEC
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/scratch.db")
        await migrations.upgrade(db, spec.migrations_dir)

        def revise(connection: Connection) -> None:
            config = migrations.alembic_config(spec.migrations_dir, connection, None)
            command.revision(config, message=message, autogenerate=True)

        async with db.engine.connect() as conn:
            await conn.run_sync(revise)
        await db.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: new_migration.py SERVICE MESSAGE")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(main(sys.argv[1], sys.argv[2]))
