"""The vocabularies and forms the OpenAPI declares are the ones the services check: a word one
of them adds (a part category, a notice kind) must reach the gateway's schema, or forms built
from it would refuse what the API accepts."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest

from servicekit.identifiers import imei_problem, mobile_problem
from services.customers.domain import complaint, follow_up
from services.customers.notifications import handlers as deliveries
from services.customers.notifications import templates
from services.gateway import schemas_rules
from services.inventory.domain import catalog
from services.orders import handlers as orders
from services.orders.domain import base_data, lifecycle
from services.orders.domain import settlement as claims
from services.reporting.adapters import repository as reporting


@pytest.mark.parametrize(
    ("declared", "checked"),
    [
        (schemas_rules.FaultCodeKind, base_data.FAULT_CODE_KINDS),
        (schemas_rules.RepairLevel, lifecycle.REPAIR_LEVELS),
        (schemas_rules.Language, templates.LANGUAGES),
        (schemas_rules.TemplateKind, templates.KINDS),
        (schemas_rules.DeliveryStatus, deliveries.STATUSES),
        (schemas_rules.PartCategory, catalog.PART_CATEGORIES),
        (schemas_rules.Figure, reporting.FIGURES_LISTED),
        (schemas_rules.OrderStatus, orders.STATUSES),
        (schemas_rules.ServiceType, orders.SERVICE_TYPES),
        (schemas_rules.ClaimStatus, claims.CLAIM_STATUSES),
        (schemas_rules.FollowUpState, follow_up.STATES),
        (schemas_rules.ComplaintState, complaint.STATES),
    ],
)
def test_each_declared_vocabulary_is_the_checked_one(declared: Any, checked: Any) -> None:
    assert set(get_args(declared)) == set(checked)


def test_the_declared_forms_are_the_checked_ones() -> None:
    assert base_data._KEY.pattern == schemas_rules.BRAND_CODE
    assert base_data._CODE.pattern == schemas_rules.FAULT_CODE
    assert re.fullmatch(schemas_rules.IMEI, "860000000000000")
    assert imei_problem("86000000000000") and not re.fullmatch(schemas_rules.IMEI, "8" * 14)
    for phone in ("13912345678", "１３９１２３４５６７８"):
        assert re.fullmatch(schemas_rules.MOBILE, phone)
    assert mobile_problem("12912345678") and not re.fullmatch(schemas_rules.MOBILE, "12912345678")
    for day in ("1990-01-01", "2099-12-31"):
        assert re.fullmatch(schemas_rules.DAY_PATTERN, day)
    for day in ("1989-12-31", "2100-01-01", "2026-13-01", "２０２６-01-01"):
        assert not re.fullmatch(schemas_rules.DAY_PATTERN, day)
