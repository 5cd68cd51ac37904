"""each order of a customer names the data key its name and phone were sealed with, so erasure
destroys them all (crypto-shredding)

Revision ID: 0005_privacy_personal_keys
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_privacy_personal_keys"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("personal_key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_orders", schema=None) as batch_op:
        batch_op.drop_column("personal_key_id")
