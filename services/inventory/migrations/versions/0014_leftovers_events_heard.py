"""how far each stream's events have flowed into inventory (the creation time of the newest
one handled): an unconfirmed attempt's hold is let go only past that, never on a stalled
stream

Revision ID: 0014_leftovers_events_heard
Revises: 0013_parts_hold_attempts
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_leftovers_events_heard"
down_revision = "0013_parts_hold_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_heard",
        sa.Column("stream", sa.String(length=30), nullable=False),
        sa.Column("heard_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_events_heard")),
    )


def downgrade() -> None:
    op.drop_table("events_heard")
