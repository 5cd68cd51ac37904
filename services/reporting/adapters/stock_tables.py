"""The parts side's read models (报表中心: 库存与用料), on the reporting metadata. Built only from
inventory's StockMoved and OrderPartsChanged and orders' OrderStatusChanged."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, String, Table, Text, text

from services.reporting.adapters.orm import metadata

stock_positions = Table(
    "stock_positions",
    metadata,
    Column("warehouse_id", String(40), primary_key=True),
    Column("part_number", String(40), primary_key=True),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),  # "" for a branch's central warehouse
    Column("on_hand", BigInteger, nullable=False),
    Column("average_cost_fen", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    # The ledger order of the movement that left this level (domain.stock.LedgerKey).
    Column("occurred_us", BigInteger, nullable=False),
    Column("event_id", String(64), nullable=False),
    # The value before the last update: the upsert that moves the level returns it, so the
    # change is known without reading first.
    Column("previous_value_fen", BigInteger, nullable=False),
)
"""A part in a warehouse now. Its row is also what serialises the handling of that part's
movements across consumers (the first statement of each locks it until commit)."""

stock_part_days = Table(
    "stock_part_days",
    metadata,
    Column("warehouse_id", String(40), primary_key=True),
    Column("part_number", String(40), primary_key=True),
    Column("day", Date, primary_key=True),  # Asia/Shanghai business day
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("on_hand", BigInteger, nullable=False),
    Column("average_cost_fen", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("occurred_us", BigInteger, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("issued_quantity", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_stock_part_days_branch_day", "branch_id", "day"),
    Index("ix_stock_part_days_store_day", "store_id", "day"),
)
"""A part in a warehouse at the close of each day it moved: its level then (valued) and what
the day issued to orders. Slow-moving stock as of any day is read from here."""

stock_rollups = Table(
    "stock_rollups",
    metadata,
    Column("branch_id", String(30), primary_key=True),  # "*": the chain
    Column("store_id", String(30), primary_key=True),  # "*": the branch; "": its central warehouse
    Column("grain", String(1), primary_key=True),  # d day, m month, t all time
    Column("day", Date, primary_key=True),  # the day; a month's 1st; 1970-01-01 for all time
    Column("value_change_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("value_change_day_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("issued_cost_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("returned_cost_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("slow_change_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("parts_cost_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("issue_days", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_stock_rollups_grain_day", "grain", "day", "branch_id", "store_id"),
)
"""Per store, branch and the chain, by day, month and all time (domain.stock, Rollups): how the
inventory value and the slow-moving value changed (a value on a day is the sum of the changes up
to it), the cost issued to and returned from orders (StockMoved), the parts cost of orders and
their (order, day) pairs with issues (OrderPartsChanged). A period's figures are sums over a
few rows per unit, however many parts and movements there were."""

stock_issue_pairs = Table(
    "stock_issue_pairs",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("earlier_day", Date, primary_key=True),
    Column("orders", BigInteger, nullable=False, server_default=text("0")),
)
"""Per unit (as in stock_rollups): orders with issues on `earlier_day` and next on `day`. An
order issued to on several days of a period counts once: its pairs inside the period are
taken off the (order, day) pairs."""

stock_waiting_rollups = Table(
    "stock_waiting_rollups",
    metadata,
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("part_number", String(40), primary_key=True),
    Column("orders", BigInteger, nullable=False, server_default=text("0")),
    Column("quantity", BigInteger, nullable=False, server_default=text("0")),
)
"""Per unit (as in stock_rollups) and part: the orders waiting for it and the quantity short,
the sums of stock_waiting_parts."""

stock_order_lines = Table(
    "stock_order_lines",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("line_id", String(40), primary_key=True),
    Column("part_number", String(40), nullable=False),
    Column("issued", Integer, nullable=False),
    Column("returned", Integer, nullable=False),
    # The counters before the last update, returned by the upsert that moves them.
    Column("previous_issued", Integer, nullable=False),
    Column("previous_returned", Integer, nullable=False),
)
"""An order line's issued and returned quantities as inventory last reported them: what the next
OrderPartsChanged is compared with."""

stock_order_days = Table(
    "stock_order_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("branch_id", String(30), primary_key=True),
    Column("store_id", String(30), primary_key=True),
    Column("order_id", String(40), primary_key=True),
    Column("issued_quantity", BigInteger, nullable=False, server_default=text("0")),
    Column("issued_cost_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("returned_cost_fen", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_stock_order_days_branch_day", "branch_id", "day"),
    Index("ix_stock_order_days_store_day", "store_id", "day"),
    Index("ix_stock_order_days_order", "order_id"),
)
"""Parts issued to and returned from an order, by the store whose warehouse did it and day."""

stock_record_orders = Table(
    "stock_record_orders",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("number", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(30), nullable=False),
    # The service record's parts as domain.stock.record_text writes them.
    Column("record", Text, nullable=False),
    # Status and record before the last step, returned by the upsert that applies a step.
    Column("previous_status", String(30), nullable=False),
    Column("previous_record", Text, nullable=False),
)
"""An order as its latest step (by version) left it: its status (is the repair finished?) and
the parts its service record lists."""

stock_reconciliation = Table(
    "stock_reconciliation",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("part_number", String(40), primary_key=True),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("record_quantity", Integer, nullable=False, server_default=text("0")),
    Column("issued_quantity", Integer, nullable=False, server_default=text("0")),
    Index("ix_stock_reconciliation_branch", "branch_id", "order_id", "part_number"),
    Index("ix_stock_reconciliation_store", "store_id", "order_id", "part_number"),
)
"""Per order and part: the service record's quantity (orders) against the quantity issued net
of returns (inventory); whether the repair is finished is the order's (stock_record_orders)."""

stock_waiting_parts = Table(
    "stock_waiting_parts",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("part_number", String(40), primary_key=True),
    Column("branch_id", String(30), nullable=False),
    Column("store_id", String(30), nullable=False),
    Column("quantity", Integer, nullable=False),
    Index("ix_stock_waiting_parts_branch", "branch_id"),
    Index("ix_stock_waiting_parts_store", "store_id"),
)
"""Parts an order waiting for parts (待料) is short of, as its latest step said."""
