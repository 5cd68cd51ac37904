"""old-part returns (旧件返还): when each order line was issued, the old parts sent back for it,
and the batches that carried them

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "order_part_lines", sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "order_part_lines",
        sa.Column("old_returned", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "old_part_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("document_id", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_old_part_batches_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_old_part_batches")),
    )
    op.create_index(
        "ix_old_part_batches_warehouse", "old_part_batches", ["warehouse_id", "created_at"]
    )
    op.create_table(
        "old_part_batch_lines",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_old_part_batch_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["old_part_batches.id"],
            name=op.f("fk_old_part_batch_lines_batch_id_old_part_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id", "line_id"],
            ["order_part_lines.order_id", "order_part_lines.line_id"],
            name=op.f("fk_old_part_batch_lines_order_id_order_part_lines"),
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "order_id", "line_id", name=op.f("pk_old_part_batch_lines")
        ),
    )


def downgrade() -> None:
    op.drop_table("old_part_batch_lines")
    op.drop_index("ix_old_part_batches_warehouse", table_name="old_part_batches")
    op.drop_table("old_part_batches")
    # Plain SQL: SQLite (3.35+) drops a column in place, without rebuilding the table.
    op.execute("ALTER TABLE order_part_lines DROP COLUMN old_returned")
    op.execute("ALTER TABLE order_part_lines DROP COLUMN issued_at")
