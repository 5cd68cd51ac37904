"""consumers: failed attempts counted per consumer and event, not per delivery

Revision ID: 0012_consumers_failures
Revises: 0011_money_stock_value
"""

from alembic import op

from servicekit.migrations import add_consumer_failures, drop_consumer_failures

revision = "0012_consumers_failures"
down_revision = "0011_money_stock_value"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_consumer_failures(op)


def downgrade() -> None:
    drop_consumer_failures(op)
