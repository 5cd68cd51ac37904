"""The reporting database: read models built only from other services' events, plus the
shared outbox and inbox. Nothing here is read from another service's tables.

`order_facts` holds one row per order; the rollups hold what the facts add up to per unit
(branch_id, store_id; "" for all) and day or month, kept by adding each event's change
(domain/rollups.py). Counters default to 0, so a later figure adds a column without touching
the rows written before it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    text,
)

from servicekit.db import new_metadata
from servicekit.inbox import inbox_table
from servicekit.outbox import outbox_table
from services.reporting.domain.kpis import (
    BACKLOG_COUNTERS,
    FIGURE_COUNTERS,
    TECHNICIAN_COUNTERS,
)

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)


def _counters(names: tuple[str, ...]) -> list[Column[int]]:
    return [Column(name, BigInteger, nullable=False, server_default=text("0")) for name in names]


order_facts = Table(
    "order_facts",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("number", String(40), nullable=False, server_default=""),
    Column("branch_id", String(30), nullable=False, server_default=""),
    Column("store_id", String(30), nullable=False, server_default=""),
    Column("service_type", String(20), nullable=False, server_default=""),
    Column("brand", String(40), nullable=False, server_default=""),
    Column("warranty_status", String(30), nullable=False, server_default=""),
    Column("received_at", DateTime(timezone=True)),
    Column("promised_date", Date),
    Column("repeat_repair", Boolean, nullable=False, server_default=text("false")),
    Column("repeat_of_order_id", String(64), nullable=False, server_default=""),
    Column("repair_level", String(30), nullable=False, server_default=""),
    Column("qc_failures", Integer, nullable=False, server_default=text("0")),
    Column("paid_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("quote_total_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("status", String(30), nullable=False, server_default=""),
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("ready_at", DateTime(timezone=True)),
    # Derived (OrderFact.on_time), kept so the drill-down finds late orders without dates maths.
    Column("on_time", Boolean),
    Column("closed_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("declined_at", DateTime(timezone=True)),
    Column("waiting_parts_at", DateTime(timezone=True)),
    Column("technician_id", String(64), nullable=False, server_default=""),
    Column("technician_version", Integer, nullable=False, server_default=text("0")),
    Column("worked_at", DateTime(timezone=True)),
    Column("came_back_as", String(64), nullable=False, server_default=""),
    Column("follow_up_attempt", Integer, nullable=False, server_default=text("0")),
    Column("follow_up_state", String(20), nullable=False, server_default=""),
    Column("satisfaction", Integer, nullable=False, server_default=text("0")),
    Column("claim_id", String(64), nullable=False, server_default=""),
    Column("claim_version", Integer, nullable=False, server_default=text("0")),
    Column("claim_month", String(7), nullable=False, server_default=""),
    Column("claim_state", String(20), nullable=False, server_default=""),
    Column("claim_labour_fen", BigInteger, nullable=False, server_default=text("0")),
    # The drill-down lists a store's or a branch's orders by the time of the figure's event;
    # a store's exact percentiles read its orders by ready time.
    Index("ix_order_facts_store_received", "store_id", "received_at"),
    Index("ix_order_facts_branch_received", "branch_id", "received_at"),
    Index("ix_order_facts_store_ready", "store_id", "ready_at"),
    Index("ix_order_facts_branch_ready", "branch_id", "ready_at"),
    Index("ix_order_facts_store_closed", "store_id", "closed_at"),
    Index("ix_order_facts_branch_closed", "branch_id", "closed_at"),
    # A claim's newer version finds the lines that left it.
    Index("ix_order_facts_claim", "claim_id"),
)
"""工单事实: one row per order, everything the figures need of it (domain/facts.py)."""

order_rollups = Table(
    "order_rollups",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    # d, w, m, q, y: the day, ISO week, month, quarter or year starting on `day`
    Column("grain", String(1), primary_key=True),
    Column("day", Date, primary_key=True),  # Asia/Shanghai business day
    Column("service_type", String(20), primary_key=True),
    Column("brand", String(40), primary_key=True),
    *_counters(FIGURE_COUNTERS),
    # A store named without its branch (HQ's user): its rows over a period.
    Index("ix_order_rollups_store_grain_day", "store_id", "grain", "day"),
    # The breakdowns by unit read the units' total rows only (rollups.ALL): HQ's branches
    # (store_id "") and a branch's stores, month rows and edge days in key order.
    Index(
        "ix_order_rollups_branch_totals",
        "store_id",
        "grain",
        "day",
        "branch_id",
        postgresql_where=text("service_type = '*'"),
        sqlite_where=text("service_type = '*'"),
    ),
    Index(
        "ix_order_rollups_store_totals",
        "branch_id",
        "grain",
        "day",
        "store_id",
        postgresql_where=text("service_type = '*'"),
        sqlite_where=text("service_type = '*'"),
    ),
)
"""A unit's day or month, by service type and brand: any KPI of any scope and period sums at
most a few rows per month and edge day, however many orders there were."""

open_orders = Table(
    "open_orders",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("day", Date, primary_key=True),
    *_counters(BACKLOG_COUNTERS),
)
"""Orders open now per unit by intake day (open, swap_clock) or by the day they began waiting
for parts (waiting_parts): the backlog by age without reading an order."""

turnaround_sketches = Table(
    "turnaround_sketches",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("grain", String(1), primary_key=True),
    Column("day", Date, primary_key=True),
    # {bucket: orders} as a JSON object: one row per unit and tile, so HQ's breakdown of a
    # year reads some 500 rows instead of 80,000 (unit, bucket) rows.
    Column("counts", JSON, nullable=False),
    # HQ's branches (store_id "") over a period's tiles.
    Index(
        "ix_turnaround_sketches_branches",
        "grain",
        "day",
        "branch_id",
        postgresql_where=text("store_id = ''"),
        sqlite_where=text("store_id = ''"),
    ),
    # A branch's stores, and a store named without its branch.
    Index("ix_turnaround_sketches_stores", "branch_id", "grain", "day", "store_id"),
    Index("ix_turnaround_sketches_store", "store_id", "grain", "day"),
)
"""The turnaround sketch (domain/sketch.py) of the orders a unit had ready on a day, week,
month, quarter or year: its buckets' counts in one row."""

technician_rollups = Table(
    "technician_rollups",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("technician_id", String(64), primary_key=True),
    Column("grain", String(1), primary_key=True),
    Column("day", Date, primary_key=True),
    *_counters(TECHNICIAN_COUNTERS),
    # A branch's technicians over a period: its month rows and edge days, not its every day.
    Index("ix_technician_rollups_branch_grain_day", "branch_id", "grain", "day"),
)
"""A technician's day or month at the order's store (技师绩效)."""
