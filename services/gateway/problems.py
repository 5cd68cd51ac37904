"""RFC 9457 problem details: every error the gateway answers has this one shape.

{"type", "title", "status", "detail", "instance", "errors": [{"field", "reason"}]}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from servicekit.db import lost_connection
from servicekit.errors import (
    DomainError,
    FieldError,
    InvalidInput,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from services.gateway.render import to_json
from services.gateway.schemas import check_day
from services.gateway.schemas_rules import DAY_PATTERN, PATTERN_REASONS

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:aftersales:problem:"

# The request parts FastAPI names first in an error location; a field path leaves them out.
_LOCATION_ROOTS = {"body", "query", "path", "header", "cookie"}
_UNAVAILABLE = "a service this request needs is unavailable; try again shortly"
_FAILED = "the request failed; it has been logged"
# When a client told 503 should try again: a restarting database or service is back in seconds.
RETRY_AFTER_SECONDS = 1
# What a database that is down raises, bare or wrapped (see `lost_connection`). Handled by
# type, so the answer is a 503 without the traceback Starlette logs for unhandled errors.
_DATABASE_FAILURES: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


# Documented on every operation (each adds those only it answers: 404, 409, 412, 428...): any
# request may be unauthenticated, refused, malformed, throttled or meet a service down.
COMMON_PROBLEMS = {
    401: "not signed in, or the token has expired",
    403: "your role or scope does not allow this",
    422: "invalid input: `errors` names each field and why",
    429: "too many requests: try again after Retry-After seconds",
    503: "a service this request needs is unavailable: try again after Retry-After seconds",
}


_ERROR_SHAPES = {"", "Problem", "HTTPValidationError"}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Every error answer of the OpenAPI as the Problem it is, in application/problem+json
    (FastAPI would write its own validation error shape, in application/json)."""
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path, item in openapi.get("paths", {}).items():
        for operation in item.values():
            responses = operation.get("responses", {})
            # The probes, the metrics and the console's files are not the API.
            if path.startswith("/api/"):
                for status, description in COMMON_PROBLEMS.items():
                    responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                documented = response.get("content", {}).get("application/json", {})
                own_shape = documented.get("schema", {}).get("$ref", "").split("/")[-1]
                # An error with a body of its own (the readiness probe's) keeps it.
                if status.isdigit() and int(status) >= 400 and own_shape in _ERROR_SHAPES:
                    response["content"] = {PROBLEM_JSON: problem}
                    if response.get("description") == "Validation Error":
                        response["description"] = COMMON_PROBLEMS[422]
    schemas = openapi.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return openapi


def problem_response(
    status: int,
    title: str,
    detail: str,
    instance: str,
    kind: str = "",
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {
        "type": TYPE_PREFIX + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "errors": [{"field": e.field, "reason": e.reason} for e in errors],
    }
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    return Response(
        to_json(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def domain_problem(error: DomainError, instance: str) -> Response:
    headers: dict[str, str] | None = None
    if isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after_seconds)}
    # A failure on our side is described in the log; its message may name internal hosts.
    if error.http_status < 500:
        detail = error.message
    else:
        log.warning("%s on %s: %s", type(error).__name__, instance, error.message)
        detail = _UNAVAILABLE if error.http_status == 503 else _FAILED
    return problem_response(
        error.http_status, error.title, detail, instance, error.kind, error.errors, headers
    )


def field_path(location: Sequence[Any]) -> str:
    """("body", "device", "imei") -> "device.imei"; ("query", "limit") -> "limit"."""
    parts = list(location)
    if len(parts) > 1 and parts[0] in _LOCATION_ROOTS:
        parts = parts[1:]
    return ".".join(str(part) for part in parts)


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        location = error.get("loc", ())
        # A body that is not JSON at all names a character offset, not a field.
        name = "body" if error.get("type") == "json_invalid" else field_path(location)
        reason = str(error.get("msg", "invalid"))
        if error.get("type") == "string_pattern_mismatch":
            pattern = str(error.get("ctx", {}).get("pattern", ""))
            reason = pattern_reason(pattern, error.get("input"), reason)
        errors.append(FieldError(name, reason))
    return errors


def pattern_reason(pattern: str, value: object, default: str) -> str:
    """A declared rule in words. A day says what the services would: malformed, or outside
    the business calendar."""
    if pattern == DAY_PATTERN and isinstance(value, str):
        try:
            check_day("", value)
        except InvalidInput as error:
            return error.errors[0].reason
    return PATTERN_REASONS.get(pattern, default)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return problem_response(422, "Invalid input", detail, request.url.path, "invalid_input", errors)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_problem(exc, request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem_response(
        exc.status_code,
        _reason(exc.status_code),
        str(exc.detail),
        request.url.path,
        headers=exc.headers,
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    if lost_connection(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        unavailable = ServiceUnavailable("database unavailable")
        return problem_response(
            503, unavailable.title, _UNAVAILABLE, request.url.path, unavailable.kind
        )
    # The traceback goes to the log, never to the client.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "Internal error", _FAILED, request.url.path)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    for failure in _DATABASE_FAILURES:
        app.add_exception_handler(failure, _on_unexpected)
    app.add_exception_handler(Exception, _on_unexpected)
