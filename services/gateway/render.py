"""How answers are written: JSON bodies, and times as UTC ISO 8601 or Asia/Shanghai."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


JSON = "application/json"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class UndocumentedAnswer(RuntimeError):
    """A JSON answer with a status its route's OpenAPI does not document: a bug of ours."""


def documented_shapes(route: APIRoute) -> dict[int, TypeAdapter[Any]]:
    """The model of each status a route documents a JSON body for."""
    shapes: dict[int, TypeAdapter[Any]] = {}
    if route.response_model is not None:
        shapes[int(route.status_code or 200)] = TypeAdapter(route.response_model)
    for status, response in route.responses.items():
        model = response.get("model")
        if model is not None and str(status).isdigit():
            shapes[int(status)] = TypeAdapter(model)
    return shapes


def through_model(
    response: Response, shapes: Mapping[int, TypeAdapter[Any]], route: str
) -> Response:
    """The answer's JSON body read and written again by the model documented for its status,
    so the OpenAPI is the shape clients get. A body that does not fit is a server fault."""
    if response.headers.get("content-type", "").split(";")[0] != JSON:
        return response
    shape = shapes.get(response.status_code)
    if shape is None:
        if response.status_code >= 400:
            return response
        raise UndocumentedAnswer(f"{route}: status {response.status_code} is not documented")
    try:
        body = shape.dump_json(shape.validate_json(bytes(response.body)))
    except ValidationError as error:
        raise ResponseValidationError(
            error.errors(include_url=False), endpoint_ctx={"path": route}
        ) from error
    response.body = body
    response.headers["content-length"] = str(len(body))
    return response


class DocumentedRoute(APIRoute):
    """A route whose JSON answers go through its documented response models, including the
    ready responses its handlers build (ETag and Location headers, idempotent replays), which
    FastAPI would otherwise send as they are."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        shapes = documented_shapes(self)
        name = f"{'/'.join(sorted(self.methods or ()))} {self.path}"

        async def documented(request: Request) -> Response:
            return through_model(await handler(request), shapes, name)

        return documented


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
