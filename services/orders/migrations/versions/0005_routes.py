"""repair routes: the customer's message consent and language, send-outs, factory returns,
swaps, mainboard IMEI changes, quick orders

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
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "customer_language", sa.String(length=10), nullable=False, server_default="zh-CN"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("repair_orders", schema=None) as batch_op:
        batch_op.drop_column("customer_language")
        batch_op.drop_column("message_consent")
