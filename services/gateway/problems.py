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
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
)
from services.gateway.render import to_json

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
        errors.append(FieldError(name, str(error.get("msg", "invalid"))))
    return errors


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
