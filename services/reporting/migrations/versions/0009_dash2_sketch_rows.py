"""dash2 sketch rows: the turnaround sketch kept as one row per unit and tile
(turnaround_sketches, its buckets' counts as a JSON object) instead of a row per bucket, filled
from turnaround_buckets; that table stays for the release before (expand/contract)

Revision ID: 0009_dash2_sketch_rows
Revises: 0008_stock_rollups
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_dash2_sketch_rows"
down_revision = "0008_stock_rollups"
branch_labels = None
depends_on = None

_FILL = {
    "postgresql": (
        "SELECT branch_id, store_id, grain, day, json_object_agg(bucket::text, n ORDER BY bucket)"
        " FROM turnaround_buckets WHERE n <> 0 GROUP BY branch_id, store_id, grain, day"
    ),
    "sqlite": (
        "SELECT branch_id, store_id, grain, day, json_group_object(CAST(bucket AS TEXT), n)"
        " FROM (SELECT * FROM turnaround_buckets WHERE n <> 0"
        " ORDER BY branch_id, store_id, grain, day, bucket)"
        " GROUP BY branch_id, store_id, grain, day"
    ),
}


def upgrade() -> None:
    op.create_table(
        "turnaround_sketches",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            "branch_id", "store_id", "grain", "day", name=op.f("pk_turnaround_sketches")
        ),
    )
    op.execute(
        "INSERT INTO turnaround_sketches (branch_id, store_id, grain, day, counts) "
        + _FILL[op.get_bind().dialect.name]
    )
    with op.batch_alter_table("turnaround_sketches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_turnaround_sketches_branches",
            ["grain", "day", "branch_id"],
            unique=False,
            postgresql_where=sa.text("store_id = ''"),
            sqlite_where=sa.text("store_id = ''"),
        )
        batch_op.create_index(
            "ix_turnaround_sketches_stores",
            ["branch_id", "grain", "day", "store_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_turnaround_sketches_store", ["store_id", "grain", "day"], unique=False
        )


def downgrade() -> None:
    op.drop_table("turnaround_sketches")
