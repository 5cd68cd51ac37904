"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "parts",
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("brand", sa.String(length=30), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("serialised", sa.Boolean(), nullable=False),
        sa.Column("standard_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("retail_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("superseded_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "retail_price_fen >= 0", name=op.f("ck_parts_retail_price_not_negative")
        ),
        sa.CheckConstraint(
            "standard_cost_fen >= 0", name=op.f("ck_parts_standard_cost_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by"], ["parts.part_number"], name=op.f("fk_parts_superseded_by_parts")
        ),
        sa.PrimaryKeyConstraint("part_number", name=op.f("pk_parts")),
    )
    with op.batch_alter_table("parts", schema=None) as batch_op:
        batch_op.create_index("ix_parts_brand_category", ["brand", "category"], unique=False)

    op.create_table(
        "warehouses",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=True),
        sa.CheckConstraint(
            "(kind = 'store' AND store_id IS NOT NULL)"
            " OR (kind = 'branch_central' AND store_id IS NULL)",
            name=op.f("ck_warehouses_store_matches_kind"),
        ),
        sa.CheckConstraint("kind IN ('store', 'branch_central')", name=op.f("ck_warehouses_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouses")),
        sa.UniqueConstraint("store_id", name=op.f("uq_warehouses_store_id")),
    )
    with op.batch_alter_table("warehouses", schema=None) as batch_op:
        batch_op.create_index("ix_warehouses_branch_store", ["branch_id", "store_id"], unique=False)
        batch_op.create_index(
            "uq_warehouses_one_central_per_branch",
            ["branch_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'branch_central'"),
            postgresql_where=sa.text("kind = 'branch_central'"),
        )

    op.create_table(
        "part_models",
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("model_code", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["part_number"], ["parts.part_number"], name=op.f("fk_part_models_part_number_parts")
        ),
        sa.PrimaryKeyConstraint("part_number", "model_code", name=op.f("pk_part_models")),
    )
    with op.batch_alter_table("part_models", schema=None) as batch_op:
        batch_op.create_index("ix_part_models_model_code", ["model_code"], unique=False)

    op.create_table(
        "stock_levels",
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("average_cost_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "average_cost_fen >= 0", name=op.f("ck_stock_levels_average_cost_not_negative")
        ),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_levels_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_stock_levels_reserved_within_on_hand")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_stock_levels_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["part_number"], ["parts.part_number"], name=op.f("fk_stock_levels_part_number_parts")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_stock_levels_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("warehouse_id", "part_number", name=op.f("pk_stock_levels")),
    )
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.create_index("ix_stock_levels_part_number", ["part_number"], unique=False)

    op.create_table(
        "stock_movements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("serial_number", sa.String(length=60), nullable=True),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "(kind IN ('receipt', 'return', 'transfer_in') AND quantity > 0)"
            " OR (kind IN ('issue', 'transfer_out', 'scrap', 'return_to_manufacturer')"
            " AND quantity < 0)"
            " OR (kind = 'adjustment' AND quantity <> 0)",
            name=op.f("ck_stock_movements_quantity_sign_matches_kind"),
        ),
        sa.CheckConstraint(
            "kind IN ('receipt', 'return', 'transfer_in', 'issue', 'transfer_out', 'scrap',"
            " 'return_to_manufacturer', 'adjustment')",
            name=op.f("ck_stock_movements_kind"),
        ),
        sa.CheckConstraint(
            "serial_number IS NULL OR quantity IN (1, -1)",
            name=op.f("ck_stock_movements_one_unit_per_serial"),
        ),
        sa.CheckConstraint(
            "unit_cost_fen >= 0", name=op.f("ck_stock_movements_unit_cost_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_stock_movements_part_number_parts"),
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_stock_movements_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index("ix_stock_movements_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index("ix_stock_movements_reference", ["reference"], unique=False)
        batch_op.create_index("ix_stock_movements_serial_number", ["serial_number"], unique=False)
        batch_op.create_index(
            "ix_stock_movements_warehouse_part", ["warehouse_id", "part_number", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_movements_warehouse_part")
        batch_op.drop_index("ix_stock_movements_serial_number")
        batch_op.drop_index("ix_stock_movements_reference")
        batch_op.drop_index("ix_stock_movements_occurred_at")

    op.drop_table("stock_movements")
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_levels_part_number")

    op.drop_table("stock_levels")
    with op.batch_alter_table("part_models", schema=None) as batch_op:
        batch_op.drop_index("ix_part_models_model_code")

    op.drop_table("part_models")
    with op.batch_alter_table("warehouses", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_warehouses_one_central_per_branch",
            sqlite_where=sa.text("kind = 'branch_central'"),
            postgresql_where=sa.text("kind = 'branch_central'"),
        )
        batch_op.drop_index("ix_warehouses_branch_store")

    op.drop_table("warehouses")
    with op.batch_alter_table("parts", schema=None) as batch_op:
        batch_op.drop_index("ix_parts_brand_category")

    op.drop_table("parts")
    drop_messaging_tables(op)
