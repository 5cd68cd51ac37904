"""orders: part lines and payments move out of the `work` JSON into tables of their own
(order_lines, order_payments) with their constraints; every existing order is carried over

Revision ID: 0012_order_lines_tables
Revises: 0011_settlement
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012_order_lines_tables"
down_revision = "0011_settlement"
branch_labels = None
depends_on = None

BATCH = 500  # orders read, carried over and rewritten at a time

# A line as the JSON had it, with the defaults of the fields older orders were written without.
LINE_DEFAULTS: dict[str, Any] = {
    "reserved": 0,
    "issued": 0,
    "released": False,
    "old_part_kept": False,
    "retail_price_fen": 0,
    "store_id": "",
    "serials": [],
    "successor_part_id": "",
    "successor_available": 0,
}
LINE_FIELDS = ("line_id", "part_id", "quantity", "warranty", *LINE_DEFAULTS)

orders = sa.table("repair_orders", sa.column("id", sa.String()), sa.column("work", sa.Text()))
_TEXT = ("order_id", "line_id", "part_id", "store_id", "serials", "successor_part_id")
_FLAGS = ("warranty", "released", "old_part_kept")
lines = sa.table(
    "order_lines",
    *(
        sa.column(
            name,
            sa.String() if name in _TEXT else sa.Boolean() if name in _FLAGS else sa.BigInteger(),
        )
        for name in ("order_id", "position", *LINE_FIELDS)
    ),
)
payments = sa.table(
    "order_payments",
    sa.column("order_id", sa.String()),
    sa.column("position", sa.Integer()),
    sa.column("method", sa.String()),
    sa.column("amount_fen", sa.BigInteger()),
    sa.column("at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Check constraints are named by the metadata's convention: ck_<table>_<name>.
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("line_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("part_id", sa.String(60), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("warranty", sa.Boolean(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("old_part_kept", sa.Boolean(), nullable=False),
        sa.Column("retail_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.String(30), nullable=False),
        sa.Column("serials", sa.Text(), nullable=False),
        sa.Column("successor_part_id", sa.String(60), nullable=False),
        sa.Column("successor_available", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["repair_orders.id"], name="fk_order_lines_order_id_repair_orders"
        ),
        sa.PrimaryKeyConstraint("order_id", "line_id", name="pk_order_lines"),
        sa.CheckConstraint("quantity > 0", name="quantity"),
        sa.CheckConstraint(
            "reserved >= 0 AND issued >= 0 AND successor_available >= 0",
            name="counts",
        ),
        sa.CheckConstraint("retail_price_fen >= 0", name="price"),
    )
    op.create_table(
        "order_payments",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["repair_orders.id"], name="fk_order_payments_order_id_repair_orders"
        ),
        sa.PrimaryKeyConstraint("order_id", "position", name="pk_order_payments"),
        sa.CheckConstraint("amount_fen >= 0", name="amount"),
    )
    connection = op.get_bind()
    for batch in _batches(connection):
        line_rows: list[dict[str, Any]] = []
        payment_rows: list[dict[str, Any]] = []
        rewritten: list[dict[str, Any]] = []
        for order_id, work in batch:
            body = json.loads(work or "{}")
            if "lines" not in body and "payments" not in body:
                continue
            for position, line in enumerate(body.pop("lines", [])):
                row = {**LINE_DEFAULTS, **line, "order_id": order_id, "position": position}
                row["serials"] = ",".join(row["serials"] or ())
                line_rows.append({k: row[k] for k in ("order_id", "position", *LINE_FIELDS)})
            for position, payment in enumerate(body.pop("payments", [])):
                payment_rows.append(
                    {
                        "order_id": order_id,
                        "position": position,
                        "method": payment["method"],
                        "amount_fen": payment["amount_fen"],
                        "at": datetime.fromisoformat(payment["at"]),
                    }
                )
            rewritten.append({"order_id": order_id, "work": _dumps(body)})
        if line_rows:
            connection.execute(lines.insert(), line_rows)
        if payment_rows:
            connection.execute(payments.insert(), payment_rows)
        _rewrite(connection, rewritten)


def downgrade() -> None:
    connection = op.get_bind()
    for batch in _batches(connection):
        ids = [order_id for order_id, _ in batch]
        kept_lines: dict[str, list[dict[str, Any]]] = {}
        for row in connection.execute(
            sa.select(lines).where(lines.c.order_id.in_(ids)).order_by(lines.c.position)
        ).mappings():
            line = {name: row[name] for name in LINE_FIELDS}
            line["serials"] = row["serials"].split(",") if row["serials"] else []
            line["warranty"], line["released"] = bool(line["warranty"]), bool(line["released"])
            line["old_part_kept"] = bool(line["old_part_kept"])
            kept_lines.setdefault(row["order_id"], []).append(line)
        kept_payments: dict[str, list[dict[str, Any]]] = {}
        for row in connection.execute(
            sa.select(payments).where(payments.c.order_id.in_(ids)).order_by(payments.c.position)
        ).mappings():
            at = row["at"]
            # Stored in UTC; SQLite hands it back without its zone.
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            kept_payments.setdefault(row["order_id"], []).append(
                {
                    "method": row["method"],
                    "amount_fen": row["amount_fen"],
                    "at": at.isoformat(),
                }
            )
        rewritten = []
        for order_id, work in batch:
            body = json.loads(work or "{}")
            if not body:
                continue
            body["lines"] = kept_lines.get(order_id, [])
            body["payments"] = kept_payments.get(order_id, [])
            rewritten.append({"order_id": order_id, "work": _dumps(body)})
        _rewrite(connection, rewritten)
    op.drop_table("order_payments")
    op.drop_table("order_lines")


def _batches(connection: sa.Connection) -> Iterator[list[tuple[str, str]]]:
    """Every order's id and work, BATCH at a time in id order (keyset: no offset scans)."""
    last = ""
    while True:
        batch = [
            (str(order_id), str(work))
            for order_id, work in connection.execute(
                sa.select(orders.c.id, orders.c.work)
                .where(orders.c.id > last)
                .order_by(orders.c.id)
                .limit(BATCH)
            )
        ]
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def _rewrite(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(
            orders.update()
            .where(orders.c.id == sa.bindparam("order_id"))
            .values(work=sa.bindparam("work")),
            rows,
        )


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
