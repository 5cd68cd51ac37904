"""The REST shapes of the stock ledger (库存台账): receipts and adjustments in, movements and the
conservation check out. Shape only here; inventory judges the content. Money in fen."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.gateway.schemas_rules import NOT_BLANK, PartCategory

Short = Annotated[str, StringConstraints(max_length=50)]
Reason = Annotated[str, StringConstraints(max_length=500)]
# A serial's form (1 to 60 letters, digits and . _ / -) is judged by inventory, which names
# the one at fault as serials[i]; here only the size is bounded.
SerialText = Annotated[str, StringConstraints(max_length=100)]
MAX_SERIALS = 1000


class ReceiptIn(BaseModel):
    """入库: units of a part come into the warehouse at a unit cost."""

    part_number: Short
    quantity: int = Field(ge=1, le=100_000)
    unit_cost_fen: int = Field(ge=0, le=100_000_000)
    document_id: Short | None = Field(None, description="the delivery note; made up when absent")
    serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: one serial per unit, none already in stock",
    )


class AdjustmentIn(BaseModel):
    """盘盈/盘亏: units found (+) or missing (-), with the reason."""

    part_number: Short
    quantity: int = Field(ge=-100_000, le=100_000, description="signed, not zero")
    reason: Reason
    document_id: Short | None = Field(None, description="the stocktake; made up when absent")
    serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: the serials found (+) or missing (-), one per unit",
    )


class WriteOffIn(BaseModel):
    """报废 (scrap) or 返厂 (return_to_manufacturer): good stock leaving the chain."""

    part_number: Short
    quantity: int = Field(ge=1, le=100_000)
    kind: Literal["scrap", "return_to_manufacturer"]
    reason: Reason
    document_id: Short | None = None
    serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: the free serials that leave",
    )


class Movement(BaseModel):
    id: int
    warehouse_id: str
    part_number: str
    kind: str = Field(
        description="receipt | issue | return | transfer_out | transfer_in | adjustment | "
        "scrap | return_to_manufacturer"
    )
    quantity: int = Field(description="signed: + in, - out")
    unit_cost_fen: int
    document_type: str
    document_id: str
    user_id: str
    occurred_at: str
    serials: list[str] = Field(
        description="a serialised part: the row's serial; for a document, all it moved "
        "(one ledger row each, the id the first one's)"
    )


class MovementPage(BaseModel):
    items: list[Movement]
    next_cursor: str | None


class PartConservation(BaseModel):
    part_number: str
    receipts: int
    scrapped: int
    consumed: int = Field(description="issued to orders less returned from them")
    returned_to_manufacturer: int
    adjustments: int
    transfers: int
    expected: int = Field(description="what the ledger says the chain holds")
    on_hand: int = Field(description="over all warehouses, from the balances")
    in_transit: int
    balanced: bool
    warehouses_off: list[str] = Field(description="whose ledger disagrees with their balance")
    serials_off: list[str] = Field(
        description="a serialised part: where its serials disagree with the balances "
        '(a warehouse, or "in transit")'
    )
    value_in_fen: int = Field(description="receipts, returns, stock found")
    value_out_fen: int = Field(description="issues, write-offs, stock missing")
    value_held_fen: int = Field(description="what the on-hand over all warehouses is worth")
    value_in_transit_fen: int = Field(description="what the units in transit took from senders")


class Conservation(BaseModel):
    balanced: bool
    parts: list[PartConservation]


class TransferLineIn(BaseModel):
    part_number: Short
    quantity: int = Field(ge=1, le=10_000)
    serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: one serial per unit, each free in the sender",
    )


class TransferIn(BaseModel):
    """调拨申请: parts from one warehouse to another."""

    from_warehouse_id: Short
    to_warehouse_id: Short
    lines: list[TransferLineIn] = Field(min_length=1, max_length=100)
    note: Reason | None = None


class DiscrepancyIn(BaseModel):
    part_number: Short
    short: int = Field(0, ge=0, le=10_000, description="never arrived")
    damaged: int = Field(0, ge=0, le=10_000, description="arrived unusable")
    short_serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: the ones not arrived",
    )
    damaged_serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: the unusable ones",
    )


class ReceiptOfTransferIn(BaseModel):
    """收货: lines not named came in complete."""

    discrepancies: list[DiscrepancyIn] = Field(default_factory=list, max_length=100)


class TransferLine(BaseModel):
    part_number: str
    quantity: int
    unit_cost_fen: int = Field(description="the sender's average cost when shipped")
    received: int
    short: int
    damaged: int
    serials: list[str] = Field(description="a serialised part: the serials it moves")
    short_serials: list[str]
    damaged_serials: list[str]


class Transfer(BaseModel):
    id: str
    from_warehouse_id: str
    to_warehouse_id: str
    status: str = Field(description="requested | approved | shipped | received | cancelled")
    approved_branches: list[str]
    pending_branches: list[str]
    lines: list[TransferLine]
    requested_by: str
    note: str | None
    requested_at: str
    shipped_at: str | None
    received_at: str | None
    cancelled_at: str | None


class QuotaIn(BaseModel):
    """额度 of a franchised store's warehouse, set by its branch."""

    quota_fen: int = Field(ge=0, le=10_000_000_000)


class QuotaUse(BaseModel):
    warehouse_id: str
    quota_fen: int
    held_fen: int = Field(description="on-hand at average cost")
    in_transit_fen: int = Field(description="shipped to it, not yet received")
    old_parts_owed_fen: int = Field(description="warranty issues whose old part is owed")
    used_fen: int
    headroom_fen: int = Field(description="quota less used; negative when over")


