"""outbox: a relay leases the rows it publishes instead of locking them across the network

Revision ID: 0013_outbox_leases
Revises: 0012_order_lines_tables
"""

from alembic import op

from servicekit.migrations import add_outbox_leases, drop_outbox_leases

revision = "0013_outbox_leases"
down_revision = "0012_order_lines_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_leases(op)


def downgrade() -> None:
    drop_outbox_leases(op)
