"""Checking an intake form (受理): every field with a problem is reported at once, by its name
in the public API, and nothing is stored unless all are right."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from servicekit.errors import FieldError, InvalidInput
from servicekit.identifiers import imei_problem, mobile_problem
from servicekit.timeutil import day_problem
from services.orders.domain.base_data import FaultCodeBook
from services.orders.domain.order import SERVICE_TYPES, Intake

MAX_TEXT = {
    "customer.name": 50,
    "device.colour": 30,
    "fault.description": 2000,
    "fault.symptom_code": 30,
    "accessories": 500,
    "appearance": 500,
}


@dataclass(frozen=True)
class IntakeForm:
    """The intake form as it arrives: plain strings, empty when not given."""

    customer_name: str
    customer_phone: str
    imei: str
    brand: str
    model: str
    colour: str
    purchase_date: str
    fault_description: str
    symptom_code: str
    service_type: str
    accessories: str
    appearance: str
    promised_date: str
    message_consent: bool = False
    language: str = ""


LANGUAGES = ("zh-CN", "en")
"""The languages customer messages are written in; zh-CN when none is named."""


def _parse_day(text: str, field: str, errors: list[FieldError]) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors.append(FieldError(field, "must be a date as YYYY-MM-DD"))
        return None
    if problem := day_problem(day):
        errors.append(FieldError(field, problem))
        return None
    return day


def validate_intake(
    form: IntakeForm,
    today: date,
    brand_models: Collection[str] | None,
    fault_codes: FaultCodeBook | None = None,
) -> Intake:
    """`brand_models` are the model codes of the named brand, None when the brand is unknown;
    a symptom code given must be an active one of the brand's (`fault_codes`, HQ's tables)."""
    errors: list[FieldError] = []
    name = form.customer_name.strip()
    if not name:
        errors.append(FieldError("customer.name", "is required"))
    if problem := mobile_problem(form.customer_phone):
        errors.append(FieldError("customer.phone", problem))
    if problem := imei_problem(form.imei):
        errors.append(FieldError("device.imei", problem))
    if brand_models is None:
        errors.append(FieldError("device.brand", f"unknown brand {form.brand!r}"))
    elif form.model not in brand_models:
        errors.append(FieldError("device.model", f"unknown model {form.model!r} for this brand"))
    symptom = form.symptom_code.strip()
    if symptom and brand_models is not None and fault_codes is not None:
        unlisted = fault_codes.problem(form.brand, "symptom", symptom)
        errors.extend([FieldError("fault.symptom_code", unlisted)] if unlisted else [])
    purchase_date = _parse_day(form.purchase_date, "device.purchase_date", errors)
    if purchase_date and purchase_date > today:
        errors.append(FieldError("device.purchase_date", "is in the future"))
    if not form.fault_description.strip():
        errors.append(FieldError("fault.description", "is required"))
    if form.service_type not in SERVICE_TYPES:
        errors.append(FieldError("service_type", f"must be one of {', '.join(SERVICE_TYPES)}"))
    promised_date = _parse_day(form.promised_date, "promised_date", errors)
    if promised_date and promised_date < today:
        errors.append(FieldError("promised_date", "is in the past"))
    language = form.language or LANGUAGES[0]
    if language not in LANGUAGES:
        errors.append(FieldError("customer.language", f"must be one of {', '.join(LANGUAGES)}"))
    lengths = {
        "customer.name": name,
        "device.colour": form.colour,
        "fault.description": form.fault_description,
        "fault.symptom_code": form.symptom_code,
        "accessories": form.accessories,
        "appearance": form.appearance,
    }
    errors.extend(
        FieldError(field, f"is longer than {MAX_TEXT[field]} characters")
        for field, value in lengths.items()
        if len(value) > MAX_TEXT[field]
    )
    if errors:
        raise InvalidInput("the intake form has errors", errors)
    return Intake(
        customer_name=name,
        customer_phone=form.customer_phone,
        imei=form.imei,
        brand=form.brand,
        model=form.model,
        colour=form.colour.strip(),
        purchase_date=purchase_date,
        fault_description=form.fault_description.strip(),
        symptom_code=form.symptom_code.strip(),
        service_type=form.service_type,
        accessories=form.accessories.strip(),
        appearance=form.appearance.strip(),
        promised_date=promised_date,
        message_consent=form.message_consent,
        language=language,
    )
