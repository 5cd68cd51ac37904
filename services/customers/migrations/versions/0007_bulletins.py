"""bulletins to staff (内部通知 / 技术公告 / 培训), the stores of a stores scope, and read receipts

Revision ID: 0007_bulletins
Revises: 0006_consumers_failures
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_bulletins"
down_revision = "0006_consumers_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulletins",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("publisher_id", sa.String(length=64), nullable=False),
        sa.Column("publisher_branch_id", sa.String(length=30), nullable=True),
        sa.Column("scope_kind", sa.String(length=10), nullable=False),
        sa.Column("scope_branch_id", sa.String(length=30), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletins")),
        sa.UniqueConstraint("request_id", name=op.f("uq_bulletins_request_id")),
    )
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.create_index("ix_bulletins_published", ["published_at", "id"], unique=False)
        batch_op.create_index("ix_bulletins_scope", ["scope_kind", "scope_branch_id"], unique=False)

    op.create_table(
        "bulletin_reads",
        sa.Column("bulletin_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulletin_id"], ["bulletins.id"], name=op.f("fk_bulletin_reads_bulletin_id_bulletins")
        ),
        sa.PrimaryKeyConstraint("bulletin_id", "user_id", name=op.f("pk_bulletin_reads")),
    )
    with op.batch_alter_table("bulletin_reads", schema=None) as batch_op:
        batch_op.create_index("ix_bulletin_reads_user", ["user_id", "bulletin_id"], unique=False)

    op.create_table(
        "bulletin_stores",
        sa.Column("bulletin_id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulletin_id"], ["bulletins.id"], name=op.f("fk_bulletin_stores_bulletin_id_bulletins")
        ),
        sa.PrimaryKeyConstraint("bulletin_id", "store_id", name=op.f("pk_bulletin_stores")),
    )
    with op.batch_alter_table("bulletin_stores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bulletin_stores_branch", ["branch_id", "bulletin_id"], unique=False
        )
        batch_op.create_index("ix_bulletin_stores_store", ["store_id", "bulletin_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulletin_stores", schema=None) as batch_op:
        batch_op.drop_index("ix_bulletin_stores_store")
        batch_op.drop_index("ix_bulletin_stores_branch")

    op.drop_table("bulletin_stores")
    with op.batch_alter_table("bulletin_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_bulletin_reads_user")

    op.drop_table("bulletin_reads")
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.drop_index("ix_bulletins_scope")
        batch_op.drop_index("ix_bulletins_published")

    op.drop_table("bulletins")
