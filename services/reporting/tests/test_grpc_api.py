"""GetKpis over real gRPC, in process: the auth context travels in metadata, the answer is the
caller's scope, and bad input or a unit outside the scope come back as domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, NotFound, Unauthenticated
from servicekit.grpc_client import call
from servicekit.runtime import Runtime
from servicekit.testing import acting_as, serving
from servicekit.timeutil import shanghai_day, utc_now
from services.reporting import handlers
from services.reporting.service import SPEC
from services.reporting.tests.factories import order_received

HQ = AuthContext("u-analyst", "hq_analyst")
SH_MANAGER = AuthContext("u-sh", "branch_manager", "SH")
ZJ_MANAGER = AuthContext("u-zj", "branch_manager", "ZJ")


@pytest.fixture
async def stub(runtime: Runtime) -> AsyncIterator[reporting_pb2_grpc.ReportingServiceStub]:
    async with serving(SPEC, runtime) as channel:
        yield reporting_pb2_grpc.ReportingServiceStub(channel)


async def received_today(runtime: Runtime, branch_id: str, store_id: str) -> None:
    """An order taken in just now, handled as the consumer would (no bus needed here)."""
    async with runtime.uow() as uow:
        await handlers.order_received(uow, order_received(branch_id, store_id, utc_now()))
        await uow.commit()


@pytest.mark.service("reporting")
async def test_kpis_default_to_the_last_30_days_of_the_callers_scope(
    runtime: Runtime, stub: reporting_pb2_grpc.ReportingServiceStub
) -> None:
    for branch, store in [("SH", "SH-002"), ("SH", "SH-001"), ("SH", "SH-001"), ("ZJ", "ZJ-001")]:
        await received_today(runtime, branch, store)
    today = shanghai_day(utc_now())

    with acting_as(SH_MANAGER):
        sh = await call(stub.GetKpis, reporting_pb2.GetKpisRequest())
    assert (sh.branch_id, sh.store_id, sh.orders_received) == ("SH", "", 3)
    assert (sh.date_from, sh.date_to) == (
        (today - timedelta(days=29)).isoformat(),
        today.isoformat(),
    )
    assert [(s.branch_id, s.store_id, s.orders_received) for s in sh.by_store] == [
        ("SH", "SH-001", 2),
        ("SH", "SH-002", 1),
    ]

    with acting_as(HQ):
        hq = await call(stub.GetKpis, reporting_pb2.GetKpisRequest())
        store = await call(stub.GetKpis, reporting_pb2.GetKpisRequest(store_id="ZJ-001"))
    assert (hq.branch_id, hq.orders_received, len(hq.by_store)) == ("", 4, 0)
    assert [(u.branch_id, u.figures.received) for u in hq.by_unit] == [("SH", 3), ("ZJ", 1)]
    assert (store.store_id, store.orders_received) == ("ZJ-001", 1)


@pytest.mark.service("reporting")
async def test_bad_periods_and_foreign_units_come_back_as_domain_errors(
    stub: reporting_pb2_grpc.ReportingServiceStub,
) -> None:
    with acting_as(ZJ_MANAGER):
        with pytest.raises(InvalidInput) as bad_dates:
            await call(
                stub.GetKpis, reporting_pb2.GetKpisRequest(date_from="2026-02-30", date_to="x")
            )
        with pytest.raises(InvalidInput) as reversed_period:
            await call(
                stub.GetKpis,
                reporting_pb2.GetKpisRequest(date_from="2026-11-27", date_to="2026-11-01"),
            )
        with pytest.raises(NotFound):
            await call(stub.GetKpis, reporting_pb2.GetKpisRequest(branch_id="SH"))
    assert [e.field for e in bad_dates.value.errors] == ["date_from", "date_to"]
    assert [e.field for e in reversed_period.value.errors] == ["date_to"]


@pytest.mark.service("reporting")
async def test_kpis_need_a_caller(stub: reporting_pb2_grpc.ReportingServiceStub) -> None:
    with pytest.raises(Unauthenticated):
        await call(stub.GetKpis, reporting_pb2.GetKpisRequest())


@pytest.mark.service("reporting")
async def test_every_figure_and_the_orders_behind_one_over_grpc(
    runtime: Runtime, stub: reporting_pb2_grpc.ReportingServiceStub
) -> None:
    for store in ("SH-001", "SH-001", "SH-002"):
        await received_today(runtime, "SH", store)

    with acting_as(SH_MANAGER):
        kpis = await call(stub.GetKpis, reporting_pb2.GetKpisRequest())
        first = await call(
            stub.ListFigureOrders,
            reporting_pb2.ListFigureOrdersRequest(figure="received", page_size=2),
        )
        rest = await call(
            stub.ListFigureOrders,
            reporting_pb2.ListFigureOrdersRequest(
                figure="received", page_size=2, page_token=first.next_page_token
            ),
        )
        with pytest.raises(InvalidInput):
            await call(stub.ListFigureOrders, reporting_pb2.ListFigureOrdersRequest(figure="x"))
    assert (kpis.figures.received, kpis.figures.repeat_repair_rate) == (3, 0.0)
    assert not kpis.figures.HasField("on_time_rate")  # nothing ready with a promise yet
    assert [(u.store_id, u.figures.received) for u in kpis.by_unit] == [
        ("SH-001", 2),
        ("SH-002", 1),
    ]
    assert [a.age for a in kpis.backlog.open] == ["0-2", "3-7", "8-14", "15-30", "31+"]
    assert kpis.backlog.open[0].orders == 3
    assert len(first.orders) == 2 and first.next_page_token
    assert len(rest.orders) == 1 and not rest.next_page_token
    listed = {o.order_id for o in [*first.orders, *rest.orders]}
    assert len(listed) == 3
    assert all(o.branch_id == "SH" and o.HasField("received_at") for o in first.orders)
