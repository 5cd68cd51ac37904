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
        "brands",
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("return_days", sa.Integer(), nullable=False),
        sa.Column("swap_days", sa.Integer(), nullable=False),
        sa.Column("main_unit_months", sa.Integer(), nullable=False),
        sa.Column("battery_months", sa.Integer(), nullable=False),
        sa.Column("charger_months", sa.Integer(), nullable=False),
        sa.Column("earphone_months", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_brands")),
    )
    op.create_table(
        "order_number_counters",
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "day", name=op.f("pk_order_number_counters")),
    )
    op.create_table(
        "repair_orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("service_type", sa.String(length=20), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("customer_name", sa.String(length=50), nullable=False),
        sa.Column("customer_phone", sa.String(length=20), nullable=False),
        sa.Column("imei", sa.String(length=20), nullable=False),
        sa.Column("brand", sa.String(length=30), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("colour", sa.String(length=30), nullable=False),
        sa.Column("purchase_date", sa.Date(), nullable=True),
        sa.Column("fault_description", sa.Text(), nullable=False),
        sa.Column("symptom_code", sa.String(length=30), nullable=False),
        sa.Column("accessories", sa.Text(), nullable=False),
        sa.Column("appearance", sa.Text(), nullable=False),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("warranty_status", sa.String(length=20), nullable=False),
        sa.Column("warranty_entitlements", sa.String(length=60), nullable=False),
        sa.Column("warranty_reason", sa.Text(), nullable=False),
        sa.Column("warranty_expires_on", sa.Date(), nullable=True),
        sa.Column("send_on_required", sa.Boolean(), nullable=False),
        sa.Column("brand_authorised", sa.Boolean(), nullable=False),
        sa.Column("repeat_repair", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_repair_orders_number")),
        sa.UniqueConstraint("request_id", name=op.f("uq_repair_orders_request_id")),
    )
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.create_index("ix_repair_orders_customer_phone", ["customer_phone"], unique=False)
        batch_op.create_index("ix_repair_orders_imei", ["imei"], unique=False)
        batch_op.create_index("ix_repair_orders_received", ["received_at", "id"], unique=False)
        batch_op.create_index(
            "ix_repair_orders_scope_received",
            ["branch_id", "store_id", "received_at"],
            unique=False,
        )

    op.create_table(
        "models",
        sa.Column("brand_code", sa.String(length=30), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_code"], ["brands.code"], name=op.f("fk_models_brand_code_brands")
        ),
        sa.PrimaryKeyConstraint("brand_code", "code", name=op.f("pk_models")),
    )
    op.create_table(
        "order_timeline",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["repair_orders.id"],
            name=op.f("fk_order_timeline_order_id_repair_orders"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_order_timeline")),
    )
    with op.batch_alter_table("order_timeline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_timeline_order_id"), ["order_id"], unique=False)

    op.create_table(
        "store_authorisations",
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("brand_code", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_code"], ["brands.code"], name=op.f("fk_store_authorisations_brand_code_brands")
        ),
        sa.PrimaryKeyConstraint("store_id", "brand_code", name=op.f("pk_store_authorisations")),
    )


def downgrade() -> None:
    op.drop_table("store_authorisations")
    with op.batch_alter_table("order_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_timeline_order_id"))

    op.drop_table("order_timeline")
    op.drop_table("models")
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_repair_orders_scope_received")
        batch_op.drop_index("ix_repair_orders_received")
        batch_op.drop_index("ix_repair_orders_imei")
        batch_op.drop_index("ix_repair_orders_customer_phone")

    op.drop_table("repair_orders")
    op.drop_table("order_number_counters")
    op.drop_table("brands")
    drop_messaging_tables(op)
