"""an in-warranty repair keeps the day it is owed a swap if still waiting for parts (三包)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parts_wait_swap_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.drop_column("parts_wait_swap_on")
