"""The inventory database: the parts catalog, warehouses, stock levels and the stock ledger,
plus the shared outbox and inbox.

On-hand is kept twice on purpose: `stock_levels` answers "how many here now" in one row, and
`stock_movements` (the ledger) says why. Both change in the same transaction, so the ledger
summed per (warehouse, part) always equals on-hand.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    false,
    text,
)

from servicekit.db import BigId, new_metadata
from servicekit.idempotency import handled_requests_table
from servicekit.inbox import inbox_table
from servicekit.outbox import outbox_table
from services.inventory.domain.order_parts import LINE_STATUSES
from services.inventory.domain.purchasing import PO_STATUSES
from services.inventory.domain.serials import SERIAL_STATES
from services.inventory.domain.stock import INBOUND_KINDS, MOVEMENT_KINDS, OUTBOUND_KINDS
from services.inventory.domain.stocktake import STOCKTAKE_STATUSES
from services.inventory.domain.transfer import TRANSFER_STATUSES
from services.inventory.domain.warehouse import WAREHOUSE_KINDS

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
handled_requests = handled_requests_table(metadata)


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


parts = Table(
    "parts",
    metadata,
    Column("part_number", String(40), primary_key=True),
    Column("brand", String(30), nullable=False),
    Column("description", String(200), nullable=False),
    Column("category", String(30), nullable=False),
    Column("serialised", Boolean, nullable=False),
    Column("standard_cost_fen", BigInteger, nullable=False),
    Column("retail_price_fen", BigInteger, nullable=False),
    Column("superseded_by", String(40), ForeignKey("parts.part_number"), nullable=True),
    CheckConstraint("standard_cost_fen >= 0", name="standard_cost_not_negative"),
    CheckConstraint("retail_price_fen >= 0", name="retail_price_not_negative"),
    Index("ix_parts_brand_category", "brand", "category"),
)
"""料号: the catalog HQ keeps."""

part_models = Table(
    "part_models",
    metadata,
    Column("part_number", String(40), ForeignKey("parts.part_number"), primary_key=True),
    Column("model_code", String(60), primary_key=True),
    Index("ix_part_models_model_code", "model_code"),
)
"""Which phone models a part fits."""

warehouses = Table(
    "warehouses",
    metadata,
    Column("id", String(30), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=True, unique=True),
    # A franchised store (加盟网点) holds parts within a quota its branch sets.
    Column("franchised", Boolean, nullable=False, server_default=false()),
    CheckConstraint(f"kind IN ({_sql_list(WAREHOUSE_KINDS)})", name="kind"),
    # A store warehouse belongs to a store; a branch's central one to no store.
    CheckConstraint(
        "(kind = 'store' AND store_id IS NOT NULL)"
        " OR (kind = 'branch_central' AND store_id IS NULL)",
        name="store_matches_kind",
    ),
    Index("ix_warehouses_branch_store", "branch_id", "store_id"),
    Index(
        "uq_warehouses_one_central_per_branch",
        "branch_id",
        unique=True,
        sqlite_where=text("kind = 'branch_central'"),
        postgresql_where=text("kind = 'branch_central'"),
    ),
)
"""库房: one per store, one central per branch."""

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("average_cost_fen", BigInteger, nullable=False),
    # What the on-hand is worth in total: the average is derived from it, so no fen is lost.
    Column("value_fen", BigInteger, nullable=False),
    # The last line of defence for "stock is never negative": a bug upstream fails the
    # transaction instead of storing an impossible level.
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    CheckConstraint("average_cost_fen >= 0", name="average_cost_not_negative"),
    CheckConstraint("value_fen >= 0", name="value_not_negative"),
    Index("ix_stock_levels_part_number", "part_number"),
)
"""On-hand, reserved and moving-average cost of one part in one warehouse."""

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("part_number", String(40), ForeignKey("parts.part_number"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_cost_fen", BigInteger, nullable=False),
    # Exactly what the line moved, signed like the quantity.
    Column("value_fen", BigInteger, nullable=False),
    # Serialised parts (mainboards, swap units) move one serial a line.
    Column("serial_number", String(60), nullable=True),
    # The business document behind it: a receipt note, an order, an adjustment, a transfer.
    Column("document_type", String(30), nullable=False),
    Column("document_id", String(100), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(64), nullable=False),
    CheckConstraint(f"kind IN ({_sql_list(MOVEMENT_KINDS)})", name="kind"),
    CheckConstraint(
        f"(kind IN ({_sql_list(INBOUND_KINDS)}) AND quantity > 0)"
        f" OR (kind IN ({_sql_list(OUTBOUND_KINDS)}) AND quantity < 0)"
        " OR (kind = 'adjustment' AND quantity <> 0)",
        name="quantity_sign_matches_kind",
    ),
    CheckConstraint("serial_number IS NULL OR quantity IN (1, -1)", name="one_unit_per_serial"),
    CheckConstraint("unit_cost_fen >= 0", name="unit_cost_not_negative"),
    Index("ix_stock_movements_warehouse_part", "warehouse_id", "part_number", "id"),
    Index("ix_stock_movements_occurred_at", "occurred_at"),
    Index("ix_stock_movements_document", "document_type", "document_id"),
    Index("ix_stock_movements_serial_number", "serial_number"),
)
"""库存台账: every movement, signed (+ in, - out), with the unit cost it was valued at."""

order_part_lines = Table(
    "order_part_lines",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("part_number", String(40), ForeignKey("parts.part_number"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("warranty", Boolean, nullable=False),
    Column("retail_price_fen", BigInteger, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("short", Integer, nullable=False),
    Column("issued", Integer, nullable=False),
    Column("returned", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("unit_cost_fen", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=True),
    # Old parts sent back for the line (旧件返还). Kept within issued - returned by the domain:
    # SQLite cannot add a CHECK to a table without rebuilding it.
    Column("old_returned", Integer, nullable=False, server_default="0"),
    CheckConstraint(f"status IN ({_sql_list(LINE_STATUSES)})", name="status"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint(
        "reserved >= 0 AND short >= 0 AND reserved + short <= quantity",
        name="held_within_quantity",
    ),
    CheckConstraint(
        "issued >= 0 AND returned >= 0 AND returned <= issued", name="returned_within_issued"
    ),
    Index("ix_order_part_lines_warehouse_part", "warehouse_id", "part_number"),
)
"""工单用料: what each order line holds, took and gave back, keyed by (order, line)."""

order_part_claims = Table(
    "order_part_claims",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("attempt_id", String(64), primary_key=True),
    Column("order_root", String(64), nullable=False),
    Column("order_version", Integer, nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("committed", Boolean, nullable=False),
    ForeignKeyConstraint(
        ["order_id", "line_id"], ["order_part_lines.order_id", "order_part_lines.line_id"]
    ),
    Index("ix_order_part_claims_order_root", "order_root", "order_version"),
    Index("ix_order_part_claims_pending", "committed", "claimed_at"),
)
"""Which attempts of an order's steps claim each line's hold or issue: a line is let go when
its last claim is (an undo, an attempt never written); the order's standing holds are claimed
by the empty attempt, committed."""

order_states = Table(
    "order_states",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(30), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""Each order's newest version and status as its events told inventory."""

