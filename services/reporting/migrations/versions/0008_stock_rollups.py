"""stock rollups: the parts side's figures kept per store, branch and the chain by day, month
and all time (stock_rollups), the consecutive issue days of orders (stock_issue_pairs) and the
waiting parts per unit (stock_waiting_rollups), filled from the rows kept so far; the store-day
table they replace is dropped

Revision ID: 0008_stock_rollups
Revises: 0008_dash_grains
"""

import itertools
from collections import defaultdict
from datetime import date

import sqlalchemy as sa
from alembic import op

from services.reporting.domain import stock

revision = "0008_stock_rollups"
down_revision = "0008_dash_grains"
branch_labels = None
depends_on = None


def _sum(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)


def upgrade() -> None:
    rollups = op.create_table(
        "stock_rollups",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(_sum(name) for name in stock.ROLLUP_SUMS),
        sa.PrimaryKeyConstraint(
            "branch_id", "store_id", "grain", "day", name=op.f("pk_stock_rollups")
        ),
    )
    with op.batch_alter_table("stock_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stock_rollups_grain_day", ["grain", "day", "branch_id", "store_id"], unique=False
        )
    pairs = op.create_table(
        "stock_issue_pairs",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("earlier_day", sa.Date(), nullable=False),
        _sum("orders"),
        sa.PrimaryKeyConstraint(
            "branch_id", "store_id", "day", "earlier_day", name=op.f("pk_stock_issue_pairs")
        ),
    )
    waiting = op.create_table(
        "stock_waiting_rollups",
        sa.Column("branch_id", sa.String(length=30), nullable=False),
        sa.Column("store_id", sa.String(length=30), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        _sum("orders"),
        _sum("quantity"),
        sa.PrimaryKeyConstraint(
            "branch_id", "store_id", "part_number", name=op.f("pk_stock_waiting_rollups")
        ),
    )
    with op.batch_alter_table("stock_order_days", schema=None) as batch_op:
        batch_op.create_index("ix_stock_order_days_order", ["order_id"], unique=False)
    _fill(rollups, pairs, waiting)
    # stock_store_days is no longer written but stays for the release before this one, which
    # still reads it while a rolling update runs (expand/contract, docs/migrations.md); a later
    # release's migration drops it.


def _fill(rollups: sa.Table, pairs: sa.Table, waiting: sa.Table) -> None:
    """The rollups of the rows kept so far: what the handlers would have added had they kept
    them from the first event (domain.stock, the same rules)."""
    bind = op.get_bind()
    sums: stock.Rollups = {}
    for day, branch, store, change, issued, returned in bind.execute(
        sa.text(
            "SELECT day, branch_id, store_id, value_change_fen, issued_cost_fen, "
            "returned_cost_fen FROM stock_store_days"
        )
    ):
        day = _day(day)
        for level in stock.levels((branch, store)):
            stock.add_rollup(
                sums,
                level,
                day,
                {
                    **stock.value_sums(day, change),
                    "issued_cost_fen": issued,
                    "returned_cost_fen": returned,
                },
            )
    issue_days: dict[str, set[tuple[tuple[str, str], date]]] = defaultdict(set)
    for day, branch, store, order_id, quantity, issued, returned in bind.execute(
        sa.text(
            "SELECT day, branch_id, store_id, order_id, issued_quantity, issued_cost_fen, "
            "returned_cost_fen FROM stock_order_days"
        )
    ):
        day = _day(day)
        for level in stock.levels((branch, store)):
            stock.add_rollup(sums, level, day, {"parts_cost_fen": issued - returned})
        if quantity > 0:
            issue_days[order_id].add(((branch, store), day))
    pair_rows: dict[tuple[str, str, date, date], int] = defaultdict(int)
    for found in issue_days.values():
        # Each level once, however many of its stores issued to the order.
        for level in {level for unit, _ in found for level in stock.levels(unit)}:
            days = sorted({d for u, d in found if stock.covers(level, u)})
            for day in days:
                stock.add_rollup(sums, level, day, {"issue_days": 1})
            for earlier, later in itertools.pairwise(days):
                pair_rows[(level[0], level[1], later, earlier)] += 1
    parts: dict[tuple[str, str], list[stock.PartDay]] = defaultdict(list)
    units: dict[tuple[str, str], tuple[str, str]] = {}
    for warehouse, part, branch, store, day, value, issued in bind.execute(
        sa.text(
            "SELECT warehouse_id, part_number, branch_id, store_id, day, value_fen, "
            "issued_quantity FROM stock_part_days ORDER BY warehouse_id, part_number, day"
        )
    ):
        parts[(warehouse, part)].append(stock.PartDay(_day(day), value, issued > 0))
        units[(warehouse, part)] = (branch, store)
    for key, days in parts.items():
        first = days[0].day
        for day, change in stock.slow_changes([], None, days, first, first).items():
            for level in stock.levels(units[key]):
                stock.add_rollup(sums, level, day, {"slow_change_fen": change})
    waiting_rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for part, branch, store, quantity in bind.execute(
        sa.text("SELECT part_number, branch_id, store_id, quantity FROM stock_waiting_parts")
    ):
        for level in stock.levels((branch, store)):
            row = waiting_rows[(*level, part)]
            row[0] += 1
            row[1] += quantity
    _insert(
        rollups,
        [
            {
                "branch_id": b,
                "store_id": s,
                "grain": grain,
                "day": day,
                **{name: row.get(name, 0) for name in stock.ROLLUP_SUMS},
            }
            for (b, s, grain, day), row in sums.items()
            if any(row.values())
        ],
    )
    _insert(
        pairs,
        [
            {"branch_id": b, "store_id": s, "day": day, "earlier_day": earlier, "orders": n}
            for (b, s, day, earlier), n in pair_rows.items()
        ],
    )
    _insert(
        waiting,
        [
            {"branch_id": b, "store_id": s, "part_number": part, "orders": n, "quantity": q}
            for (b, s, part), (n, q) in waiting_rows.items()
        ],
    )


def _day(value: date | str) -> date:
    """SQLite hands dates back as text to a plain SQL statement."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def _insert(table: sa.Table, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), 5000):
        op.bulk_insert(table, rows[start : start + 5000])


def downgrade() -> None:
    # The table the rollups replaced was kept (upgrade): filled again as they now stand.
    op.execute("DELETE FROM stock_store_days")
    op.execute(
        "INSERT INTO stock_store_days (day, branch_id, store_id, value_change_fen, "
        "issued_cost_fen, returned_cost_fen) SELECT day, branch_id, store_id, "
        "value_change_fen, issued_cost_fen, returned_cost_fen FROM stock_rollups "
        "WHERE grain = 'd' AND branch_id <> '*' AND store_id <> '*'"
    )
    with op.batch_alter_table("stock_order_days", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_order_days_order")
    op.drop_table("stock_waiting_rollups")
    op.drop_table("stock_issue_pairs")
    with op.batch_alter_table("stock_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_rollups_grain_day")
    op.drop_table("stock_rollups")
