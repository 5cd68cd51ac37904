"""Every figure from real events through the real consumers (real NATS, the real database):
orders' steps, a follow-up from customers and a settlement claim, published out of order and
one of them again under a new id, give the figures worked out by hand; the rollups equal the
contributions of the facts (what a rebuild would write); the drill-down lists the orders
behind a figure within the caller's scope."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, NotFound
from servicekit.inbox import EventConsumer
from servicekit.runtime import Runtime
from servicekit.testing import eventually
from services.reporting import handlers
from services.reporting.adapters import repository
from services.reporting.adapters.orm import (
    open_orders,
    order_facts,
    order_rollups,
    technician_rollups,
)
from services.reporting.domain.kpis import Kpis
from services.reporting.domain.rollups import (
    BacklogKey,
    FigureKey,
    Rollups,
    TechnicianKey,
    contributions,
    merge,
)
from services.reporting.tests import factories

HQ = AuthContext("u-analyst", "hq_analyst")
FIRST, LAST = "2026-11-27", "2026-11-30"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Chain:
    sh: str
    zj: str

    @classmethod
    def unique(cls) -> Chain:
        tag = uuid.uuid4().hex[:8].upper()
        return cls(f"SH{tag}", f"ZJ{tag}")


@pytest.fixture
def chain() -> Chain:
    return Chain.unique()


@pytest.fixture
async def consumers(runtime: Runtime, chain: Chain) -> AsyncIterator[list[EventConsumer]]:
    """The service's two consumers' handlers, on this test's own subjects."""
    made = [
        runtime.consumer(
            f"reporting-facts-{stream.lower()}-{chain.sh}",
            stream,
            [f"{domain}.v1.{chain.sh}.>", f"{domain}.v1.{chain.zj}.>"],
            events,
        )
        for stream, domain, events in [
            ("ORDERS", "orders", handlers.ORDER_EVENTS),
            ("CUSTOMERS", "customers", handlers.CUSTOMER_EVENTS),
        ]
    ]
    tasks = [asyncio.create_task(consumer.run(runtime.js)) for consumer in made]
    yield made
    for consumer in made:
        consumer.stop()
    for task in tasks:
        await asyncio.wait_for(task, 10)
    for consumer in made:
        await runtime.js.delete_consumer(consumer.stream, consumer.name)


async def kpis(
    runtime: Runtime, auth: AuthContext = HQ, branch_id: str = "", store_id: str = ""
) -> Kpis:
    return await handlers.get_kpis(runtime.uow, auth, branch_id, store_id, FIRST, LAST)


def renamed(event: factories.Message) -> factories.Message:
    """The same event under a new id: neither the stream's window nor the inbox knows it."""
    again = type(event)()
    again.CopyFrom(event)
    again.meta.event_id = str(uuid.uuid4())  # type: ignore[attr-defined]
    return again


