"""The REST shapes of the stock ledger (库存台账): receipts and adjustments in, movements and the
conservation check out. Shape only here; inventory judges the content. Money in fen."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

Short = Annotated[str, StringConstraints(max_length=50)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class ReceiptIn(BaseModel):
    """入库: units of a part come into the warehouse at a unit cost."""

    part_number: Short
    quantity: int = Field(ge=1, le=100_000)
    unit_cost_fen: int = Field(ge=0, le=100_000_000)
    document_id: Short | None = Field(None, description="the delivery note; made up when absent")


class AdjustmentIn(BaseModel):
    """盘盈/盘亏: units found (+) or missing (-), with the reason."""

    part_number: Short
    quantity: int = Field(ge=-100_000, le=100_000, description="signed, not zero")
    reason: Reason
    document_id: Short | None = Field(None, description="the stocktake; made up when absent")


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


class Conservation(BaseModel):
    balanced: bool
    parts: list[PartConservation]
