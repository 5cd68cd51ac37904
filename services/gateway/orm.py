"""The gateway's own tables: the org tree, users, remembered Idempotency-Key responses, and
failed sign-ins."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)

from servicekit.db import BigId, new_metadata

metadata = new_metadata()

org_units = Table(
    "org_units",
    metadata,
    Column("id", String(32), primary_key=True),  # a code: "HQ", "SH", "SH-001"
    Column("kind", String(16), nullable=False),
    Column("parent_id", String(32), ForeignKey("org_units.id"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("franchised", Boolean, nullable=False, default=False),
    CheckConstraint("kind IN ('hq', 'branch', 'store')", name="kind"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("org_unit_id", String(32), ForeignKey("org_units.id"), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    # Raised by every change of role, unit, password or active flag: tokens issued for an
    # older version are refused (services/gateway/identities.py).
    Column("token_version", Integer, nullable=False, default=0, server_default=text("0")),
)

identity_epoch = Table(
    "identity_epoch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    # Moves with every user's token_version, in the same transaction: one row every replica
    # reads per request (batched) to know whether any identity changed since it last looked.
    Column("epoch", Integer, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # The primary key is what makes two concurrent first requests with one key safe.
    Column("user_id", String(36), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("method", String(10), nullable=False),
    Column("path", String(500), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    # Who holds an in-flight entry, so a request that was taken over cannot finish it.
    Column("lease", String(32), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_headers", Text, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    CheckConstraint("state IN ('in_flight', 'done')", name="state"),
)

login_failures = Table(
    "login_failures",
    metadata,
    # sha256 of "pair:<ip>\n<name>", "address:<ip>" or "username:<name>": a mistyped password
    # in the username field is not kept in the clear, and any length fits.
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
)

admin_changes = Table(
    "admin_changes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("what", String(16), nullable=False),  # org_unit | user | password
    Column("key", String(64), nullable=False),  # the unit's id or the username
    Column("value", Text, nullable=False),  # what it now is, JSON (never a password)
)
"""The audit of the org tree and user administration: who changed what, when, to what."""
