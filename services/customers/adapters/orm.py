"""The customers database: customers keyed by phone, the devices they own keyed by IMEI, the
orders each customer brought in (their service history), plus the shared outbox and inbox."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, false

from servicekit.db import new_metadata
from servicekit.inbox import inbox_table
from servicekit.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

customers = Table(
    "customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("phone", String(20), nullable=False, unique=True),
    Column("name", String(50), nullable=False),
    Column("email", String(254), nullable=True),
    Column("marketing_consent", Boolean, nullable=False, server_default=false()),
    # Service messages (SMS notices) only with the customer's consent, given at intake.
    Column("message_consent", Boolean, nullable=False, server_default=false()),
    Column("language", String(5), nullable=False, server_default="zh-CN"),
    Column("order_count", Integer, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_store_id", String(30), nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("imei", String(20), primary_key=True),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False, index=True),
    Column("brand", String(30), nullable=False),
    Column("model", String(60), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

customer_orders = Table(
    "customer_orders",
    metadata,
    # One row per work order: an order counts once for its customer however often it arrives.
    Column("order_id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False, index=True),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