@pytest.mark.service("reporting")
async def test_events_in_any_order_and_twice_give_the_hand_worked_figures(
    runtime: Runtime, chain: Chain, consumers: list[EventConsumer]
) -> None:
    sh1, sh2, zj1 = f"{chain.sh}-001", f"{chain.sh}-002", f"{chain.zj}-001"
    # A: repaired at SH-001, ready on the 28th (25 h), promised the 28th, closed the 29th.
    a = factories.order_received(
        chain.sh,
        sh1,
        utc("2026-11-27T02:00"),
        promised_date=date(2026, 11, 28),
        warranty_status="out_of_warranty",
    )
    a_steps = [
        factories.status_changed(a, "diagnosis", "diagnosed", 2, utc("2026-11-27T03:00")),
        factories.status_changed(a, "repair/finish", "quality_check", 3, utc("2026-11-28T01:00")),
        factories.status_changed(a, "qc", "ready_for_pickup", 4, utc("2026-11-28T03:00")),
        factories.status_changed(
            a, "pickup", "closed", 5, utc("2026-11-29T02:00"), "u-clerk", paid_fen=15000
        ),
    ]
    # B: a swap at SH-002, cancelled the day it came in.
    b = factories.order_received(chain.sh, sh2, utc("2026-11-27T03:00"), "swap", brand="xiaomi")
    b_cancel = factories.status_changed(b, "cancel", "cancelled", 2, utc("2026-11-27T05:00"))
    # C: in warranty at SH-001, waiting for parts since the 27th.
    c = factories.order_received(chain.sh, sh1, utc("2026-11-27T04:00"))
    c_wait = factories.status_changed(c, "approval", "waiting_parts", 2, utc("2026-11-27T06:00"))
    # D: A's device back at a ZJ store on the 30th: a repeat repair.
    d = factories.order_received(
        chain.zj, zj1, utc("2026-11-30T02:00"), repeat_of_order_id=a.order_id
    )
    follow_ups = [
        factories.follow_up_recorded(a, 2, 4),
        factories.follow_up_recorded(a, 1, 0, "open"),  # an older attempt, arriving late
    ]
    claims = [
        factories.claim_changed(chain.sh, "c-1", 2, "2026-11", [(a.order_id, "accepted", 3000)]),
        factories.claim_changed(chain.sh, "c-1", 1, "2026-11", [(a.order_id, "claimed", 3000)]),
    ]
    # Out of order: A's pickup before its intake, the claim's and follow-up's newest first,
    # and two events announced again under new ids.
    for event in [
        a_steps[3],
        d,
        follow_ups[0],
        claims[0],
        a_steps[1],
        c_wait,
        b_cancel,
        a,
        a_steps[2],
        renamed(a_steps[2]),
        b,
        c,
        a_steps[0],
        follow_ups[1],
        claims[1],
        renamed(b_cancel),
    ]:
        await factories.publish(runtime.js, event)

    # Last on each stream, a sentinel outside the period: once both are in, every event
    # published before them has been handled (each consumer takes its stream in order).
    sentinel = factories.order_received(chain.zj, zj1, utc("2026-12-15T02:00"))
    await factories.publish(runtime.js, sentinel)
    await factories.publish(runtime.js, factories.follow_up_recorded(sentinel, 1, 5))

    async def sentinel_seen() -> bool:
        async with runtime.uow() as uow:
            found = await uow.session.execute(
                select(order_facts.c.version, order_facts.c.follow_up_attempt).where(
                    order_facts.c.order_id == sentinel.order_id
                )
            )
            return found.first() == (1, 1)

    await eventually(sentinel_seen)
    hq = await kpis(runtime)
    f = hq.figures
    assert {name: f[name] for name in f.counters if f[name]} == {
        "received": 4,
        "repeat_received": 1,
        "ready": 1,
        "turnaround_seconds": 25 * 3600,
        "promised": 1,
        "on_time": 1,
        "closed": 1,
        "repaired": 1,
        # A came back as D: no first-time fix.
        "revenue_fen": 15000,
        "followed_up": 1,
        "satisfaction_sum": 4,
        "labour_claimed_fen": 3000,
        "labour_accepted_fen": 3000,
        "cancelled": 1,
    }
    assert f.repeat_repair_rate == 0.25
    assert (f.on_time_rate, f.follow_up_rate, f.first_time_fix_rate) == (1.0, 1.0, 0.0)
    assert f.average_satisfaction == 4.0
    assert f.turnaround_median_hours == pytest.approx(25, rel=0.01)
    assert f.turnaround_p90_hours == pytest.approx(25, rel=0.01)
    assert [(s.service_type, s.brand, s.figures["received"]) for s in hq.by_split] == [
        ("repair", "huawei", 3),
        ("swap", "xiaomi", 1),
    ]
    assert [(t.service_type, t.orders_received) for t in hq.by_service_type] == [
        ("repair", 3),
        ("swap", 1),
    ]
    assert [(u.branch_id, u.store_id, u.figures["received"]) for u in hq.by_unit] == [
        (chain.sh, "", 3),
        (chain.zj, "", 1),
    ]
    assert hq.by_store == ()  # by branch at HQ (by_unit)
    # Open on the 30th: C (3 days, waiting for parts) and D (0 days).
    assert hq.backlog is not None
    assert dict(hq.backlog.open) == {"0-2": 1, "3-7": 1, "8-14": 0, "15-30": 0, "31+": 0}
    assert dict(hq.backlog.waiting_parts)["3-7"] == 1
    assert (hq.backlog.swap_limit_near, hq.backlog.swap_limit_passed) == (0, 0)
    assert hq.technicians == ()  # listed for a branch or a store

    sh = await kpis(runtime, branch_id=chain.sh)
    assert [(u.store_id, u.figures["received"]) for u in sh.by_unit] == [(sh1, 2), (sh2, 1)]
    assert [(s.store_id, s.orders_received) for s in sh.by_store] == [(sh1, 2), (sh2, 1)]
    [technician] = sh.technicians
    assert (technician.technician_id, technician["completed"], technician["came_back"]) == (
        "u-tech",
        1,
        1,
    )
    assert (technician.repeat_rate, technician.average_satisfaction) == (1.0, 4.0)
    assert technician.turnaround_mean_hours == 25

    store = await kpis(runtime, store_id=sh1)
    assert store.figures["received"] == 2
    assert store.figures.turnaround_median_hours == 25  # exact: from the store's own orders
    assert store.by_unit == ()

    await rollups_equal_the_contributions_of_the_facts(runtime)


