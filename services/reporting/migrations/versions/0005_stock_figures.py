"""stock figures: the parts side of the report centre (stock value by day, order parts costs,
service records against parts issued, orders waiting for parts)

Revision ID: 0005_stock_figures
Revises: 0004_order_facts
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_stock_figures"
down_revision = "0004_order_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_order_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("issued_quantity", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("issued_cost_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "returned_cost_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "day", "branch_id", "store_id", "order_id", name=op.f("pk_stock_order_days")
        ),
    )
    with op.batch_alter_table("stock_order_days", schema=None) as batch_op:
        batch_op.create_index("ix_stock_order_days_branch_day", ["branch_id", "day"], unique=False)
        batch_op.create_index("ix_stock_order_days_store_day", ["store_id", "day"], unique=False)

    op.create_table(
        "stock_order_lines",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("returned", sa.Integer(), nullable=False),
        sa.Column("previous_issued", sa.Integer(), nullable=False),
        sa.Column("previous_returned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_id", name=op.f("pk_stock_order_lines")),
    )
    op.create_table(
        "stock_part_days",
        sa.Column("warehouse_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("average_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("issued_quantity", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "warehouse_id", "part_number", "day", name=op.f("pk_stock_part_days")
        ),
    )
    with op.batch_alter_table("stock_part_days", schema=None) as batch_op:
        batch_op.create_index("ix_stock_part_days_branch_day", ["branch_id", "day"], unique=False)
        batch_op.create_index("ix_stock_part_days_store_day", ["store_id", "day"], unique=False)

    op.create_table(
        "stock_positions",
        sa.Column("warehouse_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("average_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("previous_value_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("warehouse_id", "part_number", name=op.f("pk_stock_positions")),
    )
    op.create_table(
        "stock_reconciliation",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("record_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("issued_quantity", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "part_number", name=op.f("pk_stock_reconciliation")),
    )
    with op.batch_alter_table("stock_reconciliation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stock_reconciliation_branch", ["branch_id", "order_id", "part_number"], unique=False
        )
        batch_op.create_index(
            "ix_stock_reconciliation_store", ["store_id", "order_id", "part_number"], unique=False
        )

    op.create_table(
        "stock_record_orders",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("previous_status", sa.String(length=30), nullable=False),
        sa.Column("previous_record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_stock_record_orders")),
    )
    op.create_table(
        "stock_store_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("value_change_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("issued_cost_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "returned_cost_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.PrimaryKeyConstraint("day", "branch_id", "store_id", name=op.f("pk_stock_store_days")),
    )
    with op.batch_alter_table("stock_store_days", schema=None) as batch_op:
        batch_op.create_index("ix_stock_store_days_branch_day", ["branch_id", "day"], unique=False)
        batch_op.create_index("ix_stock_store_days_store_day", ["store_id", "day"], unique=False)

    op.create_table(
        "stock_waiting_parts",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "part_number", name=op.f("pk_stock_waiting_parts")),
    )
    with op.batch_alter_table("stock_waiting_parts", schema=None) as batch_op:
        batch_op.create_index("ix_stock_waiting_parts_branch", ["branch_id"], unique=False)
        batch_op.create_index("ix_stock_waiting_parts_store", ["store_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stock_waiting_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_waiting_parts_store")
        batch_op.drop_index("ix_stock_waiting_parts_branch")

    op.drop_table("stock_waiting_parts")
    with op.batch_alter_table("stock_store_days", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_store_days_store_day")
        batch_op.drop_index("ix_stock_store_days_branch_day")

    op.drop_table("stock_store_days")
    op.drop_table("stock_record_orders")
    with op.batch_alter_table("stock_reconciliation", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_reconciliation_store")
        batch_op.drop_index("ix_stock_reconciliation_branch")

    op.drop_table("stock_reconciliation")
    op.drop_table("stock_positions")
    with op.batch_alter_table("stock_part_days", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_part_days_store_day")
        batch_op.drop_index("ix_stock_part_days_branch_day")

    op.drop_table("stock_part_days")
    op.drop_table("stock_order_lines")
    with op.batch_alter_table("stock_order_days", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_order_days_store_day")
        batch_op.drop_index("ix_stock_order_days_branch_day")

    op.drop_table("stock_order_days")
