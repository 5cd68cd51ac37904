"""handled requests: a retried keyed request finds what its first try booked

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handled_requests",
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result_id", sa.String(length=100), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "method", name=op.f("pk_handled_requests")),
    )
    op.create_index(
        "ix_handled_requests_handled_at", "handled_requests", ["handled_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_handled_requests_handled_at", table_name="handled_requests")
    op.drop_table("handled_requests")
