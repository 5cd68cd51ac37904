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
        "daily_store_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("service_type", sa.String(length=20), nullable=False),
        sa.Column("orders_received", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "branch_id", "store_id", "service_type", name=op.f("pk_daily_store_counts")
        ),
    )
    with op.batch_alter_table("daily_store_counts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_daily_store_counts_branch_day", ["branch_id", "day"], unique=False
        )
        batch_op.create_index("ix_daily_store_counts_store_day", ["store_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("daily_store_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_daily_store_counts_store_day")
        batch_op.drop_index("ix_daily_store_counts_branch_day")

    op.drop_table("daily_store_counts")
    drop_messaging_tables(op)