class OldPartLineIn(BaseModel):
    order_id: Short
    line_id: Short
    quantity: int = Field(ge=1, le=1000)


class OldPartReturnIn(BaseModel):
    """旧件返还: old parts going back to the manufacturer, each naming the order line it
    settles."""

    lines: list[OldPartLineIn] = Field(min_length=1, max_length=500)
    document_id: Short | None = Field(None, description="the manufacturer's authorisation")


class OwedOldPart(BaseModel):
    order_id: str
    line_id: str
    part_number: str
    owed: int
    unit_cost_fen: int
    issued_at: str
    due_at: str
    overdue: bool


class OwedOldParts(BaseModel):
    items: list[OwedOldPart]


class OldPartBatch(BaseModel):
    id: str
    warehouse_id: str
    lines: list[OldPartLineIn]
    created_by: str
    created_at: str


class SlowMovingItem(BaseModel):
    warehouse_id: str
    part_number: str
    description: str
    on_hand: int
    value_fen: int = Field(description="on-hand at average cost")
    last_outbound_at: str | None


class SlowMoving(BaseModel):
    days: int
    total_value_fen: int
    items: list[SlowMovingItem]


class CountedLineIn(BaseModel):
    part_number: Short
    counted: int = Field(ge=0, le=100_000)
    serials: list[SerialText] = Field(
        default_factory=list,
        max_length=MAX_SERIALS,
        description="a serialised part: each serial counted",
    )


class StocktakeIn(BaseModel):
    """盘点: what was counted, part by part."""

    lines: list[CountedLineIn] = Field(min_length=1, max_length=1000)


class StocktakeLine(BaseModel):
    part_number: str
    book: int
    counted: int
    difference: int
    unit_cost_fen: int
    missing_serials: list[str] = Field(description="on the book, not counted")
    found_serials: list[str] = Field(description="counted, not on the book")


class Stocktake(BaseModel):
    id: str
    warehouse_id: str
    status: str = Field(description="pending_approval | posted | rejected")
    lines: list[StocktakeLine]
    difference_value_fen: int
    counted_by: str
    counted_at: str
    decided_by: str | None
    decided_at: str | None


class ReorderLevelIn(BaseModel):
    """What the warehouse keeps of the part (最低/最高库存) and the supplier's lead time."""

    min_level: int = Field(ge=0, le=100_000)
    max_level: int = Field(ge=0, le=100_000)
    lead_time_days: int = Field(ge=0, le=365)


class ReorderLevel(ReorderLevelIn):
    warehouse_id: str
    part_number: str


class ReorderSuggestion(BaseModel):
    part_number: str
    available: int
    in_transit: int
    on_order: int
    daily_consumption: float
    reorder_point: int
    quantity: int = Field(description="to order now")


class ReorderSuggestions(BaseModel):
    items: list[ReorderSuggestion]


class PurchaseLineIn(BaseModel):
    part_number: Short
    quantity: int = Field(ge=1, le=100_000)
    unit_cost_fen: int = Field(ge=0, le=100_000_000)


class PurchaseOrderIn(BaseModel):
    supplier: Annotated[str, StringConstraints(max_length=100)]
    lines: list[PurchaseLineIn] = Field(max_length=200)


class ReceivedQuantityIn(BaseModel):
    part_number: Short
    quantity: int = Field(ge=1, le=100_000)


class PurchaseReceiptIn(BaseModel):
    """到货: what came in, by part; every outstanding unit when no lines are given."""

    lines: list[ReceivedQuantityIn] = Field(default_factory=list, max_length=200)


class PurchaseLine(PurchaseLineIn):
    received: int


class PurchaseOrder(BaseModel):
    id: str
    warehouse_id: str
    supplier: str
    status: str = Field(description="open | received | cancelled")
    lines: list[PurchaseLine]
    created_by: str
    created_at: str


class PartIn(BaseModel):
    """A part as HQ keeps it in the catalog (料号)."""

    brand: Annotated[str, StringConstraints(max_length=30, pattern=NOT_BLANK)]
    description: Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK)]
    category: PartCategory
    serialised: bool = False
    standard_cost_fen: int = Field(ge=0, le=100_000_000)
    retail_price_fen: int = Field(ge=0, le=100_000_000)
    compatible_models: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=100
    )
    superseded_by: Short | None = None


class PartView(BaseModel):
    """A part of the catalog (料号), with the parts that supersede it (替代料)."""

    part_number: str
    brand: str
    description: str
    category: str
    compatible_models: list[str]
    serialised: bool
    standard_cost_fen: int
    retail_price_fen: int
    superseded_by: str | None
    superseded_chain: list[str] = Field(
        description="the parts that supersede it in turn (A→B→C: [B, C] for A)"
    )
    current_part_number: str = Field(
        description="what to use now: the end of the chain, or the part itself"
    )


class PartViewPage(BaseModel):
    items: list[PartView]
    next_cursor: str | None


class SerialItem(BaseModel):
    serial: str
    part_number: str
    state: str = Field(
        description="in_stock | in_transit | consumed | returned_to_manufacturer | scrapped | "
        "missing"
    )
    warehouse_id: str | None = Field(description="in stock")
    transfer_id: str | None = Field(description="in transit")
    order_id: str | None = Field(description="held for (in stock) or consumed by (consumed)")
    line_id: str | None
    unit_cost_fen: int = Field(description="what it last came into a warehouse at")


class SerialTrace(SerialItem):
    history: list[Movement] = Field(description="every ledger row of the serial, oldest first")


class Serials(BaseModel):
    items: list[SerialItem]
