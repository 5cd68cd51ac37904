"""purchasing (采购): reorder levels per warehouse and part, purchase orders and their lines

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reorder_levels",
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("min_level", sa.Integer(), nullable=False),
        sa.Column("max_level", sa.Integer(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "0 <= min_level AND min_level <= max_level",
            name=op.f("ck_reorder_levels_levels_in_order"),
        ),
        sa.CheckConstraint(
            "lead_time_days >= 0", name=op.f("ck_reorder_levels_lead_time_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_reorder_levels_warehouse_id_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_reorder_levels_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint("warehouse_id", "part_number", name=op.f("pk_reorder_levels")),
    )
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("supplier", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'received', 'cancelled')", name=op.f("ck_purchase_orders_status")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_purchase_orders_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
    )
    op.create_index(
        "ix_purchase_orders_warehouse_status", "purchase_orders", ["warehouse_id", "status"]
    )
    op.create_table(
        "purchase_order_lines",
        sa.Column("purchase_order_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "unit_cost_fen >= 0", name=op.f("ck_purchase_order_lines_unit_cost_not_negative")
        ),
        sa.CheckConstraint(
            "received >= 0 AND received <= quantity",
            name=op.f("ck_purchase_order_lines_received_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["purchase_order_id"],
            ["purchase_orders.id"],
            name=op.f("fk_purchase_order_lines_purchase_order_id_purchase_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_purchase_order_lines_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint(
            "purchase_order_id", "part_number", name=op.f("pk_purchase_order_lines")
        ),
    )


def downgrade() -> None:
    op.drop_table("purchase_order_lines")
    op.drop_index("ix_purchase_orders_warehouse_status", table_name="purchase_orders")
    op.drop_table("purchase_orders")
    op.drop_table("reorder_levels")
