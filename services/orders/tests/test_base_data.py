"""The base data rules: what a diagnosis may name, and what HQ's changes must look like."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from servicekit.errors import InvalidInput
from services.orders.domain import base_data as rules
from services.orders.domain.base_data import FaultCode, FaultCodeBook
from services.orders.domain.intake import IntakeForm, validate_intake
from services.orders.domain.order import Diagnosis
from services.orders.domain.warranty import WarrantyPolicy, decide_warranty

BOOK = FaultCodeBook(
    frozenset(
        {
            ("huawei", "symptom", "S01"),
            ("huawei", "fault", "F-LCD"),
            ("huawei", "cause", "C-DROP"),
            ("apple", "fault", "F-BAT"),
        }
    )
)


def diagnosis(symptom: str = "", fault: str = "F-LCD", cause: str = "") -> Diagnosis:
    return Diagnosis(symptom, fault, cause, (), (), "L1")


def fields_of(error: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [e.field for e in error.value.errors]


def test_a_diagnosis_names_only_active_codes_of_the_orders_manufacturer() -> None:
    rules.check_diagnosis_codes(BOOK, "huawei", diagnosis("S01", "F-LCD", "C-DROP"))
    rules.check_diagnosis_codes(BOOK, "huawei", diagnosis())  # symptom and cause are optional
    with pytest.raises(InvalidInput) as caught:
        rules.check_diagnosis_codes(BOOK, "apple", diagnosis("S01", "F-LCD", "C-DROP"))
    assert fields_of(caught) == ["symptom_code", "fault_code", "cause_code"]
    # A cause code is not a fault code, even of the same manufacturer.
    with pytest.raises(InvalidInput) as caught:
        rules.check_diagnosis_codes(BOOK, "huawei", diagnosis(fault="C-DROP"))
    assert fields_of(caught) == ["fault_code"]


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        (FaultCode("huawei", "smell", "F-1", "x", ""), ["kind"]),
        (FaultCode("huawei", "fault", "", "x", ""), ["code"]),
        (FaultCode("huawei", "fault", "F 1", "x", ""), ["code"]),
        (FaultCode("huawei", "fault", "F" * 31, "x", ""), ["code"]),
        (FaultCode("huawei", "fault", "F-1", " ", ""), ["description_zh"]),
        (FaultCode("huawei", "fault", "F-1", "x", "y" * 201), ["description_en"]),
    ],
)
def test_a_fault_code_must_be_well_formed(code: FaultCode, fields: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.check_fault_code(code)
    assert fields_of(caught) == fields


def test_labour_prices_are_per_known_level_and_in_fen() -> None:
    rules.check_labour_price("L4", 30_000)
    with pytest.raises(InvalidInput) as caught:
        rules.check_labour_price("L5", -1)
    assert fields_of(caught) == ["repair_level", "amount_fen"]


def test_a_warranty_policy_stays_within_sense() -> None:
    rules.check_warranty_policy(WarrantyPolicy())
    with pytest.raises(InvalidInput) as caught:
        rules.check_warranty_policy(
            WarrantyPolicy(return_days=20, swap_days=10, main_unit_months=0)
        )
    assert fields_of(caught) == ["main_unit_months", "swap_days"]


def test_the_intake_decision_follows_the_policy_hq_keeps() -> None:
    bought, today = date(2025, 1, 10), date(2026, 3, 1)
    default = decide_warranty(bought, today, WarrantyPolicy(), True)
    longer = decide_warranty(bought, today, replace(WarrantyPolicy(), main_unit_months=24), True)
    assert default.status == "out_of_warranty"
    assert longer.status == "in_warranty"
    assert longer.expires_on == date(2027, 1, 10)


def test_authorisations_and_thresholds_refuse_nonsense() -> None:
    rules.check_authorisation("swap")
    rules.check_threshold(0)
    with pytest.raises(InvalidInput) as caught:
        rules.check_authorisation("return_to_factory")
    assert fields_of(caught) == ["service_type"]
    with pytest.raises(InvalidInput) as caught:
        rules.check_threshold(rules.MAX_FEN + 1)
    assert fields_of(caught) == ["amount_fen"]


def test_manufacturers_and_models_have_url_safe_codes_and_names() -> None:
    rules.check_catalog_entry("redmi-k70", "Redmi K70")
    with pytest.raises(InvalidInput) as caught:
        rules.check_catalog_entry("Redmi K70", " ")
    assert fields_of(caught) == ["code", "name"]


def test_an_intake_names_only_an_active_symptom_code_of_its_manufacturer() -> None:
    form = IntakeForm(
        customer_name="张三",
        customer_phone="13812345678",
        imei="490154203237518",
        brand="huawei",
        model="P60",
        colour="",
        purchase_date="",
        fault_description="screen cracked",
        symptom_code="S01",
        service_type="repair",
        accessories="",
        appearance="",
        promised_date="",
    )
    today = date(2026, 3, 1)
    assert validate_intake(form, today, ["P60"], BOOK).symptom_code == "S01"
    assert validate_intake(replace(form, symptom_code=""), today, ["P60"], BOOK).symptom_code == ""
    # Another manufacturer's code, or a fault code given as the symptom, is refused by name.
    for unlisted in ("S99", "F-LCD"):
        with pytest.raises(InvalidInput) as caught:
            validate_intake(replace(form, symptom_code=unlisted), today, ["P60"], BOOK)
        assert fields_of(caught) == ["fault.symptom_code"]