events_heard = Table(
    "events_heard",
    metadata,
    Column("stream", String(30), primary_key=True),
    Column("heard_until", DateTime(timezone=True), nullable=False),
    Column("noted_at", DateTime(timezone=True), nullable=False),
    Column("settled_until", DateTime(timezone=True), nullable=True),
)
"""When the newest event inventory has handled from each stream was created (its meta's
occurred_at), and when that was noted: how far the stream has flowed, on its own clock; and
an earlier such mark that had stood for the settle time (domain/holds.py HeardUntil)."""

transfers = Table(
    "transfers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("from_warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("to_warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("note", String(500), nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("shipped_at", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=True),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(f"status IN ({_sql_list(TRANSFER_STATUSES)})", name="status"),
    CheckConstraint("from_warehouse_id <> to_warehouse_id", name="between_two_warehouses"),
    Index("ix_transfers_status", "status"),
    Index("ix_transfers_from_requested", "from_warehouse_id", "requested_at"),
    Index("ix_transfers_to_requested", "to_warehouse_id", "requested_at"),
)
"""调拨单: stock moving from one warehouse to another."""

transfer_lines = Table(
    "transfer_lines",
    metadata,
    Column("transfer_id", String(40), ForeignKey("transfers.id"), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_cost_fen", BigInteger, nullable=False),
    # Exactly what the shipped units took from the sender: in transit until received.
    Column("value_fen", BigInteger, nullable=False),
    Column("received", Integer, nullable=False),
    Column("short", Integer, nullable=False),
    Column("damaged", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint(
        "received >= 0 AND short >= 0 AND damaged >= 0 AND received + short + damaged <= quantity",
        name="accounted_within_quantity",
    ),
)
"""The parts of a transfer, the cost they left at and how they arrived."""

transfer_approvals = Table(
    "transfer_approvals",
    metadata,
    Column("transfer_id", String(40), ForeignKey("transfers.id"), primary_key=True),
    Column("branch_id", String(30), primary_key=True),
    Column("approved_by", String(64), nullable=False),
    Column("approved_at", DateTime(timezone=True), nullable=False),
)
"""Each branch's approval of a transfer (审批), and who gave it."""

quotas = Table(
    "quotas",
    metadata,
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), primary_key=True),
    Column("quota_fen", BigInteger, nullable=False),
    Column("set_by", String(64), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("quota_fen >= 0", name="quota_not_negative"),
)
"""额度: the franchise quota of a franchised store's warehouse."""

old_part_batches = Table(
    "old_part_batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("document_id", String(100), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_old_part_batches_warehouse", "warehouse_id", "created_at"),
)
"""旧件返还单: old parts sent back to the manufacturer together."""

old_part_batch_lines = Table(
    "old_part_batch_lines",
    metadata,
    Column("batch_id", String(40), ForeignKey("old_part_batches.id"), primary_key=True),
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    ForeignKeyConstraint(
        ["order_id", "line_id"], ["order_part_lines.order_id", "order_part_lines.line_id"]
    ),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
"""Which order line each old part of a batch settles."""

stocktakes = Table(
    "stocktakes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("counted_by", String(64), nullable=False),
    Column("counted_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    CheckConstraint(f"status IN ({_sql_list(STOCKTAKE_STATUSES)})", name="status"),
    Index("ix_stocktakes_warehouse", "warehouse_id", "counted_at"),
)
"""盘点单: a warehouse counted against its book."""

stocktake_lines = Table(
    "stocktake_lines",
    metadata,
    Column("stocktake_id", String(40), ForeignKey("stocktakes.id"), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), primary_key=True),
    Column("book", Integer, nullable=False),
    Column("counted", Integer, nullable=False),
    Column("unit_cost_fen", BigInteger, nullable=False),
    CheckConstraint("book >= 0 AND counted >= 0", name="quantities_not_negative"),
)
"""Each part counted: the book when counted, the count, the average cost then."""

reorder_levels = Table(
    "reorder_levels",
    metadata,
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), primary_key=True),
    Column("min_level", Integer, nullable=False),
    Column("max_level", Integer, nullable=False),
    Column("lead_time_days", Integer, nullable=False),
    CheckConstraint("0 <= min_level AND min_level <= max_level", name="levels_in_order"),
    CheckConstraint("lead_time_days >= 0", name="lead_time_not_negative"),
)
"""What a warehouse keeps of a part (最低/最高库存) and the supplier's lead time."""

