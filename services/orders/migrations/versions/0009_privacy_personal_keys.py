"""each order names the data key its customer's name and phone were sealed with, so an erasure
clears them (crypto-shredding)

Revision ID: 0009_privacy_personal_keys
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_privacy_personal_keys"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("personal_key_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_repair_orders_personal_key", ["personal_key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_repair_orders_personal_key")
        batch_op.drop_column("personal_key_id")
