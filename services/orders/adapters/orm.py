"""The orders database: base data (brands, models, store authorisations), work orders and
their timelines, plus the shared outbox and inbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from servicekit.db import BigId, new_metadata
from servicekit.inbox import inbox_table
from servicekit.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

brands = Table(
    "brands",
    metadata,
    Column("code", String(30), primary_key=True),
    Column("name", String(100), nullable=False),
    # The manufacturer's warranty periods (三包 defaults unless it says otherwise).
    Column("return_days", Integer, nullable=False, default=7),
    Column("swap_days", Integer, nullable=False, default=15),
    Column("main_unit_months", Integer, nullable=False, default=12),
    Column("battery_months", Integer, nullable=False, default=12),
    Column("charger_months", Integer, nullable=False, default=12),
    Column("earphone_months", Integer, nullable=False, default=3),
    Column("repair_hold_days", Integer, nullable=False, default=30),
    Column("parts_wait_days", Integer, nullable=False, default=60),
    Column("swap_after_repairs", Integer, nullable=False, default=2),
)

models = Table(
    "models",
    metadata,
    Column("brand_code", String(30), ForeignKey("brands.code"), primary_key=True),
    Column("code", String(60), primary_key=True),
    Column("name", String(100), nullable=False),
)

store_authorisations = Table(
    "store_authorisations",
    metadata,
    Column("store_id", String(30), primary_key=True),
    Column("brand_code", String(30), ForeignKey("brands.code"), primary_key=True),
    Column("service_type", String(20), primary_key=True),
)
"""厂商授权: the matrix of which brands a store may serve under warranty, per service type."""

repair_orders = Table(
    "repair_orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("request_id", String(255), nullable=True, unique=True),
    # What the request_id was first used for: a retry with another request is refused.
    Column("request_hash", String(64), nullable=True),
    Column("status", String(30), nullable=False),
    Column("service_type", String(20), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("customer_name", String(50), nullable=False),
    Column("customer_phone", String(20), nullable=False),
    Column("message_consent", Boolean, nullable=False, server_default=false()),
    Column("customer_language", String(10), nullable=False, server_default="zh-CN"),
    Column("imei", String(20), nullable=False),
    Column("brand", String(30), nullable=False),
    Column("model", String(60), nullable=False),
    Column("colour", String(30), nullable=False),
    Column("purchase_date", Date, nullable=True),
    Column("fault_description", Text, nullable=False),
    Column("symptom_code", String(30), nullable=False),
    Column("accessories", Text, nullable=False),
    Column("appearance", Text, nullable=False),
    Column("promised_date", Date, nullable=True),
    Column("warranty_status", String(20), nullable=False),
    Column("warranty_entitlements", String(60), nullable=False),
    Column("warranty_reason", Text, nullable=False),
    Column("warranty_expires_on", Date, nullable=True),
    Column("send_on_required", Boolean, nullable=False),
    Column("brand_authorised", Boolean, nullable=False),
    Column("repeat_repair", Boolean, nullable=False),
    Column("repeat_of_order_id", String(36), nullable=True),
    Column("parts_wait_swap_on", Date, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(64), nullable=False),
    # Each transition adds one; a change is made only on the version it was read at.
    Column("version", Integer, nullable=False, server_default="1"),
    # What the steps after intake recorded (diagnosis, quote, approvals, routes), as JSON: read
    # and written whole with the order, never queried inside. Part lines and payments, which
    # settlement and reports read, are tables of their own (order_lines, order_payments).
    Column("work", Text, nullable=False, server_default="{}"),
    Index("ix_repair_orders_scope_received", "branch_id", "store_id", "received_at"),
    Index("ix_repair_orders_received", "received_at", "id"),
    Index("ix_repair_orders_imei", "imei"),
    Index("ix_repair_orders_customer_phone", "customer_phone"),
    Index("ix_repair_orders_status", "status"),
    # 网点间送修: the store that repairs the order, which sees it too.
    Column("partner_branch_id", String(30), nullable=True),
    Column("partner_store_id", String(30), nullable=True),
    Index("ix_repair_orders_partner", "partner_branch_id", "partner_store_id"),
    # The data key the order's OrderReceived sealed the customer's name and phone with
    # (servicekit.personal_data): an erasure names the keys it destroyed, and the orders
    # holding them lose their copy of the name and phone as well.
    Column("personal_key_id", String(32), nullable=True),
    Index("ix_repair_orders_personal_key", "personal_key_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(36), ForeignKey("repair_orders.id"), primary_key=True),
    Column("line_id", String(36), primary_key=True),
    Column("position", Integer, nullable=False),  # where it stands among the order's lines
    Column("part_id", String(60), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("warranty", Boolean, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("issued", Integer, nullable=False),
    Column("released", Boolean, nullable=False),
    Column("old_part_kept", Boolean, nullable=False),
    Column("retail_price_fen", BigInteger, nullable=False),
    Column("store_id", String(30), nullable=False),  # "" the order's store
    # A serialised part's units (串号), comma-separated: a serial has no comma.
    Column("serials", Text, nullable=False),
    Column("successor_part_id", String(60), nullable=False),
    Column("successor_available", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity"),
    CheckConstraint(
        "reserved >= 0 AND issued >= 0 AND successor_available >= 0",
        name="counts",
    ),
    CheckConstraint("retail_price_fen >= 0", name="price"),
)
"""A part the repair needs, and where it stands in the warehouse that issues it."""

order_payments = Table(
    "order_payments",
    metadata,
    Column("order_id", String(36), ForeignKey("repair_orders.id"), primary_key=True),
    Column("position", Integer, primary_key=True),  # the order's payments in the order made
    Column("method", String(20), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount_fen >= 0", name="amount"),
)
"""What the customer paid at pickup (or for a quick order, or the inspection fee)."""

order_timeline = Table(
    "order_timeline",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("order_id", String(36), ForeignKey("repair_orders.id"), nullable=False, index=True),
    Column("status", String(30), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("note", Text, nullable=False),
    Column("step", String(30), nullable=False, server_default=""),
)

order_number_counters = Table(
    "order_number_counters",
    metadata,
    Column("store_id", String(30), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("last_number", Integer, nullable=False),
)

imei_links = Table(
    "imei_links",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("old_imei", String(20), nullable=False, index=True),
    Column("new_imei", String(20), nullable=False, index=True),
    # mainboard (主板更换), factory (a unit replaced by the manufacturer) or swap (换机)
    Column("kind", String(20), nullable=False),
    Column("order_id", String(36), ForeignKey("repair_orders.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
"""A device's IMEI changes: its passport follows the links both ways."""