async def rollups_equal_the_contributions_of_the_facts(runtime: Runtime) -> None:
    """What a rebuild from the facts would write is what the deltas left."""
    async with runtime.uow() as uow:
        rows = await uow.session.execute(select(order_facts.c.order_id))
        facts = await repository.lock_facts(uow.session, [r.order_id for r in rows])
        stored: Rollups = {}
        for table, key_type, counters in [
            (order_rollups, FigureKey, repository.FIGURE_COUNTERS),
            (open_orders, BacklogKey, repository.BACKLOG_COUNTERS),
            (technician_rollups, TechnicianKey, repository.TECHNICIAN_COUNTERS),
        ]:
            keys = [f.name for f in dataclasses.fields(key_type)]
            for row in await uow.session.execute(select(table)):
                values = row._mapping
                stored[key_type(*(values[k] for k in keys))] = {
                    name: int(values[name]) for name in counters
                }
        stored.update(await repository.stored_turnarounds(uow.session))
    assert merge([stored]) == merge(contributions(f) for f in facts.values())


@pytest.mark.service("reporting")
async def test_the_orders_behind_a_figure_page_by_page_within_scope(
    runtime: Runtime, chain: Chain, consumers: list[EventConsumer]
) -> None:
    sh1, sh2 = f"{chain.sh}-001", f"{chain.sh}-002"
    orders = [
        factories.order_received(chain.sh, sh1, utc("2026-11-27T02:00")),
        factories.order_received(chain.sh, sh2, utc("2026-11-27T03:00")),
        factories.order_received(chain.sh, sh1, utc("2026-11-28T04:00")),
        factories.order_received(chain.zj, f"{chain.zj}-001", utc("2026-11-28T04:00")),
    ]
    for event in orders:
        await factories.publish(runtime.js, event)
    closed = factories.status_changed(orders[0], "complete", "closed", 2, utc("2026-11-28T05:00"))
    await factories.publish(runtime.js, closed)

    async def counted() -> bool:
        figures = (await kpis(runtime)).figures
        return (figures["received"], figures["closed"]) == (4, 1)

    await eventually(counted)

    async def listed(
        auth: AuthContext, figure: str, token: str = "", size: int = 2, **unit: str
    ) -> tuple[list[str], str]:
        facts, next_token = await handlers.list_figure_orders(
            runtime.uow,
            auth,
            unit.get("branch_id", ""),
            unit.get("store_id", ""),
            FIRST,
            LAST,
            figure,
            size,
            token,
        )
        return [f.order_id for f in facts], next_token

    manager = AuthContext("u-sh", "branch_manager", chain.sh)
    first, token = await listed(manager, "received")
    assert first == [orders[0].order_id, orders[1].order_id]
    second, last_token = await listed(manager, "received", token)
    assert (second, last_token) == ([orders[2].order_id], "")
    assert (await listed(manager, "open", size=10))[0] == [orders[1].order_id, orders[2].order_id]
    assert (await listed(manager, "closed", store_id=sh1))[0] == [orders[0].order_id]
    # A quick order is ready when completed.
    assert (await listed(HQ, "ready", branch_id=chain.sh))[0] == [orders[0].order_id]
    with pytest.raises(NotFound):
        await listed(manager, "received", branch_id=chain.zj)
    with pytest.raises(InvalidInput) as unknown:
        await listed(manager, "everything")
    assert [e.field for e in unknown.value.errors] == ["figure"]
    with pytest.raises(InvalidInput) as chain_wide:
        await listed(HQ, "received")
    assert [e.field for e in chain_wide.value.errors] == ["branch_id"]
    with pytest.raises(InvalidInput) as forged:
        await listed(manager, "received", "bm90IG91cnM=")
    assert [e.field for e in forged.value.errors] == ["cursor"]


@pytest.mark.service("reporting")
async def test_concurrent_batches_on_the_same_orders_count_each_once(
    runtime: Runtime, chain: Chain
) -> None:
    """Two replicas' batches may hold events of the same order, new to both: the facts are
    made and locked in key order, so one waits for the other and neither counts it twice."""
    intakes = [
        factories.order_received(chain.sh, f"{chain.sh}-00{i % 3}", utc("2026-11-27T02:00"))
        for i in range(20)
    ]
    events: list[factories.Message] = []
    for intake in intakes:
        events += [
            intake,
            factories.status_changed(intake, "diagnosis", "diagnosed", 2, utc("2026-11-27T03:00")),
            factories.status_changed(intake, "qc", "ready_for_pickup", 3, utc("2026-11-28T03:00")),
            factories.status_changed(intake, "pickup", "closed", 4, utc("2026-11-29T03:00")),
        ]
    batches = [events[i::4] for i in range(4)]  # each batch one event of every order

    async def apply(batch: list[factories.Message]) -> None:
        async with runtime.uow() as uow:
            for event in batch:
                await handlers.ORDER_EVENTS[event.DESCRIPTOR.full_name][1](uow, event)
            await uow.commit()

    await asyncio.gather(*(apply(batch) for batch in batches))
    figures = (await kpis(runtime)).figures
    assert (figures["received"], figures["ready"], figures["closed"]) == (20, 20, 20)
    await rollups_equal_the_contributions_of_the_facts(runtime)
