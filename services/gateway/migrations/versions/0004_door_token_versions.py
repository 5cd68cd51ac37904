"""Token versions: a user's tokens name the version of the user they were issued for, and the
identity epoch (one row) moves with every change of a user's role, unit, password or
active flag, so every gateway replica sees such a change on its next request.

Revision ID: 0004_door_token_versions
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_door_token_versions"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    epoch = op.create_table(
        "identity_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_epoch"),
        sa.CheckConstraint("id = 1", name="ck_identity_epoch_one_row"),
    )
    op.bulk_insert(epoch, [{"id": 1, "epoch": 0}])


def downgrade() -> None:
    op.drop_table("identity_epoch")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
