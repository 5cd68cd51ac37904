"""dashboards at national scale: every unit's total row in order_rollups (service type and
brand '*'), backfilled from the rows by service type and brand, and the indexes the
breakdowns by unit (HQ's branches, a branch's stores and technicians) read

Revision ID: 0007_dashboard_rollups
Revises: 0006_outbox_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_dashboard_rollups"
down_revision = "0006_outbox_leases"
branch_labels = None
depends_on = None

COUNTERS = (
    "received",
    "repeat_received",
    "ready",
    "turnaround_seconds",
    "promised",
    "on_time",
    "closed",
    "repaired",
    "first_time_fixed",
    "revenue_fen",
    "followed_up",
    "satisfaction_sum",
    "labour_claimed_fen",
    "labour_accepted_fen",
    "labour_paid_fen",
    "cancelled",
)
TOTAL = sa.text("service_type = '*'")


def upgrade() -> None:
    # What domain/rollups.contributions now also writes: the sum of a unit's rows of a day or
    # month, so the live consumers' deltas keep adding to rows that hold the past already.
    names = ", ".join(COUNTERS)
    sums = ", ".join(f"SUM({name})" for name in COUNTERS)
    keys = "branch_id, store_id, grain, day"
    op.execute(
        f"INSERT INTO order_rollups ({keys}, service_type, brand, {names}) "
        f"SELECT {keys}, '*', '*', {sums} FROM order_rollups "
        f"WHERE service_type <> '*' GROUP BY {keys}"
    )
    with op.batch_alter_table("order_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_rollups_branch_totals",
            ["store_id", "grain", "day", "branch_id"],
            unique=False,
            postgresql_where=TOTAL,
            sqlite_where=TOTAL,
        )
        batch_op.create_index(
            "ix_order_rollups_store_totals",
            ["branch_id", "grain", "day", "store_id"],
            unique=False,
            postgresql_where=TOTAL,
            sqlite_where=TOTAL,
        )
    with op.batch_alter_table("turnaround_buckets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_turnaround_buckets_branches",
            ["grain", "day", "branch_id", "bucket"],
            unique=False,
            postgresql_include=["n"],
            postgresql_where=sa.text("store_id = ''"),
            sqlite_where=sa.text("store_id = ''"),
        )
        batch_op.create_index(
            "ix_turnaround_buckets_hq",
            ["grain", "day", "bucket"],
            unique=False,
            postgresql_include=["n"],
            postgresql_where=sa.text("branch_id = '' AND store_id = ''"),
            sqlite_where=sa.text("branch_id = '' AND store_id = ''"),
        )
        batch_op.create_index(
            "ix_turnaround_buckets_stores",
            ["branch_id", "grain", "day", "store_id", "bucket"],
            unique=False,
            postgresql_include=["n"],
        )
    with op.batch_alter_table("technician_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_technician_rollups_branch_grain_day", ["branch_id", "grain", "day"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("technician_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_technician_rollups_branch_grain_day")
    with op.batch_alter_table("turnaround_buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_turnaround_buckets_stores")
        batch_op.drop_index("ix_turnaround_buckets_hq")
        batch_op.drop_index("ix_turnaround_buckets_branches")
    with op.batch_alter_table("order_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_order_rollups_store_totals")
        batch_op.drop_index("ix_order_rollups_branch_totals")
    op.execute("DELETE FROM order_rollups WHERE service_type = '*'")
