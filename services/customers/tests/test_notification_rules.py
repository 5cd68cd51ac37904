"""The pure rules of notices and tracking: templates and rendering, the retry schedule, the
consent rule, and when a tracking link expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from servicekit.errors import InvalidInput
from services.customers.notifications.delivery import (
    Recipient,
    RetrySchedule,
    may_send,
    parse_delays,
)
from services.customers.notifications.templates import (
    DEFAULTS,
    KIND_OF_STATUS,
    KINDS,
    LANGUAGES,
    PLACEHOLDERS,
    amount_yuan,
    check_template,
    effective_templates,
    in_language,
    language_or_default,
    render,
)
from services.customers.notifications.tracking import expired, expiry, newer

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)


def field_of(error: pytest.ExceptionInfo[InvalidInput]) -> str:
    return error.value.errors[0].field


def test_every_kind_has_a_valid_default_in_both_languages() -> None:
    for kind in KINDS:
        for language in LANGUAGES:
            check_template(kind, language, DEFAULTS[(kind, language)])
    assert set(KIND_OF_STATUS.values()) <= set(KINDS)


def test_rendering_fills_placeholders_and_keeps_braces() -> None:
    text = render(
        "单{number}在{store}，{{备注}} {link}",
        {"number": "SH-001-261123-0001", "store": "SH-001", "link": "https://x/t/abc"},
    )
    assert text == "单SH-001-261123-0001在SH-001，{备注} https://x/t/abc"


def test_a_missing_value_renders_empty() -> None:
    assert render("[{amount_yuan}]", {}) == "[]"


def test_a_promised_date_not_given_says_so_in_the_customers_language() -> None:
    body = DEFAULTS[("order_received", "zh-CN")]
    for given in ("", "-"):
        assert "预计完成日期待定" in render(body, in_language({"promised_date": given}, "zh-CN"))
    english = render(DEFAULTS[("order_received", "en")], in_language({}, "en"))
    assert "expected by to be confirmed" in english
    dated = in_language({"promised_date": "2026-12-01"}, "en")
    assert dated["promised_date"] == "2026-12-01"


def test_the_quote_notice_shows_yuan() -> None:
    body = DEFAULTS[("quote_to_approve", "en")]
    text = render(
        body, {"number": "N1", "store": "S", "amount_yuan": amount_yuan(45600), "link": "L"}
    )
    assert "CNY 456.00" in text
    assert amount_yuan(5) == "0.05"
    assert amount_yuan(-12345) == "-123.45"


@pytest.mark.parametrize(
    ("kind", "language", "body", "field"),
    [
        ("birthday", "en", "hi", "kind"),
        ("ready_for_pickup", "fr", "salut", "language"),
        ("ready_for_pickup", "en", "   ", "body"),
        ("ready_for_pickup", "en", "x" * 501, "body"),
        ("ready_for_pickup", "en", "pay {amount_yuan}", "body"),
        ("ready_for_pickup", "en", "{number.__class__}", "body"),
        ("ready_for_pickup", "en", "{number!r}", "body"),
        ("ready_for_pickup", "en", "{number:>30}", "body"),
        ("ready_for_pickup", "en", "open { brace", "body"),
    ],
)
def test_a_bad_template_is_refused_naming_the_field(
    kind: str, language: str, body: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        check_template(kind, language, body)
    assert field_of(error) == field


def test_hq_text_replaces_the_default_for_its_kind_and_language_only() -> None:
    templates = effective_templates({("closed", "en"): "Bye {number}"})
    assert len(templates) == len(KINDS) * len(LANGUAGES)
    by_key = {(t.kind, t.language): t for t in templates}
    assert by_key[("closed", "en")].body == "Bye {number}"
    assert not by_key[("closed", "en")].is_default
    assert by_key[("closed", "zh-CN")].is_default
    assert "amount_yuan" in PLACEHOLDERS["quote_to_approve"]


def test_an_unknown_language_reads_chinese() -> None:
    assert language_or_default("en") == "en"
    assert language_or_default("") == "zh-CN"
    assert language_or_default("de") == "zh-CN"


def test_retries_back_off_then_give_up() -> None:
    schedule = RetrySchedule(
        (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10)), max_attempts=5
    )
    assert schedule.after_failure(1, NOW) == NOW + timedelta(seconds=30)
    assert schedule.after_failure(2, NOW) == NOW + timedelta(minutes=2)
    assert schedule.after_failure(3, NOW) == NOW + timedelta(minutes=10)
    assert schedule.after_failure(4, NOW) == NOW + timedelta(minutes=10)  # the last repeats
    assert schedule.after_failure(5, NOW) is None


def test_retry_settings_are_checked() -> None:
    assert parse_delays("0.1, 0.2,") == (timedelta(seconds=0.1), timedelta(seconds=0.2))
    for text in ("", "a,b"):
        with pytest.raises(ValueError):
            parse_delays(text)
    with pytest.raises(ValueError):
        RetrySchedule((timedelta(seconds=1),), max_attempts=0)


def test_no_message_without_consent_or_number() -> None:
    assert may_send(Recipient("c1", "13812345678", True, "zh-CN"))
    assert not may_send(Recipient("c1", "13812345678", False, "zh-CN"))
    assert not may_send(Recipient("c1", "", True, "zh-CN"))


def test_a_link_expires_days_after_the_order_ends() -> None:
    assert expiry("ready_for_pickup", NOW, 30) is None
    ends = expiry("closed", NOW, 30)
    assert ends == NOW + timedelta(days=30)
    assert expiry("cancelled", NOW, 7) == NOW + timedelta(days=7)
    assert not expired(None, NOW)
    assert not expired(ends, ends - timedelta(seconds=1))
    assert expired(ends, ends)


def test_only_a_newer_status_event_moves_the_status() -> None:
    assert newer(3, 2)
    assert not newer(2, 2)
    assert not newer(1, 2)
