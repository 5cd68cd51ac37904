"""The customers database: customers keyed by phone, the devices they own keyed by IMEI, the
orders each customer brought in and where each order stands (their service history), follow-up
calls (回访) and complaints (投诉), consents given and personal-data requests audited, plus the
shared outbox and inbox."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

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
    # Bumped by every edit, merge or erasure (If-Match); orders counted do not bump it.
    Column("version", Integer, nullable=False, server_default="1"),
    # A record merged into another keeps its phone so a later intake finds the kept one.
    Column("merged_into", String(36), nullable=True),
    Column("erased_at", DateTime(timezone=True), nullable=True),
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
    Column("number", String(40), nullable=True),
    Column("imei", String(20), nullable=True),
    Column("service_type", String(20), nullable=True),
    # The data key its OrderReceived sealed the name and phone with: erasure destroys the keys
    # of all the customer's orders (servicekit.personal_data).
    Column("personal_key_id", String(32), nullable=True),
)

order_states = Table(
    "order_states",
    metadata,
    # Where each order stands, from its status events: kept apart from customer_orders because
    # a status event may be handled before the order's OrderReceived.
    Column("order_id", String(36), primary_key=True),
    Column("number", String(40), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("status", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("paid_fen", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
)

follow_ups = Table(
    "follow_ups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("number", String(40), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("picked_up_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False),
    Column("assigned_to", String(64), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("score", Integer, nullable=True),
    Column("comments", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_follow_ups_branch_store_state", "branch_id", "store_id", "state"),
    Index("ix_follow_ups_state_due_at", "state", "due_at"),
)

follow_up_attempts = Table(
    "follow_up_attempts",
    metadata,
    Column("follow_up_id", String(36), ForeignKey("follow_ups.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("reached", Boolean, nullable=False),
    Column("score", Integer, nullable=True),
    Column("comments", Text, nullable=True),
    Column("agent_id", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("follow_up_id", String(36), ForeignKey("follow_ups.id"), nullable=False, unique=True),
    Column("order_id", String(36), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("score", Integer, nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("outcome", Text, nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("closed_by", String(64), nullable=True),
    Index("ix_complaints_branch_state", "branch_id", "state"),
)

complaint_notes = Table(
    "complaint_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("complaint_id", String(36), ForeignKey("complaints.id"), nullable=False, index=True),
    Column("author_id", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

consent_changes = Table(
    "consent_changes",
    metadata,
    # Every consent given or withdrawn, and how: proof of the basis for each message (PIPL).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(36), ForeignKey("customers.id"), nullable=False, index=True),
    Column("message_consent", Boolean, nullable=False),
    Column("source", String(20), nullable=False),  # intake | edit
    Column("order_id", String(36), nullable=True),
    Column("actor_user_id", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

privacy_audit = Table(
    "privacy_audit",
    metadata,
    # Who read out, erased or merged whose personal data, when and why.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(36), nullable=False, index=True),
    Column("action", String(20), nullable=False),  # export | erasure | merge
    Column("actor_user_id", String(64), nullable=False),
    Column("actor_role", String(30), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
)
