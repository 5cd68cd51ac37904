"""stock value: each level keeps what its on-hand is worth, each ledger line and transfer line
exactly what it moved, so the average is derived and no fen is lost to rounding

Rows written before this are valued as they were shown: a level at on-hand × average, a
ledger or transfer line at quantity × unit cost. The fen that flooring the average had already
dropped are not recovered; from here on, value in = value out + value held, exactly.

Revision ID: 0011_money_stock_value
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_money_stock_value"
down_revision = "0010"
branch_labels = None
depends_on = None

# table, and the value of its existing rows
FILLED = (
    ("stock_levels", "on_hand * average_cost_fen"),
    ("stock_movements", "quantity * unit_cost_fen"),
    ("transfer_lines", "quantity * unit_cost_fen"),
)


def upgrade() -> None:
    for table, value in FILLED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("value_fen", sa.BigInteger(), nullable=True))
        op.execute(f"UPDATE {table} SET value_fen = {value}")
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("value_fen", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table("stock_levels") as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_stock_levels_value_not_negative"), "value_fen >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_levels") as batch_op:
        batch_op.drop_constraint(op.f("ck_stock_levels_value_not_negative"), type_="check")
    for table, _ in reversed(FILLED):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("value_fen")
