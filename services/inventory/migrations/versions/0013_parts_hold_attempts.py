"""an order line's hold belongs to the step attempts that claim it, and each order's newest
version and status as its events told inventory

Revision ID: 0013_parts_hold_attempts
Revises: 0012_consumers_failures
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_parts_hold_attempts"
down_revision = "0012_consumers_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_part_claims",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("attempt_id", sa.String(length=64), nullable=False),
        sa.Column("order_root", sa.String(length=64), nullable=False),
        sa.Column("order_version", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id", "line_id"],
            ["order_part_lines.order_id", "order_part_lines.line_id"],
            name=op.f("fk_order_part_claims_order_id_order_part_lines"),
        ),
        sa.PrimaryKeyConstraint(
            "order_id", "line_id", "attempt_id", name=op.f("pk_order_part_claims")
        ),
    )
    op.create_index(
        "ix_order_part_claims_order_root", "order_part_claims", ["order_root", "order_version"]
    )
    op.create_index(
        "ix_order_part_claims_pending", "order_part_claims", ["committed", "claimed_at"]
    )
    op.create_table(
        "order_states",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_states")),
    )


def downgrade() -> None:
    op.drop_table("order_states")
    op.drop_index("ix_order_part_claims_pending", table_name="order_part_claims")
    op.drop_index("ix_order_part_claims_order_root", table_name="order_part_claims")
    op.drop_table("order_part_claims")
