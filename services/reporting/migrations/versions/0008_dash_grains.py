"""coarser grains for the rollups: ISO weeks ("w"), quarters ("q") and years ("y") beside days
and months, so a period reads whole years, quarters and months and whole weeks at its edges
(domain/period.py tiles); filled from the day and month rows already there

Revision ID: 0008_dash_grains
Revises: 0007_dashboard_rollups
"""

from alembic import op

revision = "0008_dash_grains"
down_revision = "0007_dashboard_rollups"
branch_labels = None
depends_on = None

FIGURE_COUNTERS = (
    "received",
    "repeat_received",
    "ready",
    "turnaround_seconds",
    "promised",
    "on_time",
    "closed",
    "repaired",
    "first_time_fixed",
    "revenue_fen",
    "followed_up",
    "satisfaction_sum",
    "labour_claimed_fen",
    "labour_accepted_fen",
    "labour_paid_fen",
    "cancelled",
)
TECHNICIAN_COUNTERS = (
    "completed",
    "turnaround_seconds",
    "ready",
    "came_back",
    "followed_up",
    "satisfaction_sum",
)
# Each rollup table: the key columns beside grain and day, and its counters.
TABLES = {
    "order_rollups": (("branch_id", "store_id", "service_type", "brand"), FIGURE_COUNTERS),
    "turnaround_buckets": (("branch_id", "store_id", "bucket"), ("n",)),
    "technician_rollups": (("branch_id", "store_id", "technician_id"), TECHNICIAN_COUNTERS),
}
# The first day of a day's week (Monday), quarter and year, in each dialect's date functions.
STARTS = {
    "postgresql": {
        "w": "(day - (EXTRACT(ISODOW FROM day)::integer - 1))",
        "q": "CAST(date_trunc('quarter', day) AS date)",
        "y": "CAST(date_trunc('year', day) AS date)",
    },
    "sqlite": {
        "w": "date(day, '-' || ((CAST(strftime('%w', day) AS integer) + 6) % 7) || ' days')",
        "q": (
            "date(day, 'start of month', "
            "'-' || ((CAST(strftime('%m', day) AS integer) - 1) % 3) || ' months')"
        ),
        "y": "date(day, 'start of year')",
    },
}
# A week is made of days; a quarter and a year of whole months.
FROM_GRAIN = {"w": "d", "q": "m", "y": "m"}


def upgrade() -> None:
    # What domain/rollups.contributions now also writes for every order: the history before
    # this revision gets its weeks, quarters and years from the rows it has, so a period read
    # through the new grains gives the figures it gave before.
    starts = STARTS[op.get_bind().dialect.name]
    for table, (keys, counters) in TABLES.items():
        key_list = ", ".join(keys)
        names = ", ".join(counters)
        sums = ", ".join(f"SUM({name})" for name in counters)
        for grain, source in FROM_GRAIN.items():
            start = starts[grain]
            op.execute(
                f"INSERT INTO {table} ({key_list}, grain, day, {names}) "
                f"SELECT {key_list}, '{grain}', {start}, {sums} FROM {table} "
                f"WHERE grain = '{source}' GROUP BY {key_list}, {start}"
            )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DELETE FROM {table} WHERE grain IN ('w', 'q', 'y')")
