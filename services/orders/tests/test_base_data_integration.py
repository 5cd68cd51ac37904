"""The base-data RPCs against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL):
HQ's changes are stored, audited, obeyed by the next intake through a cache that was already
warm, and refused to anyone but hq_admin or on a stale version."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from sqlalchemy import func, select

from aftersales.orders.v1 import base_data_pb2 as pb
from servicekit import paging
from servicekit.auth import AuthContext, set_auth
from servicekit.errors import Forbidden, InvalidInput, NotFound, PreconditionFailed
from servicekit.personal_data import InMemoryKeys
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from servicekit.timeutil import shanghai_day, utc_now
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.base_data import base_data_changes
from services.orders.base_data_api import BaseDataService
from services.orders.domain.base_data import check_diagnosis_codes
from services.orders.domain.order import Diagnosis
from services.orders.service import SPEC
from services.orders.tests.test_intake_integration import form

HQ = AuthContext("u-hq", "hq_admin")
CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
MANAGER = AuthContext("u-zj", "branch_manager", "ZJ")

KEYS = InMemoryKeys()


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("orders", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.fixture
def service(runtime: Runtime) -> BaseDataService:
    return BaseDataService(runtime.uow)


def diagnosis(fault: str, cause: str = "") -> Diagnosis:
    return Diagnosis("", fault, cause, (), (), "L1")


@pytest.mark.service("orders")
async def test_hq_changes_reach_a_warm_cache(runtime: Runtime, service: BaseDataService) -> None:
    cache = repository.BaseDataCache()
    async with runtime.uow() as uow:
        before = await cache.get(uow.session)
    assert before.approval_threshold_fen("ZJ") == 80_000
    check_diagnosis_codes(before.fault_codes, "huawei", diagnosis("F-LCD", "C-DROP"))

    set_auth(HQ)
    await service.PutApprovalThreshold(
        pb.PutApprovalThresholdRequest(
            threshold=pb.ApprovalThreshold(branch_id="ZJ", amount_fen=5)
        ),
        None,
    )
    retired = pb.FaultCode(
        brand="huawei", kind="fault", code="F-LCD", description_zh="显示屏故障", active=False
    )
    await service.PutFaultCode(pb.PutFaultCodeRequest(code=retired), None)
    new = pb.FaultCode(brand="huawei", kind="fault", code="F-OLED", description_zh="OLED 故障")
    new.active = True
    reply = await service.PutFaultCode(pb.PutFaultCodeRequest(code=new), None)

    async with runtime.uow() as uow:
        after = await cache.get(uow.session)
    assert after.version == reply.version > before.version
    assert after.approval_threshold_fen("ZJ") == 5
    check_diagnosis_codes(after.fault_codes, "huawei", diagnosis("F-OLED"))
    with pytest.raises(InvalidInput) as caught:
        check_diagnosis_codes(after.fault_codes, "huawei", diagnosis("F-LCD"))
    assert [e.field for e in caught.value.errors] == ["fault_code"]
    # Other manufacturers keep their own table.
    check_diagnosis_codes(after.fault_codes, "xiaomi", diagnosis("F-LCD"))

    async with runtime.db.session() as session:
        audited = (
            await session.execute(select(base_data_changes.c.what, base_data_changes.c.user_id))
        ).all()
    assert [tuple(a) for a in audited] == [
        ("approval_threshold", "u-hq"),
        ("fault_code", "u-hq"),
        ("fault_code", "u-hq"),
    ]


@pytest.mark.service("orders")
async def test_the_next_intake_reads_the_new_policy_and_authorisation(
    runtime: Runtime, service: BaseDataService
) -> None:
    cache = repository.BaseDataCache()
    bought = (shanghai_day(utc_now()) - timedelta(days=400)).isoformat()
    first = await handlers.create_repair_order(
        runtime.uow,
        cache,
        CLERK,
        form(purchase_date=bought),
        "SH",
        "SH-001",
        None,
        personal_keys=KEYS,
    )
    assert first.warranty.status == "out_of_warranty"
    assert first.brand_authorised

    set_auth(HQ)
    policy = pb.WarrantyPolicy(
        brand="huawei",
        return_days=7,
        swap_days=15,
        main_unit_months=24,
        battery_months=12,
        charger_months=12,
        earphone_months=3,
        repair_hold_days=30,
        parts_wait_days=60,
        swap_after_repairs=2,
    )
    await service.PutWarrantyPolicy(pb.PutWarrantyPolicyRequest(policy=policy), None)
    cell = pb.Authorisation(
        store_id="SH-001", brand="huawei", service_type="repair", authorised=False
    )
    await service.PutAuthorisation(pb.PutAuthorisationRequest(authorisation=cell), None)

    second = await handlers.create_repair_order(
        runtime.uow,
        cache,
        CLERK,
        form(purchase_date=bought),
        "SH",
        "SH-001",
        None,
        personal_keys=KEYS,
    )
    assert second.warranty.status == "in_warranty"
    assert not second.brand_authorised
    assert second.warranty.send_on_required


@pytest.mark.service("orders")
async def test_puts_are_idempotent_and_a_stale_version_is_refused(
    runtime: Runtime, service: BaseDataService
) -> None:
    set_auth(HQ)
    price = pb.LabourPrice(brand="huawei", repair_level="L2", amount_fen=7_000)
    await service.PutLabourPrice(pb.PutLabourPriceRequest(price=price), None)
    await service.PutLabourPrice(pb.PutLabourPriceRequest(price=price), None)
    listed = await service.ListLabourPrices(pb.ListLabourPricesRequest(brand="huawei"), None)
    assert [(p.repair_level, p.amount_fen) for p in listed.prices] == [
        ("L1", 3_000),
        ("L2", 7_000),
        ("L3", 12_000),
        ("L4", 20_000),
    ]
    with pytest.raises(PreconditionFailed):
        await service.PutLabourPrice(
            pb.PutLabourPriceRequest(price=price, expected_version=listed.version - 1), None
        )
    # A version past what the column holds is stale too, not a fault (PostgreSQL's int32).
    with pytest.raises(PreconditionFailed):
        await service.PutLabourPrice(
            pb.PutLabourPriceRequest(price=price, expected_version=45_229_090_279), None
        )
    ok = await service.PutLabourPrice(
        pb.PutLabourPriceRequest(price=price, expected_version=listed.version), None
    )
    assert ok.version == listed.version + 1


@pytest.mark.service("orders")
async def test_bad_input_names_the_field_and_changes_nothing(
    runtime: Runtime, service: BaseDataService
) -> None:
    set_auth(HQ)
    before = (await service.ListLabourPrices(pb.ListLabourPricesRequest(), None)).version
    bad = [
        (
            pb.PutLabourPriceRequest(price=pb.LabourPrice(brand="huawei", repair_level="L9")),
            "repair_level",
        ),
        (pb.PutLabourPriceRequest(price=pb.LabourPrice(brand="nokia", repair_level="L1")), "brand"),
    ]
    for request, field in bad:
        with pytest.raises(InvalidInput) as caught:
            await service.PutLabourPrice(request, None)
        assert [e.field for e in caught.value.errors] == [field]
    with pytest.raises(InvalidInput) as caught:
        await service.PutFaultCode(
            pb.PutFaultCodeRequest(code=pb.FaultCode(brand="huawei", kind="smell", code="x y")),
            None,
        )
    assert {e.field for e in caught.value.errors} == {"kind", "code", "description_zh"}
    assert (await service.ListLabourPrices(pb.ListLabourPricesRequest(), None)).version == before
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(base_data_changes)) == 0


@pytest.mark.service("orders")
async def test_only_hq_writes_and_reads_are_scoped(
    runtime: Runtime, service: BaseDataService
) -> None:
    set_auth(CLERK)
    with pytest.raises(Forbidden):
        await service.PutApprovalThreshold(
            pb.PutApprovalThresholdRequest(
                threshold=pb.ApprovalThreshold(branch_id="SH", amount_fen=1)
            ),
            None,
        )
    mine = await service.ListAuthorisations(pb.ListAuthorisationsRequest(), None)
    assert {a.store_id for a in mine.authorisations} == {"SH-001"}
    with pytest.raises(NotFound):
        await service.ListAuthorisations(pb.ListAuthorisationsRequest(store_id="ZJ-001"), None)
    thresholds = await service.ListApprovalThresholds(pb.ListApprovalThresholdsRequest(), None)
    assert [(t.branch_id, t.amount_fen) for t in thresholds.thresholds] == [("SH", 100_000)]
    set_auth(MANAGER)
    thresholds = await service.ListApprovalThresholds(pb.ListApprovalThresholdsRequest(), None)
    assert [t.branch_id for t in thresholds.thresholds] == ["ZJ"]


@pytest.mark.service("orders")
async def test_hq_reads_the_audit_of_changes_newest_first(
    runtime: Runtime, service: BaseDataService
) -> None:
    set_auth(HQ)
    for fen in (6_000, 7_000, 8_000):
        price = pb.LabourPrice(brand="huawei", repair_level="L2", amount_fen=fen)
        await service.PutLabourPrice(pb.PutLabourPriceRequest(price=price), None)
    threshold = pb.ApprovalThreshold(branch_id="ZJ", amount_fen=5)
    last = await service.PutApprovalThreshold(
        pb.PutApprovalThresholdRequest(threshold=threshold), None
    )

    everything = await service.ListBaseDataChanges(pb.ListBaseDataChangesRequest(), None)
    newest = everything.changes[0]
    assert (newest.what, newest.key, newest.user_id) == ("approval_threshold", "ZJ", "u-hq")
    assert json.loads(newest.value_json) == {"amount_fen": 5}
    assert newest.version == last.version
    assert utc_now() - newest.at.ToDatetime(tzinfo=UTC) < timedelta(minutes=5)

    request = pb.ListBaseDataChangesRequest(what="labour_price", key="huawei/L2", page_size=2)
    first = await service.ListBaseDataChanges(request, None)
    assert [json.loads(c.value_json)["amount_fen"] for c in first.changes] == [8_000, 7_000]
    assert first.changes[0].seq > first.changes[1].seq
    request.page_token = first.next_page_token
    second = await service.ListBaseDataChanges(request, None)
    assert [json.loads(c.value_json)["amount_fen"] for c in second.changes] == [6_000]
    assert second.next_page_token == ""

    with pytest.raises(InvalidInput) as caught:
        await service.ListBaseDataChanges(pb.ListBaseDataChangesRequest(what="colour"), None)
    assert [e.field for e in caught.value.errors] == ["what"]
    for token in ("x!", paging.encode_page_token("²"), paging.encode_page_token("9" * 30)):
        with pytest.raises(InvalidInput) as caught:
            await service.ListBaseDataChanges(pb.ListBaseDataChangesRequest(page_token=token), None)
        assert [e.field for e in caught.value.errors] == ["cursor"]

    set_auth(CLERK)
    with pytest.raises(Forbidden):
        await service.ListBaseDataChanges(pb.ListBaseDataChangesRequest(), None)
