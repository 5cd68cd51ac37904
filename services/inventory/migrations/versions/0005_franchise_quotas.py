"""franchise quotas (额度): which store warehouses are franchised, and each one's quota

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
    op.add_column(
        "warehouses",
        sa.Column("franchised", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "quotas",
        sa.Column("warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("quota_fen", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quota_fen >= 0", name=op.f("ck_quotas_quota_not_negative")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"], ["warehouses.id"], name=op.f("fk_quotas_warehouse_id_warehouses")
        ),
        sa.PrimaryKeyConstraint("warehouse_id", name=op.f("pk_quotas")),
    )


def downgrade() -> None:
    op.drop_table("quotas")
    # Plain SQL: SQLite (3.35+) drops a column in place, without rebuilding the table.
    op.execute("ALTER TABLE warehouses DROP COLUMN franchised")
