"""settlement: a month's repairs closed after its claim was submitted go into a supplementary
claim (补充索赔) of the same month, numbered from 1; the first claim is number 0

Revision ID: 0014_api_claim_supplements
Revises: 0013_outbox_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_api_claim_supplements"
down_revision = "0013_outbox_leases"
branch_labels = None
depends_on = None

MONTH = ["manufacturer", "branch_id", "month"]


def upgrade() -> None:
    with op.batch_alter_table("settlement_claims") as batch:
        batch.add_column(sa.Column("supplement", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_settlement_claims_month", type_="unique")
        batch.create_unique_constraint("uq_settlement_claims_month", [*MONTH, "supplement"])


SUPPLEMENTS = "SELECT id FROM settlement_claims WHERE supplement > 0"


def downgrade() -> None:
    # Without the number a month has one claim: the supplementary ones go, and their repairs
    # are unclaimed again.
    lines = f"SELECT order_id FROM settlement_claim_lines WHERE claim_id IN ({SUPPLEMENTS})"
    op.execute(f"DELETE FROM settlement_claim_parts WHERE order_id IN ({lines})")
    op.execute(f"DELETE FROM settlement_claim_lines WHERE claim_id IN ({SUPPLEMENTS})")
    op.execute(f"DELETE FROM settlement_payments WHERE claim_id IN ({SUPPLEMENTS})")
    op.execute("DELETE FROM settlement_claims WHERE supplement > 0")
    with op.batch_alter_table("settlement_claims") as batch:
        batch.drop_constraint("uq_settlement_claims_month", type_="unique")
        batch.create_unique_constraint("uq_settlement_claims_month", MONTH)
        batch.drop_column("supplement")
