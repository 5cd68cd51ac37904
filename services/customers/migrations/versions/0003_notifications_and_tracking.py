"""notifications, templates, delivery log and tracking tokens

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("language", sa.String(length=5), nullable=False, server_default="zh-CN")
        )
    op.create_table(
        "notification_templates",
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("kind", "language", name=op.f("pk_notification_templates")),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("order_number", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("template_values", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint(
            "order_id",
            "kind",
            "event_id",
            name=op.f("uq_notification_deliveries_order_id_kind_event_id"),
        ),
    )
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_deliveries_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_notification_deliveries_scope",
            ["branch_id", "store_id", "created_at"],
            unique=False,
        )
    op.create_table(
        "tracking_orders",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("service_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("promised_date", sa.String(length=10), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_tracking_orders")),
        sa.UniqueConstraint("token", name=op.f("uq_tracking_orders_token")),
    )
    op.create_table(
        "tracking_steps",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_tracking_steps")),
    )
    with op.batch_alter_table("tracking_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracking_steps_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tracking_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_steps_order_id"))
    op.drop_table("tracking_steps")
    op.drop_table("tracking_orders")
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_deliveries_scope")
        batch_op.drop_index("ix_notification_deliveries_due")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_templates")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("message_consent")
