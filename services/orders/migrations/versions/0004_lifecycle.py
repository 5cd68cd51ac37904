"""repair orders move through their lifecycle: a version per order, the work recorded by the
steps after intake, the step of each timeline entry

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("work", sa.Text(), nullable=False, server_default="{}"))
        batch_op.create_index("ix_repair_orders_status", ["status"])
    with op.batch_alter_table("order_timeline", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("step", sa.String(length=30), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("order_timeline", schema=None) as batch_op:
        batch_op.drop_column("step")
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_repair_orders_status")
        batch_op.drop_column("work")
        batch_op.drop_column("version")
