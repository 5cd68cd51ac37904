"""stocktakes (盘点): a warehouse counted against its book, and each part's count

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stocktakes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("counted_by", sa.String(length=64), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending_approval', 'posted', 'rejected')",
            name=op.f("ck_stocktakes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"], name=op.f("fk_stocktakes_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stocktakes")),
    )
    op.create_index("ix_stocktakes_warehouse", "stocktakes", ["warehouse_id", "counted_at"])
    op.create_table(
        "stocktake_lines",
        sa.Column("stocktake_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("book", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "book >= 0 AND counted >= 0",
            name=op.f("ck_stocktake_lines_quantities_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["stocktake_id"],
            ["stocktakes.id"],
            name=op.f("fk_stocktake_lines_stocktake_id_stocktakes"),
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_stocktake_lines_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint("stocktake_id", "part_number", name=op.f("pk_stocktake_lines")),
    )


def downgrade() -> None:
    op.drop_table("stocktake_lines")
    op.drop_index("ix_stocktakes_warehouse", table_name="stocktakes")
    op.drop_table("stocktakes")
