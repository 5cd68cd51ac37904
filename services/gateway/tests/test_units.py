"""Pure pieces: the org tree and scope, masking, rate limiting, problem details."""

from __future__ import annotations

import json

import pytest
from fastapi.exceptions import RequestValidationError

from servicekit.auth import AuthContext
from servicekit.errors import FieldError, NotFound, Unauthenticated, invalid
from servicekit.identifiers import mask_phone
from services.gateway.demo import ORG_UNITS
from services.gateway.privacy import phone_for
from services.gateway.problems import domain_problem, field_path, validation_errors
from services.gateway.ratelimit import RateLimiter
from services.gateway.scope import OrgTree, OrgUnit

TREE = OrgTree(OrgUnit(*unit) for unit in ORG_UNITS)
HQ = AuthContext("u-hq", "hq_admin")
SH = AuthContext("u-sh", "branch_manager", "SH")
SH1 = AuthContext("u-sh1", "clerk", "SH", "SH-001")


def test_paths_of_units() -> None:
    assert TREE.path("HQ") == (None, None)
    assert TREE.path("ZJ") == ("ZJ", None)
    assert TREE.path("ZJ-002") == ("ZJ", "ZJ-002")
    assert TREE.get("ZJ-002") is not None and TREE.get("ZJ-002").franchised  # type: ignore[union-attr]


def test_stores_in_scope() -> None:
    assert TREE.store_in_scope(HQ, "ZJ-001") == ("ZJ", "ZJ-001")
    assert TREE.store_in_scope(SH, "SH-002") == ("SH", "SH-002")
    assert TREE.store_in_scope(SH1, "SH-001") == ("SH", "SH-001")
    for auth, store in [(SH, "ZJ-001"), (SH1, "SH-002"), (HQ, "SH"), (HQ, "HQ"), (HQ, "XX")]:
        with pytest.raises(NotFound):
            TREE.store_in_scope(auth, store)


def test_filters_in_scope() -> None:
    assert TREE.check_filter(HQ, None, None) == ("", "")
    assert TREE.check_filter(HQ, "ZJ", "ZJ-002") == ("ZJ", "ZJ-002")
    assert TREE.check_filter(SH, None, "SH-001") == ("", "SH-001")
    assert TREE.check_filter(SH1, "SH", None) == ("SH", "")
    for auth, branch, store in [
        (SH, "ZJ", None),
        (SH1, None, "SH-002"),
        (HQ, "SH", "ZJ-001"),
        (HQ, "SH-001", None),
        (HQ, "XX", None),
    ]:
        with pytest.raises(NotFound):
            TREE.check_filter(auth, branch, store)


def test_units_in_scope_parents_first() -> None:
    assert [u.id for u in TREE.units_in_scope(SH)] == ["SH", "SH-001", "SH-002"]
    assert [u.id for u in TREE.units_in_scope(SH1)] == ["SH-001"]
    assert len(TREE.units_in_scope(HQ)) == len(ORG_UNITS)


def test_masking() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("1234567") == "*******"
    assert phone_for(SH1, "SH-001", "13812345678") == "13812345678"
    assert phone_for(SH1, "SH-002", "13812345678") == "138****5678"
    assert phone_for(SH, "SH-001", "13812345678") == "138****5678"
    assert phone_for(HQ, "SH-001", "13812345678") == "138****5678"


def test_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(4)] == [0.0] * 4  # burst of twice the rate
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # per user
    now[0] = 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_token_buckets_filled_up_again_are_forgotten_when_there_are_many() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0], max_buckets=3)
    for address in ("a", "b", "c"):
        limiter.acquire(address)
    now[0] = 0.9  # not yet full again: kept, and the new one is let in beside them
    assert limiter.acquire("d") == 0.0
    assert set(limiter.buckets) == {"a", "b", "c", "d"}
    now[0] = 1.0
    for _ in range(4):
        limiter.acquire("d")
    now[0] = 2.0  # a, b and c are full again; d is not
    assert limiter.acquire("e") == 0.0
    assert set(limiter.buckets) == {"d", "e"}
    assert limiter.buckets["d"] == (pytest.approx(0.2), 1.0)  # a spent bucket is kept as it is


def test_field_paths() -> None:
    assert field_path(("body", "device", "imei")) == "device.imei"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"
    assert field_path(("body", "items", 0, "code")) == "items.0.code"


def test_validation_errors_map_to_fields() -> None:
    error = RequestValidationError(
        [
            {"loc": ("body", "customer"), "msg": "Field required", "type": "missing"},
            {"loc": ("body", 3), "msg": "JSON decode error", "type": "json_invalid"},
        ]
    )
    assert validation_errors(error) == [
        FieldError("customer", "Field required"),
        FieldError("body", "JSON decode error"),
    ]


def test_domain_errors_become_problems() -> None:
    response = domain_problem(invalid("device.imei", "bad check digit"), "/api/v1/x")
    assert response.status_code == 422
    assert response.media_type == "application/problem+json"
    assert json.loads(bytes(response.body)) == {
        "type": "urn:aftersales:problem:invalid_input",
        "title": "Invalid input",
        "status": 422,
        "detail": "device.imei: bad check digit",
        "instance": "/api/v1/x",
        "errors": [{"field": "device.imei", "reason": "bad check digit"}],
    }
    unauthenticated = domain_problem(Unauthenticated("no token"), "/api/v1/x")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
