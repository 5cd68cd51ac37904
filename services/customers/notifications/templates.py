"""Notice templates (通知模板): which order event brings which notice, the placeholders each
notice may use, the built-in texts HQ starts from, and rendering. Pure: no I/O."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.errors import invalid

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
MAX_BODY_LENGTH = 500

COMMON = ("number", "store", "link")

# Notice kind → the placeholders its template may use.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "order_received": (*COMMON, "promised_date"),  # 受理: with the tracking link
    "quote_to_approve": (*COMMON, "amount_yuan"),  # 报价待确认
    "waiting_parts": COMMON,  # 待料
    "sent_to_store": COMMON,  # 转店维修
    "sent_to_factory": COMMON,  # 返厂
    "ready_for_pickup": COMMON,  # 待取机
    "closed": COMMON,  # 已取机
}
KINDS = tuple(PLACEHOLDERS)

# The order status an OrderStatusChanged moves to → the notice it brings. Statuses not named
# here bring none.
KIND_OF_STATUS: dict[str, str] = {
    "awaiting_approval": "quote_to_approve",
    "waiting_parts": "waiting_parts",
    "sent_out": "sent_to_store",  # 送修 to a partner store
    "at_factory": "sent_to_factory",  # 返厂
    "ready_for_pickup": "ready_for_pickup",
    "closed": "closed",
}


def notice_of_change(known_status: str, from_status: str, to_status: str) -> str | None:
    """The notice an order's move brings, once per real change the customer cares about: none
    when the order stays where it was (orders says so in `from_status`; `known_status` is the
    status this service last knew of it, so a repeat of one change under another event id
    brings none either), else its new status's kind, if any."""
    if to_status in (from_status, known_status):
        return None
    return KIND_OF_STATUS.get(to_status)


DEFAULTS: dict[tuple[str, str], str] = {
    ("order_received", "zh-CN"): (
        "您的维修单{number}已在{store}受理，预计完成日期{promised_date}。进度查询：{link}"
    ),
    ("order_received", "en"): (
        "Your repair order {number} was received at {store}, expected by {promised_date}. "
        "Track it: {link}"
    ),
    ("quote_to_approve", "zh-CN"): (
        "您的维修单{number}报价{amount_yuan}元，请联系{store}确认是否维修。进度查询：{link}"
    ),
    ("quote_to_approve", "en"): (
        "The quote for repair order {number} is CNY {amount_yuan}. Please tell {store} whether "
        "to go ahead. Track it: {link}"
    ),
    ("waiting_parts", "zh-CN"): "您的维修单{number}正在等待配件，到料后{store}将尽快维修。{link}",
    ("waiting_parts", "en"): (
        "Repair order {number} is waiting for parts; {store} will repair it as soon as they "
        "arrive. {link}"
    ),
    ("sent_to_store", "zh-CN"): "您的维修单{number}已由{store}转至其他门店维修。进度查询：{link}",
    ("sent_to_store", "en"): (
        "Repair order {number} was sent from {store} to another store for repair. Track it: {link}"
    ),
    ("sent_to_factory", "zh-CN"): "您的维修单{number}已由{store}送厂维修。进度查询：{link}",
    ("sent_to_factory", "en"): (
        "Repair order {number} was sent by {store} to the manufacturer for repair. Track it: {link}"
    ),
    ("ready_for_pickup", "zh-CN"): "您的维修单{number}已修好，请到{store}取机。{link}",
    ("ready_for_pickup", "en"): (
        "Repair order {number} is ready: please pick your device up at {store}. {link}"
    ),
    ("closed", "zh-CN"): "您的维修单{number}已在{store}取机完成，感谢惠顾。",
    ("closed", "en"): "Repair order {number} was picked up at {store}. Thank you.",
}


@dataclass(frozen=True)
class Template:
    kind: str
    language: str
    body: str
    is_default: bool


def language_or_default(language: str) -> str:
    """The language a customer reads: the one recorded, zh-CN when none or an unknown one."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def check_template(kind: str, language: str, body: str) -> None:
    """HQ's new text for a notice: a known kind and language, a body of at most 500
    characters using only this kind's placeholders, each a plain `{name}`."""
    if kind not in PLACEHOLDERS:
        raise invalid("kind", f"must be one of {', '.join(KINDS)}")
    if language not in LANGUAGES:
        raise invalid("language", f"must be one of {', '.join(LANGUAGES)}")
    if not body.strip():
        raise invalid("body", "must not be empty")
    if len(body) > MAX_BODY_LENGTH:
        raise invalid("body", f"must be at most {MAX_BODY_LENGTH} characters")
    allowed = PLACEHOLDERS[kind]
    try:
        fields = list(string.Formatter().parse(body))
    except ValueError as error:
        raise invalid("body", f"braces do not match ({error}); write {{{{ for a brace") from None
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise invalid("body", f"{{{name}}} is not a placeholder here; use {', '.join(allowed)}")


def render(body: str, values: Mapping[str, str]) -> str:
    """A template filled in: each `{name}` replaced by its value (empty when missing), `{{`
    and `}}` as braces. Only plain names are filled, so a template can never reach into
    anything but the values given."""
    parts: list[str] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(body):
        parts.append(literal)
        if name is not None:
            parts.append(values.get(name, ""))
    return "".join(parts)


# A promised date not given yet, in the customer's language.
NOT_PROMISED = {"zh-CN": "待定", "en": "to be confirmed"}


def in_language(values: Mapping[str, str], language: str) -> dict[str, str]:
    """The values as the customer reads them: a missing promised date says so in their
    language ("-" is how notices queued before said it)."""
    filled = dict(values)
    if filled.get("promised_date", "") in ("", "-"):
        filled["promised_date"] = NOT_PROMISED.get(language, NOT_PROMISED["zh-CN"])
    return filled


def amount_yuan(fen: int) -> str:
    """Fen as yuan for a message: 12345 → 123.45."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def effective_templates(kept: Mapping[tuple[str, str], str]) -> list[Template]:
    """Every kind in every language: HQ's text where HQ set one, else the built-in one."""
    return [
        Template(kind, language, kept[(kind, language)], False)
        if (kind, language) in kept
        else Template(kind, language, DEFAULTS[(kind, language)], True)
        for kind in KINDS
        for language in LANGUAGES
    ]
