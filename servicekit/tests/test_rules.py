"""Fast tests of the shared rules: identifiers, scope, errors, Shanghai days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import grpc
import pytest

from servicekit.auth import AuthContext
from servicekit.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    error_from_grpc,
)
from servicekit.identifiers import imei_problem, luhn_valid, mask_phone, mobile_problem
from servicekit.paging import decode_page_token, encode_page_token, page_size
from servicekit.timeutil import shanghai_day, shanghai_day_start_utc


def test_imei_needs_fifteen_digits_and_a_luhn_check_digit() -> None:
    assert imei_problem("490154203237518") is None
    assert imei_problem("490154203237519") == "check digit is wrong (Luhn)"
    assert imei_problem("49015420323751") == "must be exactly 15 digits"
    assert imei_problem("49015420323751a") == "must be exactly 15 digits"
    assert luhn_valid("79927398713")


@pytest.mark.parametrize("phone", ["13812345678", "19912345678", "15000000000"])
def test_mainland_mobile_numbers_are_accepted(phone: str) -> None:
    assert mobile_problem(phone) is None


@pytest.mark.parametrize("phone", ["12812345678", "1381234567", "138123456789", "+8613812345678"])
def test_other_numbers_are_refused(phone: str) -> None:
    assert mobile_problem(phone) is not None


def test_phone_masking_keeps_prefix_and_last_four() -> None:
    assert mask_phone("13812345678") == "138****5678"


def test_scope_covers_own_unit_and_below() -> None:
    hq = AuthContext("u", "hq_analyst")
    branch = AuthContext("u", "branch_manager", "SH")
    store = AuthContext("u", "clerk", "SH", "SH-001")
    assert hq.covers("ZJ", "ZJ-002")
    assert branch.covers("SH", "SH-002") and not branch.covers("ZJ", "ZJ-001")
    assert store.covers("SH", "SH-001") and not store.covers("SH", "SH-002")
    assert (hq.level, branch.level, store.level) == ("hq", "branch", "store")


def test_narrowing_outside_scope_is_not_found() -> None:
    branch = AuthContext("u", "branch_manager", "SH")
    assert branch.narrow(None, None) == ("SH", None)
    assert branch.narrow(None, "SH-001") == ("SH", "SH-001")
    with pytest.raises(NotFound):
        branch.narrow("ZJ", None)
    store = AuthContext("u", "clerk", "SH", "SH-001")
    with pytest.raises(NotFound):
        store.narrow(None, "SH-002")


def test_domain_errors_survive_the_trip_through_grpc() -> None:
    error = InvalidInput("bad", [FieldError("device.imei", "check digit is wrong (Luhn)")])
    back = error_from_grpc(grpc.StatusCode.INVALID_ARGUMENT, "bad", error.to_json())
    assert isinstance(back, InvalidInput)
    assert back.errors == error.errors
    assert isinstance(error_from_grpc(grpc.StatusCode.UNAVAILABLE, None, None), ServiceUnavailable)


def test_business_day_is_the_shanghai_day() -> None:
    assert shanghai_day(datetime(2026, 11, 26, 15, 59, tzinfo=UTC)) == date(2026, 11, 26)
    assert shanghai_day(datetime(2026, 11, 26, 16, 0, tzinfo=UTC)) == date(2026, 11, 27)
    assert shanghai_day_start_utc(date(2026, 11, 27)) == datetime(2026, 11, 26, 16, tzinfo=UTC)


def test_page_tokens_round_trip_and_refuse_strangers() -> None:
    token = encode_page_token("2026-11-26T10:00:00+00:00", "order-1")
    assert decode_page_token(token, 2) == ["2026-11-26T10:00:00+00:00", "order-1"]
    for stranger in ("not base64 !", encode_page_token("one"), "e30=", ""):
        with pytest.raises(InvalidInput) as caught:
            decode_page_token(stranger, 2)
        assert caught.value.errors[0].field == "cursor"


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0, 20, 100) == 20
    assert page_size(500, 20, 100) == 100
    with pytest.raises(InvalidInput):
        page_size(-1, 20, 100)
