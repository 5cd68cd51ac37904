"""lists: indexes for the console's newest-first lists of transfers and purchase orders

Revision ID: 0016_lists_indexes
Revises: 0015_outbox_leases
"""

from alembic import op

revision = "0016_lists_indexes"
down_revision = "0015_outbox_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A warehouse's transfers are those it sends or receives: one index for each side.
    op.create_index(
        "ix_transfers_from_requested", "transfers", ["from_warehouse_id", "requested_at"]
    )
    op.create_index("ix_transfers_to_requested", "transfers", ["to_warehouse_id", "requested_at"])
    op.create_index(
        "ix_purchase_orders_warehouse_created", "purchase_orders", ["warehouse_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_purchase_orders_warehouse_created", table_name="purchase_orders")
    op.drop_index("ix_transfers_to_requested", table_name="transfers")
    op.drop_index("ix_transfers_from_requested", table_name="transfers")
