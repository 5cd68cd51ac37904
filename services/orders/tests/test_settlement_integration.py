"""Settlement against a real database and a real NATS server: a month's claim built from the
closed in-warranty repairs (twice is the same claim; an order in one claim only), over gRPC
submitted, decided by the manufacturer's file (all or nothing, the same file twice changing
nothing), paid; old parts returned from inventory make a held line payable; every change
announced as ClaimChanged with its version."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import select, update

from aftersales.events.v1 import inventory_events_pb2, settlement_events_pb2
from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, PreconditionFailed
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import (
    DatabaseTarget,
    NatsServer,
    acting_as,
    eventually,
    service_settings,
    serving,
)
from services.orders import settlement
from services.orders.adapters import repository
from services.orders.adapters import settlement as store
from services.orders.adapters.orm import outbox, repair_orders
from services.orders.service import SPEC
from services.orders.tests.test_settlement import order

pytestmark = pytest.mark.service("orders")

MANAGER = AuthContext("u-sh-manager", "branch_manager", "SH")
ZJ_MANAGER = AuthContext("u-zj-manager", "branch_manager", "ZJ")
MARCH = "2026-03"
NOW = datetime(2026, 4, 2, 1, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(
        SPEC, service_settings("orders", db_target, nats_server.url, demo_data=True)
    )
    yield runtime
    await close_runtime(runtime)


async def closed_repair(
    runtime: Runtime, number: int, closed_at: datetime, **changes: object
) -> str:
    """A closed Huawei L2 repair of SH-001 with one warranty screen line (owing its old part)."""
    made = replace(
        order(**changes),
        id=str(uuid.uuid4()),
        number=f"SH-001-2603{number:02d}-{number:04d}",
    )
    async with runtime.db.session() as session:
        await repository.add(session, made, "k")
        await session.execute(
            update(repair_orders).where(repair_orders.c.id == made.id).values(closed_at=closed_at)
        )
        await session.commit()
    return made.id


async def claim_events(runtime: Runtime) -> list[settlement_events_pb2.ClaimChanged]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(outbox.c.subject, outbox.c.payload)
            .where(outbox.c.subject.like("orders.v1.%.claim_changed"))
            .order_by(outbox.c.seq)
        )
        return [
            settlement_events_pb2.ClaimChanged.FromString(payload)
            for subject, payload in rows
            if subject == "orders.v1.SH._.claim_changed"
        ]


async def test_a_month_is_built_once_and_an_order_is_in_one_claim(runtime: Runtime) -> None:
    # 23:30 on Mar 31 in Shanghai is March's; 00:30 on Apr 1 in Shanghai (Mar 31 UTC) is not.
    in_march = await closed_repair(runtime, 1, datetime(2026, 3, 31, 15, 30, tzinfo=UTC))
    await closed_repair(runtime, 2, datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    await closed_repair(runtime, 3, datetime(2026, 3, 10, tzinfo=UTC), brand_authorised=False)
    first = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "", MARCH, clock)
    assert [x.order_id for x in first.lines] == [in_march]
    assert (first.lines[0].labour_fen, first.lines[0].parts_fen) == (6000, 80000)
    assert first.lines[0].state == "held"

    again = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    assert (again.id, again.version, len(again.lines)) == (first.id, 1, 1)
    # A repair of March closed since: the claim still built takes it, once.
    late = await closed_repair(runtime, 4, datetime(2026, 3, 5, tzinfo=UTC))
    grown = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    assert (grown.id, grown.version) == (first.id, 2)
    assert [x.order_id for x in grown.lines] == [late, in_march]
    events = await claim_events(runtime)
    assert [(e.version, len(e.lines), e.claimed_fen) for e in events] == [
        (1, 1, 86000),
        (2, 2, 172000),
    ]
    with pytest.raises(InvalidInput):
        await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", "2026-05", clock)
    with pytest.raises(InvalidInput):
        await settlement.build_claim(runtime.uow, MANAGER, "nokia", "SH", MARCH, clock)


async def test_the_months_repairs_closed_after_its_claim_went_make_a_supplementary_one(
    runtime: Runtime,
) -> None:
    mid_march = datetime(2026, 3, 15, tzinfo=UTC)
    early = await closed_repair(runtime, 1, datetime(2026, 3, 3, tzinfo=UTC))
    claim = await settlement.build_claim(
        runtime.uow, MANAGER, "huawei", "SH", MARCH, lambda: mid_march
    )
    # Closed between the build and the submission: the claim takes it as it goes.
    before_sending = await closed_repair(runtime, 2, datetime(2026, 3, 16, tzinfo=UTC))
    submitted = await settlement.submit_claim(runtime.uow, MANAGER, claim.id, claim.version, clock)
    assert (submitted.status, submitted.version) == ("submitted", claim.version + 2)
    assert [x.order_id for x in submitted.lines] == [early, before_sending]
    assert (await settlement.get_claim(runtime.uow, MANAGER, claim.id)).claimed_fen == 172000

    # Nothing new: building the month answers the claim as it is.
    same = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    assert (same.id, same.supplement) == (claim.id, 0)
    # Closed after it went, still in March: a supplementary claim, built and sent the same way.
    late = await closed_repair(runtime, 3, datetime(2026, 3, 31, 15, 0, tzinfo=UTC))
    extra = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    assert (extra.supplement, extra.status, [x.order_id for x in extra.lines]) == (
        1,
        "built",
        [late],
    )
    again = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    assert (again.id, again.version) == (extra.id, extra.version)
    listed, _ = await settlement.list_claims(runtime.uow, MANAGER, "", "huawei", MARCH, "")
    assert [(c.supplement, c.status) for c in listed] == [(0, "submitted"), (1, "built")]


async def test_builds_racing_for_a_month_make_one_claim(runtime: Runtime) -> None:
    await closed_repair(runtime, 1, datetime(2026, 3, 10, tzinfo=UTC))
    claims = await asyncio.gather(
        *(
            settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
            for _ in range(3)
        )
    )
    assert len({c.id for c in claims}) == 1
    async with runtime.db.session() as session:
        count = len((await session.execute(select(store.settlement_claim_lines))).all())
    assert count == 1


async def publish_returned(runtime: Runtime, tag: str, lines: list[tuple[str, str, int]]) -> None:
    event = inventory_events_pb2.OldPartsReturned(
        batch_id=f"OPR-{uuid.uuid4().hex[:8]}",
        warehouse_id="WH-SH-001",
        lines=[
            inventory_events_pb2.ReturnedOldPart(
                order_id=o, line_id=x, part_number="HW-SCR-P60", quantity=q
            )
            for o, x, q in lines
        ],
    )
    fill_meta(event.meta, f"T{tag}", "SH-001")
    await runtime.js.publish(
        f"inventory.v1.T{tag}.SH-001.old_parts_returned",
        event.SerializeToString(),
        headers={
            MSG_ID_HEADER: event.meta.event_id,
            EVENT_TYPE_HEADER: inventory_events_pb2.OldPartsReturned.DESCRIPTOR.full_name,
        },
    )


@contextlib.asynccontextmanager
async def old_parts_consumer(runtime: Runtime, tag: str) -> AsyncIterator[None]:
    consumer = settlement.old_parts_consumer(
        runtime,
        name=f"{settlement.OLD_PARTS_CONSUMER}-{tag}",
        subject=f"inventory.v1.T{tag}.*.old_parts_returned",
    )
    task = asyncio.create_task(consumer.run(runtime.js))
    try:
        yield
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        with contextlib.suppress(Exception):
            await runtime.js.delete_consumer(settlement.INVENTORY_STREAM, consumer.name)


async def test_built_to_paid_over_grpc_with_a_rejected_and_a_held_line(runtime: Runtime) -> None:
    held = await closed_repair(runtime, 1, datetime(2026, 3, 3, tzinfo=UTC))
    rejected = await closed_repair(runtime, 2, datetime(2026, 3, 4, tzinfo=UTC))
    back_early = await closed_repair(runtime, 3, datetime(2026, 3, 5, tzinfo=UTC))
    tag = uuid.uuid4().hex[:8]
    async with old_parts_consumer(runtime, tag):
        # One old part came back before the claim was built: its line is claimed, not held.
        await publish_returned(runtime, tag, [(back_early, "l-1", 1)])

        async def known() -> bool:
            async with runtime.db.session() as session:
                return bool(await store.returned_old_parts(session, [back_early]))

        await eventually(known)
        async with serving(SPEC, runtime) as channel:
            api = orders_pb2_grpc.SettlementServiceStub(channel)
            with acting_as(MANAGER):
                claim = await api.BuildClaim(
                    orders_pb2.BuildClaimRequest(manufacturer="huawei", month=MARCH)
                )
                states = {x.order_id: x.state for x in claim.lines}
                assert states == {held: "held", rejected: "held", back_early: "claimed"}
                with pytest.raises(grpc.aio.AioRpcError) as stale:
                    await api.SubmitClaim(
                        orders_pb2.SubmitClaimRequest(id=claim.id, expected_version=7)
                    )
                assert stale.value.code() == grpc.StatusCode.ABORTED
                claim = await api.SubmitClaim(
                    orders_pb2.SubmitClaimRequest(id=claim.id, expected_version=claim.version)
                )
                numbers = {x.order_id: x.number for x in claim.lines}
                good = (
                    "order_number,decision,reason_code,amount_fen\n"
                    f"{numbers[held]},accepted,,86000\n"
                    f"{numbers[rejected]},rejected,NO-OLD-PART,\n"
                    f"{numbers[back_early]},accepted,PARTIAL,70000\n"
                ).encode()
                bad = good.replace(b"NO-OLD-PART", b"")
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await api.DecideClaim(
                        orders_pb2.DecideClaimRequest(
                            id=claim.id, expected_version=claim.version, csv=bad
                        )
                    )
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                unchanged = await api.GetClaim(orders_pb2.GetClaimRequest(id=claim.id))
                assert (unchanged.status, unchanged.version) == ("submitted", claim.version)
                request = orders_pb2.DecideClaimRequest(
                    id=claim.id, expected_version=claim.version, csv=good
                )
                claim = await api.DecideClaim(request)
                assert (claim.status, claim.accepted_fen, claim.payable_fen) == (
                    "decided",
                    156000,
                    70000,
                )
                # The same file again (on the version read before it): nothing changes.
                assert (await api.DecideClaim(request)).version == claim.version
                pay = orders_pb2.RecordClaimPaymentRequest(
                    id=claim.id,
                    expected_version=claim.version,
                    amount_fen=70000,
                    paid_on="2026-04-01",
                    request_id="u-sh-manager:pay-1",
                )
                claim = await api.RecordClaimPayment(pay)
                assert (claim.paid_fen, claim.status) == (70000, "decided")
                # A retry of the same payment records none.
                assert (await api.RecordClaimPayment(pay)).paid_fen == 70000

                # The held line's old part comes back: the rest is payable, then paid.
                await publish_returned(runtime, tag, [(held, "l-1", 1), (rejected, "l-1", 1)])

                async def payable() -> orders_pb2.Claim | None:
                    now = await api.GetClaim(orders_pb2.GetClaimRequest(id=claim.id))
                    return now if now.payable_fen == 86000 else None

                claim = await eventually(payable)
                claim = await api.RecordClaimPayment(
                    orders_pb2.RecordClaimPaymentRequest(
                        id=claim.id,
                        expected_version=claim.version,
                        amount_fen=86000,
                        paid_on="2026-04-02",
                        request_id="u-sh-manager:pay-2",
                    )
                )
                assert (claim.status, claim.paid_fen) == ("paid", 156000)
                assert {x.order_id: x.state for x in claim.lines} == {
                    held: "paid",
                    rejected: "rejected",
                    back_early: "paid",
                }
            with acting_as(ZJ_MANAGER):
                with pytest.raises(grpc.aio.AioRpcError) as hidden:
                    await api.GetClaim(orders_pb2.GetClaimRequest(id=claim.id))
                assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
                listed = await api.ListClaims(orders_pb2.ListClaimsRequest())
                assert list(listed.claims) == []
    events = await claim_events(runtime)
    versions = [e.version for e in events]
    assert versions == sorted(versions) and versions[-1] == claim.version
    assert (events[-1].status, events[-1].paid_fen, events[-1].accepted_fen) == (
        "paid",
        156000,
        156000,
    )


async def test_a_stale_version_changes_nothing(runtime: Runtime) -> None:
    await closed_repair(runtime, 1, datetime(2026, 3, 3, tzinfo=UTC))
    claim = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    with pytest.raises(PreconditionFailed):
        await settlement.submit_claim(runtime.uow, MANAGER, claim.id, claim.version + 1)
    with pytest.raises(InvalidInput):
        await settlement.submit_claim(runtime.uow, MANAGER, claim.id, 0)
    found = await settlement.get_claim(runtime.uow, MANAGER, claim.id)
    assert (found.status, found.version) == ("built", 1)


async def test_the_list_shows_each_claim_with_its_own_sums(runtime: Runtime) -> None:
    await closed_repair(runtime, 1, datetime(2026, 2, 10, tzinfo=UTC))
    await closed_repair(runtime, 2, datetime(2026, 3, 10, tzinfo=UTC))
    await closed_repair(runtime, 3, datetime(2026, 3, 11, tzinfo=UTC))
    for month in ("2026-02", MARCH):
        await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", month, clock)
    listed, next_token = await settlement.list_claims(runtime.uow, MANAGER, "", "huawei", "", "")
    assert [(c.month, len(c.lines), c.claimed_fen) for c in listed] == [
        (MARCH, 2, 172000),
        ("2026-02", 1, 86000),
    ]
    assert next_token == ""
    assert await settlement.list_claims(runtime.uow, ZJ_MANAGER, "", "", "", "") == ([], "")
    with pytest.raises(InvalidInput):
        await settlement.list_claims(runtime.uow, MANAGER, "", "", "", "lost")


async def test_the_list_pages_with_a_cursor(runtime: Runtime) -> None:
    months = ("2026-01", "2026-02", MARCH)
    for number, month in enumerate(months, start=1):
        await closed_repair(runtime, number, datetime(2026, number, 10, tzinfo=UTC))
        claim = await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", month, clock)
    # March's claim sent, and a repair of March after: its supplementary claim.
    await settlement.submit_claim(runtime.uow, MANAGER, claim.id, claim.version, clock)
    await closed_repair(runtime, 4, datetime(2026, 3, 20, tzinfo=UTC))
    await settlement.build_claim(runtime.uow, MANAGER, "huawei", "SH", MARCH, clock)
    seen: list[tuple[str, int]] = []
    token = ""
    for _ in range(4):
        page, token = await settlement.list_claims(
            runtime.uow, MANAGER, "", "", "", "", page_size=1, page_token=token
        )
        seen += [(c.month, c.supplement) for c in page]
        if not token:
            break
    assert seen == [(MARCH, 0), (MARCH, 1), ("2026-02", 0), ("2026-01", 0)]
    with pytest.raises(InvalidInput) as error:
        await settlement.list_claims(runtime.uow, MANAGER, "", "", "", "", page_token="junk")
    assert error.value.errors[0].field == "cursor"
