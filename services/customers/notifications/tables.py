"""The notification and tracking tables of the customers database: templates HQ changed,
the delivery log (one row per notice an order event brought), and the tracking read model
(the order's progress from order events, with the link's token; no personal data)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.customers.adapters.orm import metadata

notification_templates = Table(
    "notification_templates",
    metadata,
    # Only the texts HQ changed: a kind and language without a row uses the built-in text.
    Column("kind", String(30), primary_key=True),
    Column("language", String(5), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("order_number", String(40), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    # What the template is filled with (JSON): no personal data, the phone is looked up when
    # sending, so consent withdrawn or a customer erased in between is respected.
    Column("template_values", Text, nullable=False),
    Column("customer_id", String(36), nullable=True),
    Column("language", String(5), nullable=True),
    Column("provider", String(20), nullable=True),
    Column("text", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A queued notice is due at this time; a sender claims it by moving it on (a lease).
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # One notice per event, whatever redelivers it.
    UniqueConstraint("order_id", "kind", "event_id"),
    Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
    Index("ix_notification_deliveries_scope", "branch_id", "store_id", "created_at"),
)

tracking_orders = Table(
    "tracking_orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("number", String(40), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("service_type", String(20), nullable=False),
    Column("status", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("promised_date", String(10), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

tracking_steps = Table(
    "tracking_steps",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("status", String(30), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
