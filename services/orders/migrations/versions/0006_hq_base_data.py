"""HQ base data: fault codes, labour prices, warranty policies, approval thresholds

The authorisation matrix gains the service type: a brand a store was authorised for stays
authorised for every service type. Every change moves base_data_version on.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SERVICE_TYPES = ("repair", "swap", "accessory", "software")
POLICY_DEFAULTS = {"repair_hold_days": "30", "parts_wait_days": "60", "swap_after_repairs": "2"}


def upgrade() -> None:
    with op.batch_alter_table("brands", schema=None) as batch_op:
        for name, default in POLICY_DEFAULTS.items():
            batch_op.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=default)
            )

    with op.batch_alter_table("store_authorisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("service_type", sa.String(length=20), nullable=False, server_default="repair")
        )
        batch_op.drop_constraint("pk_store_authorisations", type_="primary")
        batch_op.create_primary_key(
            "pk_store_authorisations", ["store_id", "brand_code", "service_type"]
        )
    for service_type in SERVICE_TYPES[1:]:
        op.execute(
            "INSERT INTO store_authorisations (store_id, brand_code, service_type) "
            f"SELECT store_id, brand_code, '{service_type}' FROM store_authorisations "
            "WHERE service_type = 'repair'"
        )

    op.create_table(
        "fault_codes",
        sa.Column("brand_code", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("description_zh", sa.String(length=200), nullable=False),
        sa.Column("description_en", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_code"], ["brands.code"], name=op.f("fk_fault_codes_brand_code_brands")
        ),
        sa.PrimaryKeyConstraint("brand_code", "kind", "code", name=op.f("pk_fault_codes")),
    )
    op.create_table(
        "labour_prices",
        sa.Column("brand_code", sa.String(length=30), nullable=False),
        sa.Column("repair_level", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_code"], ["brands.code"], name=op.f("fk_labour_prices_brand_code_brands")
        ),
        sa.PrimaryKeyConstraint("brand_code", "repair_level", name=op.f("pk_labour_prices")),
    )
    op.create_table(
        "approval_thresholds",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("branch_id", name=op.f("pk_approval_thresholds")),
    )
    version = op.create_table(
        "base_data_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_data_version")),
    )
    op.bulk_insert(version, [{"id": 1, "version": 1}])
    op.create_table(
        "base_data_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("what", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_base_data_changes")),
    )


def downgrade() -> None:
    op.drop_table("base_data_changes")
    op.drop_table("base_data_version")
    op.drop_table("approval_thresholds")
    op.drop_table("labour_prices")
    op.drop_table("fault_codes")
    op.execute("DELETE FROM store_authorisations WHERE service_type <> 'repair'")
    with op.batch_alter_table("store_authorisations", schema=None) as batch_op:
        batch_op.drop_constraint("pk_store_authorisations", type_="primary")
        batch_op.create_primary_key("pk_store_authorisations", ["store_id", "brand_code"])
        batch_op.drop_column("service_type")
    with op.batch_alter_table("brands", schema=None) as batch_op:
        for name in reversed(POLICY_DEFAULTS):
            batch_op.drop_column(name)
