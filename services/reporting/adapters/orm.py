"""The reporting database: read models built only from other services' events, plus the
shared outbox and inbox. Nothing here is read from another service's tables."""

from __future__ import annotations

from sqlalchemy import Column, Date, Index, Integer, String, Table, text

from servicekit.db import new_metadata
from servicekit.inbox import inbox_table
from servicekit.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

daily_store_counts = Table(
    "daily_store_counts",
    metadata,
    Column("day", Date, primary_key=True),  # Asia/Shanghai business day
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("service_type", String(20), primary_key=True),
    # Later KPIs (closed, on time, repeat repairs...) add counter columns defaulting to 0, so
    # rows written before them stay valid.
    Column("orders_received", Integer, nullable=False, server_default=text("0")),
    # The primary key leads with day (HQ over a period); these serve a branch or a store.
    Index("ix_daily_store_counts_branch_day", "branch_id", "day"),
    Index("ix_daily_store_counts_store_day", "store_id", "day"),
)
"""One row per store, business day and service type: a KPI over any scope and period is a SUM
over at most a few rows per store and day, however many orders there were."""
