"""settlement (劳务费结算): claims per manufacturer, branch and month, their lines and parts,
payments received, and the old parts returned per order line

Revision ID: 0011_settlement
Revises: 0010_consumers_failures
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_settlement"
down_revision = "0010_consumers_failures"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settlement_claims",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("manufacturer", sa.String(30), nullable=False),
        sa.Column("branch_id", sa.String(30), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("built_by", sa.String(64), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_fingerprint", sa.String(64), nullable=False, server_default=""),
        sa.UniqueConstraint(
            "manufacturer", "branch_id", "month", name="uq_settlement_claims_month"
        ),
    )
    op.create_index(
        "ix_settlement_claims_branch_month", "settlement_claims", ["branch_id", "month"]
    )
    op.create_table(
        "settlement_claim_lines",
        sa.Column("order_id", sa.String(36), sa.ForeignKey("repair_orders.id"), primary_key=True),
        sa.Column("claim_id", sa.String(36), sa.ForeignKey("settlement_claims.id"), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("store_id", sa.String(30), nullable=False),
        sa.Column("repair_level", sa.String(10), nullable=False),
        sa.Column("labour_fen", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_parts_owed", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False, server_default=""),
        sa.Column("reason_code", sa.String(30), nullable=False, server_default=""),
        sa.Column("accepted_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("paid", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_settlement_claim_lines_claim",
        "settlement_claim_lines",
        ["claim_id", "closed_at"],
    )
    op.create_table(
        "settlement_claim_parts",
        sa.Column(
            "order_id",
            sa.String(36),
            sa.ForeignKey("settlement_claim_lines.order_id"),
            primary_key=True,
        ),
        sa.Column("line_id", sa.String(36), primary_key=True),
        sa.Column("part_id", sa.String(60), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_fen", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "settlement_payments",
        sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("claim_id", sa.String(36), sa.ForeignKey("settlement_claims.id"), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=True, unique=True),
    )
    op.create_index("ix_settlement_payments_claim_id", "settlement_payments", ["claim_id"])
    op.create_table(
        "settlement_old_parts",
        sa.Column("order_id", sa.String(36), primary_key=True),
        sa.Column("line_id", sa.String(36), primary_key=True),
        sa.Column("returned", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settlement_old_parts")
    op.drop_index("ix_settlement_payments_claim_id", table_name="settlement_payments")
    op.drop_table("settlement_payments")
    op.drop_table("settlement_claim_parts")
    op.drop_index("ix_settlement_claim_lines_claim", table_name="settlement_claim_lines")
    op.drop_table("settlement_claim_lines")
    op.drop_index("ix_settlement_claims_branch_month", table_name="settlement_claims")
    op.drop_table("settlement_claims")
