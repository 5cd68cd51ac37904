"""The REST shapes of customer care: records and their history, edits, merges, personal-data
requests (PIPL), follow-up calls (回访) and complaints (投诉). Shape only here; customers judges
the content (a phone's format, a score's range are checked there too)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from services.gateway.schemas import typed_digits
from services.gateway.schemas_rules import EMAIL, MOBILE, NOT_BLANK

Short = Annotated[str, StringConstraints(max_length=50)]
# The digits folded before the pattern is checked: the validator wraps what precedes it.
MobileDigits = Annotated[
    str, StringConstraints(max_length=50, pattern=MOBILE), BeforeValidator(typed_digits)
]
Reason = Annotated[str, StringConstraints(max_length=500, pattern=NOT_BLANK)]
Text = Annotated[str, StringConstraints(max_length=2000)]


class CustomerDevice(BaseModel):
    imei: str
    brand: str
    model: str
    first_seen_at: str | None


class CustomerOut(BaseModel):
    id: str
    name: str
    phone: str | None = Field(
        description="138****5678 unless your store holds an open order of the customer; "
        "null once erased"
    )
    email: str | None
    message_consent: bool
    language: str
    devices: list[CustomerDevice]
    order_count: int
    first_seen_at: str | None
    last_seen_at: str | None
    last_store_id: str | None
    version: int
    merged_into: str | None
    erased: bool


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None


class ServiceRecord(BaseModel):
    order_id: str
    number: str
    branch_id: str
    store_id: str
    imei: str | None
    status: str
    service_type: str | None
    paid_fen: int
    received_at: str | None
    updated_at: str | None
    closed_at: str | None


class CustomerDetail(CustomerOut):
    history: list[ServiceRecord] = Field(description="every order, every store, newest first")


class CustomerUpdateIn(BaseModel):
    """Fields left out stay as they are; `email: ""` removes the email."""

    name: Short | None = None
    phone: MobileDigits | None = None
    email: Annotated[str, StringConstraints(max_length=254, pattern=f"^$|{EMAIL}")] | None = None
    message_consent: bool | None = None
    language: Literal["zh-CN", "en"] | None = None


class MergeIn(BaseModel):
    merge_id: Short = Field(description="the other record of the same person; it is merged away")
    reason: Reason


class ErasureIn(BaseModel):
    reason: Reason = Field(description="the customer's request and its reference")


class PrivacyAuditEntry(BaseModel):
    id: int
    customer_id: str
    action: str = Field(description="export | erasure | merge")
    actor_user_id: str
    actor_role: str
    at: str | None
    reason: str
    detail: str


class PrivacyAuditPage(BaseModel):
    items: list[PrivacyAuditEntry]
    next_cursor: str | None


class FollowUpAttempt(BaseModel):
    number: int
    reached: bool
    score: int | None
    comments: str | None
    agent_id: str
    at: str | None


class FollowUp(BaseModel):
    id: str
    order_id: str
    order_number: str
    branch_id: str
    store_id: str
    customer_id: str | None
    customer_name: str | None
    customer_phone: str | None = Field(description="in clear only for the agent who took it")
    picked_up_at: str | None
    due_at: str | None
    state: str = Field(description="open | done | unreachable")
    assigned_to: str | None
    attempts: int
    score: int | None
    comments: str | None
    history: list[FollowUpAttempt]
    complaint_id: str | None
    overdue: bool


class FollowUpPage(BaseModel):
    items: list[FollowUp]
    next_cursor: str | None


class AttemptIn(BaseModel):
    """One call: reached with a score (1-5) and comments, or not reached (tried again)."""

    reached: bool
    score: int | None = Field(None, ge=1, le=5)
    comments: Text | None = None


class ComplaintNote(BaseModel):
    author_id: str
    note: str
    at: str | None


class Complaint(BaseModel):
    id: str
    follow_up_id: str
    order_id: str
    branch_id: str
    store_id: str
    customer_id: str | None
    customer_name: str | None
    customer_phone: str | None = Field(description="in clear only for the complaint's owner")
    score: int
    owner_id: str
    state: str = Field(description="open | closed")
    outcome: str | None
    comments: str | None
    opened_at: str | None
    due_at: str | None
    closed_at: str | None
    notes: list[ComplaintNote]
    overdue: bool


class ComplaintPage(BaseModel):
    items: list[Complaint]
    next_cursor: str | None


class NoteIn(BaseModel):
    note: Annotated[str, StringConstraints(max_length=2000, pattern=NOT_BLANK)]
    owner_id: Short | None = Field(None, description="hand the complaint to this user")


class CloseIn(BaseModel):
    outcome: Annotated[str, StringConstraints(max_length=2000, pattern=NOT_BLANK)]
