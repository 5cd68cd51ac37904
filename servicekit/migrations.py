"""Alembic, driven from code: each service keeps `migrations/` (env.py + versions/) and the
runtime upgrades it to head at start; `make migrate` does the same without serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text

from servicekit.db import Database


def alembic_config(migrations_dir: Path, connection: Connection, schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


async def upgrade(db: Database, migrations_dir: Path) -> None:
    """Bring the service's schema to head. On PostgreSQL the whole upgrade (schema creation
    included) runs under a transaction-scoped advisory lock on the schema's name: replicas
    starting together migrate one at a time, and those that wait then find nothing to do."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(migrations_dir, connection, db.schema), "head")

    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                {"name": f"aftersales-migrations:{db.schema or ''}"},
            )
        await db.create_schema(conn)
        await conn.run_sync(run)
        await conn.commit()


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    config = context.config
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through servicekit.migrations.upgrade")
    schema = config.attributes.get("schema")
    options: dict[str, Any] = {
        "connection": connection,
        "target_metadata": target_metadata,
        "render_as_batch": connection.dialect.name == "sqlite",
    }
    if schema:
        options["version_table_schema"] = schema
    context.configure(**options)
    with context.begin_transaction():
        context.run_migrations()


def create_messaging_tables(op: Any) -> None:
    """The outbox and inbox tables, as every service's first migration creates them. Written out
    here (not derived from the current models) so that this migration never changes."""
    import sqlalchemy as sa

    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )


def drop_messaging_tables(op: Any) -> None:
    """The reverse of create_messaging_tables, for a first migration's downgrade."""
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("inbox")


def add_messaging_reliability(op: Any) -> None:
    """What every service's second migration adds: the outbox's count of failed publishes, the
    last reason, when to try again and when the row was parked; an index by which the inbox is
    pruned. Written out, like create_messaging_tables, so that this migration never changes."""
    import sqlalchemy as sa

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_inbox_handled_at", "inbox", ["handled_at"])


def drop_messaging_reliability(op: Any) -> None:
    """The reverse of add_messaging_reliability."""
    op.drop_index("ix_inbox_handled_at", table_name="inbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("parked_at")
        batch.drop_column("retry_at")
        batch.drop_column("last_error")
        batch.drop_column("attempts")


def add_consumer_failures(op: Any) -> None:
    """The failed attempts counted per consumer and event (servicekit.inbox.failures_table).
    Written out, so that the migrations adding it never change."""
    import sqlalchemy as sa

    op.create_table(
        "consumer_failures",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_index("ix_consumer_failures_last_failed_at", "consumer_failures", ["last_failed_at"])


def drop_consumer_failures(op: Any) -> None:
    """The reverse of add_consumer_failures."""
    op.drop_index("ix_consumer_failures_last_failed_at", table_name="consumer_failures")
    op.drop_table("consumer_failures")


def add_outbox_leases(op: Any) -> None:
    """The outbox relay's lease on the rows it is publishing (servicekit.outbox): until when
    and by which relay. Written out, so that the migrations adding it never change."""
    import sqlalchemy as sa

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))


def drop_outbox_leases(op: Any) -> None:
    """The reverse of add_outbox_leases."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
        batch.drop_column("claimed_until")
