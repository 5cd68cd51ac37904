"""HQ base data (基础数据) as rules: the manufacturers' fault code tables, their labour prices per
repair level, their warranty policies, the authorisation matrix (厂商授权) and the branches'
approval thresholds. Pure: what a change must look like, and what the diagnosis must name."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from servicekit.errors import FieldError, InvalidInput
from services.orders.domain.lifecycle import REPAIR_LEVELS
from services.orders.domain.order import SERVICE_TYPES, Diagnosis
from services.orders.domain.warranty import WarrantyPolicy

FAULT_CODE_KINDS = ("symptom", "fault", "cause")
"""现象, 故障, 原因: the three tables each manufacturer keeps."""

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")  # a brand's or a model's code: "redmi-k70"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")
MAX_DESCRIPTION = 200
MAX_FEN = 100_000_000  # a million yuan: anything above is a typing error


@dataclass(frozen=True)
class FaultCode:
    brand: str
    kind: str  # symptom | fault | cause
    code: str
    description_zh: str
    description_en: str
    active: bool = True


@dataclass(frozen=True)
class FaultCodeBook:
    """The active codes of every manufacturer, as (brand, kind, code)."""

    active: frozenset[tuple[str, str, str]]

    def problem(self, brand: str, kind: str, code: str) -> str | None:
        if (brand, kind, code) in self.active:
            return None
        return f"{code!r} is not an active {kind} code of {brand}"


def diagnosis_code_problems(
    book: FaultCodeBook, brand: str, diagnosis: Diagnosis
) -> list[FieldError]:
    """The fault code is required (the lifecycle says so); each code given must be an active one
    in the order's manufacturer's table."""
    named = (
        ("symptom_code", "symptom", diagnosis.symptom_code),
        ("fault_code", "fault", diagnosis.fault_code),
        ("cause_code", "cause", diagnosis.cause_code),
    )
    return [
        FieldError(field, problem)
        for field, kind, code in named
        if code and (problem := book.problem(brand, kind, code))
    ]


def check_diagnosis_codes(book: FaultCodeBook, brand: str, diagnosis: Diagnosis) -> None:
    if errors := diagnosis_code_problems(book, brand, diagnosis):
        raise InvalidInput("the diagnosis names codes the manufacturer does not list", errors)


def _raise(errors: list[FieldError], what: str) -> None:
    if errors:
        raise InvalidInput(f"the {what} has errors", errors)


def _fen_problem(amount_fen: int) -> str | None:
    if amount_fen < 0:
        return "must not be negative"
    if amount_fen > MAX_FEN:
        return f"must be at most {MAX_FEN} fen"
    return None


def check_fault_code(code: FaultCode) -> None:
    errors: list[FieldError] = []
    if code.kind not in FAULT_CODE_KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(FAULT_CODE_KINDS)}"))
    if not _CODE.match(code.code):
        errors.append(FieldError("code", "must be 1 to 30 letters, digits, '-', '_' or '.'"))
    if not code.description_zh.strip():
        errors.append(FieldError("description_zh", "is required"))
    for name, text in (
        ("description_zh", code.description_zh),
        ("description_en", code.description_en),
    ):
        if len(text) > MAX_DESCRIPTION:
            errors.append(FieldError(name, f"is longer than {MAX_DESCRIPTION} characters"))
    _raise(errors, "fault code")


def check_catalog_entry(code: str, name: str) -> None:
    """A manufacturer or a model: its code (in URLs and on orders) and its name."""
    errors: list[FieldError] = []
    if not _KEY.match(code):
        errors.append(FieldError("code", "must be 1 to 30 lower-case letters, digits or '-'"))
    if not name.strip():
        errors.append(FieldError("name", "is required"))
    elif len(name) > 100:
        errors.append(FieldError("name", "is longer than 100 characters"))
    _raise(errors, "entry")


def check_labour_price(repair_level: str, amount_fen: int) -> None:
    errors: list[FieldError] = []
    if repair_level not in REPAIR_LEVELS:
        errors.append(FieldError("repair_level", f"must be one of {', '.join(REPAIR_LEVELS)}"))
    if problem := _fen_problem(amount_fen):
        errors.append(FieldError("amount_fen", problem))
    _raise(errors, "labour price")


POLICY_LIMITS = {
    "return_days": (0, 30),
    "swap_days": (0, 90),
    "main_unit_months": (1, 60),
    "battery_months": (0, 60),
    "charger_months": (0, 60),
    "earphone_months": (0, 60),
    "repair_hold_days": (0, 365),
    "parts_wait_days": (1, 365),
    "swap_after_repairs": (1, 10),
}
"""What a manufacturer's policy may say; the national rules are the floor in practice, but HQ
keeps what the manufacturer signed."""


def check_warranty_policy(policy: WarrantyPolicy) -> None:
    errors: list[FieldError] = []
    for item in fields(policy):
        value = getattr(policy, item.name)
        low, high = POLICY_LIMITS[item.name]
        if not low <= value <= high:
            errors.append(FieldError(item.name, f"must be between {low} and {high}"))
    if policy.swap_days < policy.return_days:
        errors.append(FieldError("swap_days", "must not be shorter than return_days"))
    _raise(errors, "warranty policy")


def check_authorisation(service_type: str) -> None:
    if service_type not in SERVICE_TYPES:
        raise InvalidInput(
            "the authorisation has errors",
            [FieldError("service_type", f"must be one of {', '.join(SERVICE_TYPES)}")],
        )


def check_threshold(amount_fen: int) -> None:
    if problem := _fen_problem(amount_fen):
        raise InvalidInput("the approval threshold has errors", [FieldError("amount_fen", problem)])
