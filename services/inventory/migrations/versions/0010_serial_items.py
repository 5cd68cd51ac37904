"""serialised items (串号): where each serial is, the serials a transfer moves, and a
stocktake's serial differences

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SERIAL_STATES = (
    "'in_stock', 'in_transit', 'consumed', 'returned_to_manufacturer', 'scrapped', 'missing'"
)


def upgrade() -> None:
    op.create_table(
        "serial_items",
        sa.Column("serial_number", sa.String(length=60), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("warehouse_id", sa.String(length=30), nullable=True),
        sa.Column("transfer_id", sa.String(length=40), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("line_id", sa.String(length=64), nullable=True),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({SERIAL_STATES})", name=op.f("ck_serial_items_state")),
        sa.CheckConstraint(
            "(state = 'in_stock' AND warehouse_id IS NOT NULL AND transfer_id IS NULL)"
            " OR (state = 'in_transit' AND warehouse_id IS NULL AND transfer_id IS NOT NULL"
            " AND order_id IS NULL)"
            " OR (state = 'consumed' AND warehouse_id IS NULL AND transfer_id IS NULL"
            " AND order_id IS NOT NULL)"
            " OR (state IN ('returned_to_manufacturer', 'scrapped', 'missing')"
            " AND warehouse_id IS NULL AND transfer_id IS NULL AND order_id IS NULL)",
            name=op.f("ck_serial_items_one_place"),
        ),
        sa.CheckConstraint(
            "(order_id IS NULL) = (line_id IS NULL)", name=op.f("ck_serial_items_order_line_whole")
        ),
        sa.CheckConstraint(
            "unit_cost_fen >= 0", name=op.f("ck_serial_items_unit_cost_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["part_number"], ["parts.part_number"], name=op.f("fk_serial_items_part_number_parts")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_serial_items_warehouse_id_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_serial_items_transfer_id_transfers")
        ),
        sa.ForeignKeyConstraint(
            ["order_id", "line_id"],
            ["order_part_lines.order_id", "order_part_lines.line_id"],
            name=op.f("fk_serial_items_order_id_order_part_lines"),
        ),
        sa.PrimaryKeyConstraint("serial_number", name=op.f("pk_serial_items")),
    )
    op.create_index(
        "ix_serial_items_warehouse_part", "serial_items", ["warehouse_id", "part_number"]
    )
    op.create_index("ix_serial_items_order_line", "serial_items", ["order_id", "line_id"])
    op.create_index("ix_serial_items_transfer", "serial_items", ["transfer_id"])
    op.create_table(
        "transfer_serials",
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("serial_number", sa.String(length=60), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('received', 'short', 'damaged')",
            name=op.f("ck_transfer_serials_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_transfer_serials_transfer_id_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_transfer_serials_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", "serial_number", name=op.f("pk_transfer_serials")),
    )
    op.create_index("ix_transfer_serials_serial", "transfer_serials", ["serial_number"])
    op.create_table(
        "stocktake_serials",
        sa.Column("stocktake_id", sa.String(length=40), nullable=False),
        sa.Column("serial_number", sa.String(length=60), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("finding", sa.String(length=10), nullable=False),
        sa.CheckConstraint(
            "finding IN ('missing', 'found')", name=op.f("ck_stocktake_serials_finding")
        ),
        sa.ForeignKeyConstraint(
            ["stocktake_id"],
            ["stocktakes.id"],
            name=op.f("fk_stocktake_serials_stocktake_id_stocktakes"),
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_stocktake_serials_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint("stocktake_id", "serial_number", name=op.f("pk_stocktake_serials")),
    )


def downgrade() -> None:
    op.drop_table("stocktake_serials")
    op.drop_index("ix_transfer_serials_serial", table_name="transfer_serials")
    op.drop_table("transfer_serials")
    op.drop_index("ix_serial_items_transfer", table_name="serial_items")
    op.drop_index("ix_serial_items_order_line", table_name="serial_items")
    op.drop_index("ix_serial_items_warehouse_part", table_name="serial_items")
    op.drop_table("serial_items")
