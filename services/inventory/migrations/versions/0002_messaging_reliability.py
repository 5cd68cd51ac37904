"""messaging reliability: outbox rows parked after failed publishes, inbox pruned by age

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from servicekit.migrations import add_messaging_reliability, drop_messaging_reliability

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_messaging_reliability(op)


def downgrade() -> None:
    drop_messaging_reliability(op)