purchase_orders = Table(
    "purchase_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=False),
    Column("supplier", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"status IN ({_sql_list(PO_STATUSES)})", name="status"),
    Index("ix_purchase_orders_warehouse_status", "warehouse_id", "status"),
    Index("ix_purchase_orders_warehouse_created", "warehouse_id", "created_at"),
)
"""采购单."""

purchase_order_lines = Table(
    "purchase_order_lines",
    metadata,
    Column("purchase_order_id", String(40), ForeignKey("purchase_orders.id"), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_cost_fen", BigInteger, nullable=False),
    Column("received", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("unit_cost_fen >= 0", name="unit_cost_not_negative"),
    CheckConstraint("received >= 0 AND received <= quantity", name="received_within_quantity"),
)


serial_items = Table(
    "serial_items",
    metadata,
    Column("serial_number", String(60), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), nullable=False),
    Column("state", String(30), nullable=False),
    Column("warehouse_id", String(30), ForeignKey("warehouses.id"), nullable=True),
    Column("transfer_id", String(40), ForeignKey("transfers.id"), nullable=True),
    Column("order_id", String(64), nullable=True),
    Column("line_id", String(64), nullable=True),
    Column("unit_cost_fen", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"state IN ({_sql_list(SERIAL_STATES)})", name="state"),
    # Exactly one place: a warehouse when in stock, a transfer when in transit, an order line
    # when consumed, none once gone. Held for an order line only while in stock.
    CheckConstraint(
        "(state = 'in_stock' AND warehouse_id IS NOT NULL AND transfer_id IS NULL)"
        " OR (state = 'in_transit' AND warehouse_id IS NULL AND transfer_id IS NOT NULL"
        " AND order_id IS NULL)"
        " OR (state = 'consumed' AND warehouse_id IS NULL AND transfer_id IS NULL"
        " AND order_id IS NOT NULL)"
        " OR (state IN ('returned_to_manufacturer', 'scrapped', 'missing')"
        " AND warehouse_id IS NULL AND transfer_id IS NULL AND order_id IS NULL)",
        name="one_place",
    ),
    CheckConstraint("(order_id IS NULL) = (line_id IS NULL)", name="order_line_whole"),
    CheckConstraint("unit_cost_fen >= 0", name="unit_cost_not_negative"),
    ForeignKeyConstraint(
        ["order_id", "line_id"], ["order_part_lines.order_id", "order_part_lines.line_id"]
    ),
    Index("ix_serial_items_warehouse_part", "warehouse_id", "part_number"),
    Index("ix_serial_items_order_line", "order_id", "line_id"),
    Index("ix_serial_items_transfer", "transfer_id"),
)
"""串号: where each serialised item is now. Its history is the ledger's rows with its serial."""

transfer_serials = Table(
    "transfer_serials",
    metadata,
    Column("transfer_id", String(40), ForeignKey("transfers.id"), primary_key=True),
    Column("serial_number", String(60), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), nullable=False),
    # How it arrived: empty until received, then received, short or damaged.
    Column("outcome", String(20), nullable=True),
    CheckConstraint(
        "outcome IS NULL OR outcome IN ('received', 'short', 'damaged')", name="outcome"
    ),
    Index("ix_transfer_serials_serial", "serial_number"),
)
"""The serials a transfer moves, named line by line, and how each arrived."""

stocktake_serials = Table(
    "stocktake_serials",
    metadata,
    Column("stocktake_id", String(40), ForeignKey("stocktakes.id"), primary_key=True),
    Column("serial_number", String(60), primary_key=True),
    Column("part_number", String(40), ForeignKey("parts.part_number"), nullable=False),
    Column("finding", String(10), nullable=False),
    CheckConstraint("finding IN ('missing', 'found')", name="finding"),
)
"""A stocktake's serial differences: on the book and not counted (missing), or counted and
not on the book (found)."""
