"""Domain errors, named by what went wrong, mapped once to gRPC status codes and HTTP statuses.

A service raises them; the gRPC layer carries them to the caller (code, message and field
errors in trailing metadata); the gateway turns them into RFC 9457 problem details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import grpc


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


@dataclass
class DomainError(Exception):
    message: str
    errors: list[FieldError] = field(default_factory=list)

    kind = "error"
    grpc_code = grpc.StatusCode.UNKNOWN
    http_status = 500
    title = "Internal error"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def to_json(self) -> bytes:
        body = {
            "kind": self.kind,
            "message": self.message,
            "errors": [{"field": e.field, "reason": e.reason} for e in self.errors],
        }
        return json.dumps(body, ensure_ascii=False).encode()


class InvalidInput(DomainError):
    kind = "invalid_input"
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 422
    title = "Invalid input"


class NotFound(DomainError):
    kind = "not_found"
    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with current state (a transition not allowed, a duplicate)."""

    kind = "conflict"
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409
    title = "Conflict"


class PreconditionFailed(DomainError):
    """The caller changed what they read at an older version (a stale If-Match): read again."""

    kind = "precondition_failed"
    # FAILED_PRECONDITION already stands for Conflict; ABORTED is gRPC's "retry from the read".
    grpc_code = grpc.StatusCode.ABORTED
    http_status = 412
    title = "Precondition failed"


class Forbidden(DomainError):
    kind = "forbidden"
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403
    title = "Forbidden"


class Unauthenticated(DomainError):
    kind = "unauthenticated"
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401
    title = "Unauthenticated"


class TooManyRequests(DomainError):
    """The caller is over their rate; `retry_after_seconds` says when to come back."""

    kind = "too_many_requests"
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429
    title = "Too many requests"
    retry_after_seconds: int = 1


class ServiceUnavailable(DomainError):
    kind = "unavailable"
    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503
    title = "Service unavailable"


class InternalError(DomainError):
    kind = "internal"
    grpc_code = grpc.StatusCode.INTERNAL
    http_status = 500
    title = "Internal error"


ERROR_METADATA_KEY = "x-domain-error-bin"

_BY_KIND: dict[str, type[DomainError]] = {
    cls.kind: cls
    for cls in (
        InvalidInput,
        NotFound,
        Conflict,
        PreconditionFailed,
        Forbidden,
        Unauthenticated,
        ServiceUnavailable,
        InternalError,
    )
}
_BY_GRPC_CODE: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: PreconditionFailed,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooManyRequests,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: ServiceUnavailable,
}


def error_from_json(raw: bytes) -> DomainError:
    body = json.loads(raw)
    cls = _BY_KIND.get(body.get("kind", ""), InternalError)
    errors = [FieldError(e["field"], e["reason"]) for e in body.get("errors", [])]
    return cls(body.get("message", ""), errors)


def error_from_grpc(code: grpc.StatusCode, details: str | None, raw: bytes | None) -> DomainError:
    if raw:
        return error_from_json(raw)
    cls = _BY_GRPC_CODE.get(code, InternalError)
    return cls(details or code.name.lower())


def invalid(field_name: str, reason: str) -> InvalidInput:
    return InvalidInput(f"{field_name}: {reason}", [FieldError(field_name, reason)])
