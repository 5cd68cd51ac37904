"""repair routes: the customer's message consent and language, send-outs, factory returns,
swaps, mainboard IMEI changes, quick orders

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "customer_language", sa.String(length=10), nullable=False, server_default="zh-CN"
            )
        )
        batch_op.add_column(sa.Column("partner_branch_id", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("partner_store_id", sa.String(length=30), nullable=True))
        batch_op.create_index("ix_repair_orders_partner", ["partner_branch_id", "partner_store_id"])
    op.create_table(
        "imei_links",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("old_imei", sa.String(length=20), nullable=False),
        sa.Column("new_imei", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["repair_orders.id"], name=op.f("fk_imei_links_order_id_repair_orders")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_imei_links")),
    )
    with op.batch_alter_table("imei_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imei_links_old_imei"), ["old_imei"], unique=False)
        batch_op.create_index(batch_op.f("ix_imei_links_new_imei"), ["new_imei"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("imei_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imei_links_new_imei"))
        batch_op.drop_index(batch_op.f("ix_imei_links_old_imei"))
    op.drop_table("imei_links")
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_repair_orders_partner")
        batch_op.drop_column("partner_store_id")
        batch_op.drop_column("partner_branch_id")
        batch_op.drop_column("customer_language")
        batch_op.drop_column("message_consent")
