"""The words and forms the services accept, declared in the OpenAPI so that what a form built
from it accepts, the API accepts too. The services judge the content and keep their own lists;
services/gateway/tests/test_schema_rules.py keeps these equal to them.

Digits are `[0-9]`, never `\\d`, which matches every script's digits."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import StringConstraints

FaultCodeKind = Literal["symptom", "fault", "cause"]
RepairLevel = Literal["L1", "L2", "L3", "L4"]
Language = Literal["zh-CN", "en"]
TemplateKind = Literal[
    "order_received",
    "quote_to_approve",
    "waiting_parts",
    "sent_to_store",
    "sent_to_factory",
    "ready_for_pickup",
    "closed",
]
DeliveryStatus = Literal["queued", "sent", "failed", "skipped_no_consent"]
PartCategory = Literal[
    "screen",
    "battery",
    "mainboard",
    "camera",
    "charging-port",
    "back-cover",
    "speaker",
    "swap-unit",
]
Figure = Literal[
    "received",
    "repeat_received",
    "ready",
    "on_time",
    "late",
    "closed",
    "not_first_time_fixed",
    "followed_up",
    "cancelled",
    "open",
    "waiting_parts",
    "swap_limit",
]
OrderStatus = Literal[
    "received",
    "diagnosed",
    "awaiting_approval",
    "approved",
    "waiting_parts",
    "in_repair",
    "quality_check",
    "ready_for_pickup",
    "closed",
    "cancelled",
    "declined",
    "sent_out",
    "at_partner",
    "returned_from_partner",
    "at_factory",
]
ServiceType = Literal["repair", "swap", "accessory", "software"]
ClaimStatus = Literal["built", "submitted", "decided", "paid"]
FollowUpState = Literal["open", "done", "unreachable"]
ComplaintState = Literal["open", "closed"]

# A business day or month: 1990 to 2099 (servicekit.timeutil's calendar).
YEAR = "(199[0-9]|20[0-9]{2})"
MONTH_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])$"
DAY_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
# Text that is more than blanks: what "is required" means to the services (str.strip()).
NOT_BLANK = r"[^\s\x1c-\x1f]"
BRAND_CODE = r"^[a-z0-9][a-z0-9-]{0,29}$"  # a manufacturer's or a model's: "redmi-k70"
FAULT_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$"
UNIT_ID = r"^[A-Z0-9][A-Z0-9-]{0,31}$"
USERNAME = r"^[a-z0-9][a-z0-9._-]{2,63}$"
# As typed: full-width digits are folded to ASCII at the door.
IMEI = r"^[0-9０-９]{15}$"
MOBILE = r"^[1１][3-9３-９][0-9０-９]{9}$"
# https to a named host, no user name, nothing blank or odd in it.
HTTPS_LINK = r"^[Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+([/?#][^\s\x00-\x1f\x7f]*)?$"
# Literal braces doubled; placeholders plain names (which ones, the notice's kind decides).
TEMPLATE = r"^([^{}]|\{\{|\}\}|\{[A-Za-z_][A-Za-z0-9_]*\})*$"
EMAIL = r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$"

IDEMPOTENCY_KEY = r"^[\x20-\x7e]{1,200}$"


def etag_pattern(digits: int) -> str:
    """An ETag as the steps take it in If-Match: a version, quoted or not, weak or not."""
    return rf'^(W/)?"*[0-9]{{1,{digits}}}"*$'


VERSION_ETAG = etag_pattern(9)  # int32 on the wire
BASE_DATA_ETAG = etag_pattern(9)  # the version column is an int32 too

# What a 422 says when a value does not match one of these (not the pattern itself).
PATTERN_REASONS = {
    MONTH_PATTERN: "must be a month YYYY-MM between 1990-01 and 2099-12",
    NOT_BLANK: "must not be blank",
    BRAND_CODE: "must be 1 to 30 lower-case letters, digits or '-'",
    FAULT_CODE: "must be 1 to 30 letters, digits, '-', '_' or '.'",
    UNIT_ID: "must be 1 to 32 capital letters, digits or '-'",
    USERNAME: "must be 3 to 64 lower-case letters, digits, '.', '_' or '-'",
    IMEI: "must be exactly 15 digits",
    MOBILE: "must be a mainland mobile number: 11 digits starting 13 to 19",
    HTTPS_LINK: "must be an https:// link to a named host, without spaces",
    IDEMPOTENCY_KEY: "must be 1 to 200 printable ASCII characters",
    VERSION_ETAG: 'must be an ETag as read, e.g. "3"',
    BASE_DATA_ETAG: 'must be an ETag as read, e.g. "7"',
    TEMPLATE: "braces must match: {name} for a placeholder, {{ and }} for a brace",
}

Month = Annotated[str, StringConstraints(pattern=MONTH_PATTERN)]
Day = Annotated[str, StringConstraints(pattern=DAY_PATTERN)]
Required = Annotated[str, StringConstraints(pattern=NOT_BLANK)]

DayQuery = Annotated[
    str | None,
    Query(
        pattern=DAY_PATTERN,
        json_schema_extra={"format": "date"},
        description="YYYY-MM-DD, an Asia/Shanghai day, inclusive",
    ),
]
MonthQuery = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM")]
