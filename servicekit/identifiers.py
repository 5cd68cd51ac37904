"""Identifiers every part of the chain checks the same way: IMEI (15 digits, Luhn check digit)
and mainland mobile numbers (1[3-9] + 9 digits), and how a phone number is masked."""

from __future__ import annotations

import re

_MOBILE = re.compile(r"1[3-9]\d{9}")
_IMEI = re.compile(r"\d{15}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def imei_problem(imei: str) -> str | None:
    """Why an IMEI is not acceptable, or None when it is."""
    if not _IMEI.fullmatch(imei):
        return "must be exactly 15 digits"
    if not luhn_valid(imei):
        return "check digit is wrong (Luhn)"
    return None


def mobile_problem(phone: str) -> str | None:
    if not _MOBILE.fullmatch(phone):
        return "must be a mainland mobile number: 11 digits starting 13 to 19"
    return None


def mask_phone(phone: str) -> str:
    """`13812345678` → `138****5678`: how a number shows outside the store that holds it."""
    if len(phone) < 8:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"
