"""How answers are written: JSON bodies, and times as UTC ISO 8601 or Asia/Shanghai."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.responses import JSONResponse

from servicekit.timeutil import SHANGHAI


def to_json(content: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette writes it, in a fraction of the time."""
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class FastJSONResponse(JSONResponse):
    """The app's JSON answers, written by orjson (FastAPI's own ORJSONResponse is deprecated)."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    # Returned as a ready Response, FastAPI skips re-encoding the body through its models.
    return FastJSONResponse(content, status_code=status, headers=headers)


def moment(stamp: Timestamp) -> datetime | None:
    """An unset proto timestamp (the epoch) is no time at all."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def iso_utc(stamp: Timestamp) -> str | None:
    value = moment(stamp)
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_shanghai(stamp: Timestamp) -> str | None:
    value = moment(stamp)
    return None if value is None else value.astimezone(SHANGHAI).isoformat(timespec="milliseconds")


def or_none(text: str) -> str | None:
    """Proto3 has no null: an empty optional string is shown as null."""
    return text or None
