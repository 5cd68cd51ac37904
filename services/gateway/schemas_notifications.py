"""Request and response bodies of customer notices and the tracking link (the OpenAPI docs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.gateway.schemas_rules import NOT_BLANK, TEMPLATE


class NotificationTemplate(BaseModel):
    kind: str = Field(description="order_received, quote_to_approve, waiting_parts, ...")
    language: str = Field(description="zh-CN or en")
    body: str
    placeholders: list[str] = Field(description="what the body may use, as {name}")
    is_default: bool = Field(description="the built-in text: HQ has not changed it")
    updated_at: str | None
    updated_by: str | None


class NotificationTemplateList(BaseModel):
    items: list[NotificationTemplate]


# Not blank, and a template: a lookahead, which JSON Schema and Python's re both read.
TEMPLATE_NOT_BLANK = rf"^(?=[\s\S]*{NOT_BLANK}){TEMPLATE[1:]}"


class NotificationTemplateIn(BaseModel):
    # Python's re: the body's pattern looks ahead, which pydantic's own engine cannot.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    body: str = Field(
        min_length=1,
        max_length=500,
        pattern=TEMPLATE_NOT_BLANK,
        examples=["您的维修单{number}已修好，请到{store}取机。{link}"],
    )


class Delivery(BaseModel):
    id: str
    order_id: str
    order_number: str
    event_id: str
    kind: str
    customer_id: str | None
    language: str | None
    provider: str | None
    status: str = Field(description="queued, sent, failed or skipped_no_consent")
    attempts: int
    last_error: str | None
    text: str | None
    branch_id: str
    store_id: str
    created_at: str | None
    next_attempt_at: str | None
    sent_at: str | None
    updated_at: str | None


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None


class TrackingLink(BaseModel):
    order_id: str
    token: str
    url: str
    expires_at: str | None


class TrackingStep(BaseModel):
    status: str
    at: str | None
    at_local: str | None


class Tracking(BaseModel):
    """What a customer sees without signing in: no name, phone or IMEI."""

    number: str
    status: str
    service_type: str
    branch_id: str
    store_id: str
    promised_date: str | None
    received_at: str | None
    steps: list[TrackingStep]
    updated_at: str | None
    expires_at: str | None
