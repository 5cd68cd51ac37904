"""The REST shapes of manufacturer settlement (劳务费结算): claims per manufacturer, branch and
month, their lines, decisions and payments. Shape only here; orders judges the content. Money
in integer fen; times UTC."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.gateway.schemas_rules import BRAND_CODE, Day, Month

Short = Annotated[str, StringConstraints(max_length=50)]


class BuildClaimIn(BaseModel):
    """Build a month's claim (or bring one still `built` up to date): the same month twice is
    the same claim."""

    manufacturer: Annotated[str, StringConstraints(pattern=BRAND_CODE)] = Field(
        description="the brand's code, e.g. huawei"
    )
    month: Month = Field(description="YYYY-MM, the Asia/Shanghai month the repairs closed in")
    branch_id: Short | None = Field(None, description="a branch manager's own when absent")


class PaymentIn(BaseModel):
    """A payment received from the manufacturer against the claim."""

    amount_fen: int = Field(ge=1, le=10_000_000_000)
    paid_on: Day = Field(description="YYYY-MM-DD, not after today in Shanghai")


class ClaimLine(BaseModel):
    order_id: str
    number: str
    store_id: str
    repair_level: str
    labour_fen: int
    parts_fen: int
    claimed_fen: int
    state: Literal["held", "claimed", "accepted", "rejected", "paid"]
    old_parts_owed: int
    decision: Literal["accepted", "rejected"] | None
    reason_code: str | None
    accepted_fen: int
    closed_at: str | None


class ClaimPayment(BaseModel):
    amount_fen: int
    paid_on: str
    recorded_by: str
    recorded_at: str | None


class Claim(BaseModel):
    id: str
    manufacturer: str
    branch_id: str
    month: str
    supplement: int = Field(
        description="0: the month's claim; 1, 2...: supplementary claims (补充索赔) of the "
        "month's repairs closed after the one before was submitted"
    )
    status: Literal["built", "submitted", "decided", "paid"]
    version: int
    claimed_fen: int
    accepted_fen: int
    paid_fen: int
    payable_fen: int = Field(description="accepted, old parts back, not yet paid")
    held_fen: int = Field(description="waiting for old parts (旧件) to go back")
    built_at: str | None
    built_by: str
    submitted_at: str | None
    decided_at: str | None
    paid_at: str | None
    payments: list[ClaimPayment]
    lines: list[ClaimLine] | None = Field(None, description="with a single claim, not in lists")


class Claims(BaseModel):
    items: list[Claim]
    next_cursor: str | None = Field(description="the cursor of the next page; null on the last")
