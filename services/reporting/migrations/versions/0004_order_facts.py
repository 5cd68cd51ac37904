"""order facts: one row per order, rollups by day and month (figures, open orders, turnaround
sketch, technicians) kept from them; the daily counters they replace are dropped (the figures
before come back by replaying the ORDERS stream into the new tables)

Revision ID: 0004_order_facts
Revises: 0003_consumers_failures
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_order_facts"
down_revision = "0003_consumers_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_orders",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("open", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("swap_clock", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("waiting_parts", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("branch_id", "store_id", "day", name=op.f("pk_open_orders")),
    )
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=40), server_default="", nullable=False),
        sa.Column("branch_id", sa.String(length=30), server_default="", nullable=False),
        sa.Column("store_id", sa.String(length=30), server_default="", nullable=False),
        sa.Column("service_type", sa.String(length=20), server_default="", nullable=False),
        sa.Column("brand", sa.String(length=40), server_default="", nullable=False),
        sa.Column("warranty_status", sa.String(length=30), server_default="", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("repeat_repair", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("repeat_of_order_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("repair_level", sa.String(length=30), server_default="", nullable=False),
        sa.Column("qc_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("quote_total_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=30), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_parts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("technician_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("technician_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("worked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("came_back_as", sa.String(length=64), server_default="", nullable=False),
        sa.Column("follow_up_attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("follow_up_state", sa.String(length=20), server_default="", nullable=False),
        sa.Column("satisfaction", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claim_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("claim_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claim_month", sa.String(length=7), server_default="", nullable=False),
        sa.Column("claim_state", sa.String(length=20), server_default="", nullable=False),
        sa.Column("claim_labour_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_facts")),
    )
    with op.batch_alter_table("order_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_facts_branch_closed", ["branch_id", "closed_at"], unique=False
        )
        batch_op.create_index(
            "ix_order_facts_branch_ready", ["branch_id", "ready_at"], unique=False
        )
        batch_op.create_index(
            "ix_order_facts_branch_received", ["branch_id", "received_at"], unique=False
        )
        batch_op.create_index("ix_order_facts_claim", ["claim_id"], unique=False)
        batch_op.create_index(
            "ix_order_facts_store_closed", ["store_id", "closed_at"], unique=False
        )
        batch_op.create_index("ix_order_facts_store_ready", ["store_id", "ready_at"], unique=False)
        batch_op.create_index(
            "ix_order_facts_store_received", ["store_id", "received_at"], unique=False
        )

    op.create_table(
        "order_rollups",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("service_type", sa.String(length=20), nullable=False),
        sa.Column("brand", sa.String(length=40), nullable=False),
        sa.Column("received", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("repeat_received", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ready", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "turnaround_seconds", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("promised", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("on_time", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("closed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("repaired", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_time_fixed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("revenue_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("followed_up", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("satisfaction_sum", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "labour_claimed_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "labour_accepted_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("labour_paid_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cancelled", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "branch_id",
            "store_id",
            "grain",
            "day",
            "service_type",
            "brand",
            name=op.f("pk_order_rollups"),
        ),
    )
    with op.batch_alter_table("order_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_rollups_store_grain_day", ["store_id", "grain", "day"], unique=False
        )

    op.create_table(
        "technician_rollups",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("technician_id", sa.String(length=64), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("completed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "turnaround_seconds", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("ready", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("came_back", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("followed_up", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("satisfaction_sum", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "branch_id",
            "store_id",
            "technician_id",
            "grain",
            "day",
            name=op.f("pk_technician_rollups"),
        ),
    )
    op.create_table(
        "turnaround_buckets",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "branch_id", "store_id", "grain", "day", "bucket", name=op.f("pk_turnaround_buckets")
        ),
    )
    with op.batch_alter_table("daily_store_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_store_counts_branch_day"))
        batch_op.drop_index(batch_op.f("ix_daily_store_counts_store_day"))

    op.drop_table("daily_store_counts")


def downgrade() -> None:
    op.create_table(
        "daily_store_counts",
        sa.Column("day", sa.DATE(), nullable=False),
        sa.Column("branch_id", sa.VARCHAR(length=30), nullable=False),
        sa.Column("store_id", sa.VARCHAR(length=30), nullable=False),
        sa.Column("service_type", sa.VARCHAR(length=20), nullable=False),
        sa.Column("orders_received", sa.INTEGER(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "branch_id", "store_id", "service_type", name=op.f("pk_daily_store_counts")
        ),
    )
    with op.batch_alter_table("daily_store_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_daily_store_counts_store_day"), ["store_id", "day"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_daily_store_counts_branch_day"), ["branch_id", "day"], unique=False
        )

    op.drop_table("turnaround_buckets")
    op.drop_table("technician_rollups")
    with op.batch_alter_table("order_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_order_rollups_store_grain_day")

    op.drop_table("order_rollups")
    with op.batch_alter_table("order_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_order_facts_store_received")
        batch_op.drop_index("ix_order_facts_store_ready")
        batch_op.drop_index("ix_order_facts_store_closed")
        batch_op.drop_index("ix_order_facts_claim")
        batch_op.drop_index("ix_order_facts_branch_received")
        batch_op.drop_index("ix_order_facts_branch_ready")
        batch_op.drop_index("ix_order_facts_branch_closed")

    op.drop_table("order_facts")
    op.drop_table("open_orders")
