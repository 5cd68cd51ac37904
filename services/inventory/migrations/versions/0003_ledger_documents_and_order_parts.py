"""ledger rows name their document (type and id); the parts each order line holds

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain SQL: both SQLite (3.35+) and PostgreSQL rename and drop a column in place, without
    # rebuilding the ledger table (and risking its CHECK constraints).
    op.drop_index("ix_stock_movements_reference", table_name="stock_movements")
    op.execute("ALTER TABLE stock_movements RENAME COLUMN reference TO document_id")
    op.add_column(
        "stock_movements",
        sa.Column("document_type", sa.String(length=30), nullable=False, server_default="receipt"),
    )
    # The default fills the rows booked before this revision: only receipts were (the demo
    # opening stock). Every insert since names its document type.
    op.create_index(
        "ix_stock_movements_document", "stock_movements", ["document_type", "document_id"]
    )
    op.create_table(
        "order_part_lines",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("warranty", sa.Boolean(), nullable=False),
        sa.Column("retail_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("short", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("returned", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('reserved', 'short', 'issued', 'released', 'returned')",
            name=op.f("ck_order_part_lines_status"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_part_lines_quantity_positive")),
        sa.CheckConstraint(
            "reserved >= 0 AND short >= 0 AND reserved + short <= quantity",
            name=op.f("ck_order_part_lines_held_within_quantity"),
        ),
        sa.CheckConstraint(
            "issued >= 0 AND returned >= 0 AND returned <= issued",
            name=op.f("ck_order_part_lines_returned_within_issued"),
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_order_part_lines_warehouse_id_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_order_part_lines_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint("order_id", "line_id", name=op.f("pk_order_part_lines")),
    )
    op.create_index(
        "ix_order_part_lines_warehouse_part", "order_part_lines", ["warehouse_id", "part_number"]
    )


def downgrade() -> None:
    op.drop_index("ix_order_part_lines_warehouse_part", table_name="order_part_lines")
    op.drop_table("order_part_lines")
    op.drop_index("ix_stock_movements_document", table_name="stock_movements")
    op.execute("ALTER TABLE stock_movements DROP COLUMN document_type")
    op.execute("ALTER TABLE stock_movements RENAME COLUMN document_id TO reference")
    op.create_index("ix_stock_movements_reference", "stock_movements", ["reference"])
