"""transfers (调拨) between warehouses: the document, its lines and each branch's approval

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
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("from_warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("to_warehouse_id", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'shipped', 'received', 'cancelled')",
            name=op.f("ck_transfers_status"),
        ),
        sa.CheckConstraint(
            "from_warehouse_id <> to_warehouse_id",
            name=op.f("ck_transfers_between_two_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["from_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_transfers_from_warehouse_id_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["to_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_transfers_to_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    op.create_index("ix_transfers_status", "transfers", ["status"])
    op.create_table(
        "transfer_lines",
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("short", sa.Integer(), nullable=False),
        sa.Column("damaged", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_transfer_lines_quantity_positive")),
        sa.CheckConstraint(
            "received >= 0 AND short >= 0 AND damaged >= 0"
            " AND received + short + damaged <= quantity",
            name=op.f("ck_transfer_lines_accounted_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_transfer_lines_transfer_id_transfers")
        ),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["parts.part_number"],
            name=op.f("fk_transfer_lines_part_number_parts"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", "part_number", name=op.f("pk_transfer_lines")),
    )
    op.create_table(
        "transfer_approvals",
        sa.Column("transfer_id", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_transfer_approvals_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", "branch_id", name=op.f("pk_transfer_approvals")),
    )


def downgrade() -> None:
    op.drop_table("transfer_approvals")
    op.drop_table("transfer_lines")
    op.drop_index("ix_transfers_status", table_name="transfers")
    op.drop_table("transfers")
