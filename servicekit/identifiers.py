"""Identifiers every part of the chain checks the same way: IMEI (15 digits, Luhn check digit)
and mainland mobile numbers (1[3-9] + 9 digits), and how a phone number is masked.

A Chinese keyboard may type full-width digits (３５７…): the door (`normalise_digits`) folds
them to ASCII, and the checks then accept ASCII digits only, since a number stored as typed is
never found again by the look-ups, the passport or the repeat-repair check."""

from __future__ import annotations

import re
import unicodedata

# [0-9], not \d: \d matches every script's digits, which no look-up would ever match again.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_IMEI = re.compile(r"[0-9]{15}")


def normalise_digits(text: str) -> str:
    """An IMEI or phone as typed, with full-width digits (and spaces) folded to ASCII (NFKC)
    and the edges trimmed; other characters are left for the checks to refuse."""
    return unicodedata.normalize("NFKC", text).strip()


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
