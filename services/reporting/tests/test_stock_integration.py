"""Inventory's and orders' events from a real NATS server through the parts side's consumers
into a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL), read back through the use
cases behind StockReportsService and compared with figures worked out by hand: a movement
arriving after a later one, an event delivered again, an order's older step arriving late."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from google.protobuf.message import Message
from sqlalchemy import Connection

from aftersales.events.v1 import inventory_events_pb2, order_events_pb2
from servicekit import migrations
from servicekit.auth import AuthContext
from servicekit.dead_letters import EVENT_ID_HEADER
from servicekit.errors import InvalidInput, NotFound
from servicekit.inbox import EventConsumer
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.runtime import Runtime
from servicekit.testing import eventually, statements_sent
from servicekit.timeutil import to_timestamp
from services.reporting import stock
from services.reporting.service import SPEC

HQ = AuthContext("u-analyst", "hq_analyst")
FIRST, LAST = "2026-11-01", "2026-11-04"


@dataclasses.dataclass(frozen=True)
class Chain:
    """Branches, stores and warehouses of one test's own (the streams are shared)."""

    tag: str

    @classmethod
    def unique(cls) -> Chain:
        return cls(uuid.uuid4().hex[:8].upper())

    @property
    def sh(self) -> str:
        return f"SH{self.tag}"

    @property
    def zj(self) -> str:
        return f"ZJ{self.tag}"

    def store(self, branch: str, n: int) -> str:
        return f"{branch}-{n:03d}"

    def order(self, n: int) -> str:
        return f"{self.tag}-O{n}"


@pytest.fixture
def chain() -> Chain:
    return Chain.unique()


async def _run(runtime: Runtime, consumer: EventConsumer) -> AsyncIterator[EventConsumer]:
    task = asyncio.create_task(consumer.run(runtime.js))
    yield consumer
    consumer.stop()
    await asyncio.wait_for(task, 10)
    await runtime.js.delete_consumer(consumer.stream, consumer.name)


@pytest.fixture
async def inventory_consumer(runtime: Runtime, chain: Chain) -> AsyncIterator[EventConsumer]:
    subjects = [f"inventory.v1.{chain.sh}.>", f"inventory.v1.{chain.zj}.>"]
    consumer = runtime.consumer(
        f"reporting-stock-{chain.tag}", "INVENTORY", subjects, stock.INVENTORY_EVENTS
    )
    async for running in _run(runtime, consumer):
        yield running


@pytest.fixture
async def orders_consumer(runtime: Runtime, chain: Chain) -> AsyncIterator[EventConsumer]:
    subjects = [f"orders.v1.{chain.sh}.>", f"orders.v1.{chain.zj}.>"]
    consumer = runtime.consumer(
        f"reporting-stock-orders-{chain.tag}", "ORDERS", subjects, stock.STOCK_ORDER_EVENTS
    )
    async for running in _run(runtime, consumer):
        yield running


def shanghai_morning(day: str) -> datetime:
    """10:00 in Shanghai on the day."""
    return datetime.fromisoformat(f"{day}T02:00:00").replace(tzinfo=UTC)


def meta(event: Message, branch: str, store: str, at: datetime) -> None:
    m = event.meta  # type: ignore[attr-defined]
    m.event_id = str(uuid.uuid4())
    m.occurred_at.CopyFrom(to_timestamp(at))
    m.branch_id, m.store_id = branch, store


def moved(
    branch: str,
    store: str,
    warehouse: str,
    part: str,
    day: str,
    kind: str,
    quantity: int,
    cost: int,
    on_hand: int,
) -> inventory_events_pb2.StockMoved:
    event = inventory_events_pb2.StockMoved(
        warehouse_id=warehouse,
        part_number=part,
        kind=kind,
        quantity=quantity,
        unit_cost_fen=cost,
        on_hand_after=on_hand,
        average_cost_after_fen=cost,
    )
    meta(event, branch, store, shanghai_morning(day))
    return event


def parts_changed(
    branch: str,
    store: str,
    order_id: str,
    day: str,
    action: str,
    lines: list[tuple[str, str, int, int, int]],
) -> inventory_events_pb2.OrderPartsChanged:
    """lines: (line id, part, issued, returned, unit cost)."""
    event = inventory_events_pb2.OrderPartsChanged(
        order_id=order_id,
        warehouse_id=f"W-{store}",
        action=action,
        lines=[
            inventory_events_pb2.OrderPartLineState(
                line_id=line_id,
                part_number=part,
                quantity=max(issued, 1),
                issued=issued,
                returned=returned,
                unit_cost_fen=cost,
                status=action,
            )
            for line_id, part, issued, returned, cost in lines
        ],
    )
    meta(event, branch, store, shanghai_morning(day))
    return event


def step(
    branch: str,
    store: str,
    order_id: str,
    version: int,
    status: str,
    lines: list[tuple[str, str, int]],
    short: list[tuple[str, int]] = (),  # type: ignore[assignment]
) -> order_events_pb2.OrderStatusChanged:
    """lines: (line id, part, quantity); short: (part, quantity)."""
    event = order_events_pb2.OrderStatusChanged(
        order_id=order_id,
        number=f"N{order_id}",
        step="step",
        to_status=status,
        version=version,
        received_at=to_timestamp(shanghai_morning("2026-10-30")),
        stores=[order_events_pb2.OrderStore(branch_id=branch, store_id=store, role="intake")],
        part_lines=[
            order_events_pb2.OrderPartLine(line_id=line, part_id=part, quantity=q, store_id=store)
            for line, part, q in lines
        ],
        short_parts=[
            order_events_pb2.ShortPart(line_id=f"s{n}", part_id=part, quantity=q)
            for n, (part, q) in enumerate(short)
        ],
    )
    meta(event, branch, store, shanghai_morning("2026-11-03"))
    return event


async def publish(runtime: Runtime, event: Message, replay_of: str = "") -> None:
    """As the outbox relay publishes; `replay_of` sends an event again under a new message id
    (a dead letter replayed, or a relay that lost its ack), the event id kept."""
    m = event.meta  # type: ignore[attr-defined]
    if isinstance(event, order_events_pb2.OrderStatusChanged):
        domain, name = "orders", f"order_{event.to_status}"
    elif isinstance(event, inventory_events_pb2.StockMoved):
        domain, name = "inventory", "stock_moved"
    else:
        domain, name = "inventory", "order_parts_changed"
    headers = {
        MSG_ID_HEADER: str(uuid.uuid4()) if replay_of else m.event_id,
        EVENT_TYPE_HEADER: event.DESCRIPTOR.full_name,
    }
    if replay_of:
        headers[EVENT_ID_HEADER] = replay_of
    await runtime.js.publish(
        f"{domain}.v1.{m.branch_id}.{m.store_id or '_'}.{name}",
        event.SerializeToString(),
        headers=headers,
    )


async def figures(
    runtime: Runtime, auth: AuthContext, branch_id: str = "", store_id: str = ""
) -> stock.StockFigures:
    return await stock.get_stock_figures(runtime.uow, auth, branch_id, store_id, FIRST, LAST)


def totals(t: stock.StockTotals) -> tuple[object, ...]:
    return (
        t.inventory_value_fen,
        t.average_inventory_value_fen,
        t.issued_cost_fen,
        t.turnover_days,
        t.slow_moving_value_fen,
        t.parts_cost_fen,
        t.orders_with_issues,
        t.parts_cost_per_order_fen,
    )


@pytest.mark.service("reporting")
async def test_stock_figures_per_store_branch_and_hq_from_events(
    runtime: Runtime,
    chain: Chain,
    inventory_consumer: EventConsumer,
    orders_consumer: EventConsumer,
) -> None:
    s1, s2, z1 = chain.store(chain.sh, 1), chain.store(chain.sh, 2), chain.store(chain.zj, 1)
    w1, w2, w3 = f"W-{s1}", f"W-{s2}", f"W-{z1}"
    issue = moved(chain.sh, s1, w1, "P1", "2026-11-02", "issue", -2, 100, 8)
    returned = moved(chain.sh, s1, w1, "P1", "2026-11-03", "return", 1, 100, 9)
    for event in [
        moved(chain.sh, s1, w1, "P1", "2026-08-01", "receipt", 10, 100, 10),
        moved(chain.sh, s1, w1, "P2", "2026-07-15", "receipt", 3, 500, 3),  # never issued
        moved(chain.sh, s2, w2, "P1", "2026-11-01", "receipt", 4, 120, 4),  # too new to be slow
        moved(chain.zj, z1, w3, "P3", "2026-11-04", "receipt", 2, 1000, 2),
        returned,  # the 3rd's movement arrives before the 2nd's
        issue,
    ]:
        await publish(runtime, event)
    await publish(runtime, issue, replay_of=issue.meta.event_id)  # delivered again

    o1, o2 = chain.order(1), chain.order(2)
    o1_issue = parts_changed(chain.sh, s1, o1, "2026-11-02", "issue", [("L1", "P1", 2, 0, 100)])
    for event in [
        o1_issue,
        parts_changed(chain.sh, s1, o2, "2026-11-02", "issue", [("L3", "P1", 1, 0, 100)]),
        parts_changed(chain.sh, s1, o2, "2026-11-03", "return", [("L3", "P1", 1, 1, 100)]),
        # Issued to O2 with no line on its record.
        parts_changed(chain.sh, s1, o2, "2026-11-03", "issue", [("L4", "P5", 1, 0, 300)]),
        # An older state of L3, announced again later: nothing moves.
        parts_changed(chain.sh, s1, o2, "2026-11-03", "reserve", [("L3", "P1", 0, 0, 100)]),
        # Issued to an order whose record is not known yet: costed, but not called a mismatch.
        parts_changed(chain.sh, s1, chain.order(6), "2026-11-04", "issue", [("L8", "P1", 1, 0, 0)]),
    ]:
        await publish(runtime, event)
    await publish(runtime, o1_issue, replay_of=o1_issue.meta.event_id)
    # The same state under a new event id (a retried request at inventory): nothing moves.
    again = parts_changed(chain.sh, s1, o1, "2026-11-02", "issue", [("L1", "P1", 2, 0, 100)])
    await publish(runtime, again)

    record = [("L1", "P1", 1), ("L2", "P4", 1)]
    for event in [
        step(chain.sh, s1, o1, 5, "closed", record),
        step(chain.sh, s1, o1, 3, "in_repair", record[:1]),  # older, arrives late: ignored
        step(chain.sh, s1, o2, 2, "in_repair", [("L3", "P1", 1)]),
        step(chain.zj, z1, chain.order(3), 4, "waiting_parts", [("L5", "P3", 1)], [("P3", 1)]),
        step(chain.sh, s2, chain.order(4), 4, "waiting_parts", [("L6", "P3", 2)], [("P3", 2)]),
        step(chain.sh, s2, chain.order(4), 5, "in_repair", [("L6", "P3", 2)]),
        step(chain.sh, s2, chain.order(5), 3, "waiting_parts", [("L7", "P1", 1)], [("P1", 1)]),
    ]:
        await publish(runtime, event)

    async def caught_up() -> stock.StockFigures | None:
        hq = await figures(runtime, HQ)
        done = (
            hq.total.inventory_value_fen == 4880
            and hq.total.orders_with_issues == 3
            and len(hq.waiting_parts) == 2
        )
        mismatches, _ = await stock.list_record_mismatches(runtime.uow, HQ, "", "", 10, "")
        return hq if done and len(mismatches) == 3 else None

    hq = await eventually(caught_up)
    # By hand, period 1-4 Nov. W1 held 1000 (P1) + 1500 (P2) before it; P1 went to 800 on
    # the 2nd and 900 on the 3rd: S1 closes 2500, 2300, 2400, 2400 (average 2400), issued
    # 200 less 100 returned. S2 held 480 from the 1st; Z1 2000 from the 4th (average 500).
    # Slow as of the 4th (quiet since 6 Aug): only P2 at W1 (P1 was issued; S2's is new).
    # Parts cost at S1: O1 200, O2 100 - 100 + 300, O6 a part at no cost: 500 over 3 orders.
    assert totals(hq.total) == (4880, 3380, 100, 135.2, 1500, 500, 3, 167)
    assert [(t.branch_id, t.store_id, *totals(t)) for t in hq.by_store] == [
        (chain.sh, s1, 2400, 2400, 100, 96.0, 1500, 500, 3, 167),
        (chain.sh, s2, 480, 480, 0, None, 0, 0, 0, None),
        (chain.zj, z1, 2000, 500, 0, None, 0, 0, 0, None),
    ]
    assert [(w.part_number, w.orders, w.quantity) for w in hq.waiting_parts] == [
        ("P1", 1, 1),
        ("P3", 1, 1),
    ]

    sh_manager = AuthContext("u-sh", "branch_manager", chain.sh)
    sh = await figures(runtime, sh_manager)
    assert totals(sh.total) == (2880, 2880, 100, 115.2, 1500, 500, 3, 167)
    assert [(w.part_number, w.orders) for w in sh.waiting_parts] == [("P1", 1)]
    clerk = AuthContext("u-clerk", "clerk", chain.sh, s2)
    own = await figures(runtime, clerk)
    assert (own.store_id, own.total.inventory_value_fen, own.total.parts_cost_fen) == (s2, 480, 0)
    with pytest.raises(NotFound):
        await figures(runtime, clerk, store_id=s1)
    with pytest.raises(NotFound):
        await figures(runtime, sh_manager, branch_id=chain.zj)
    # Looking back: at the end of 1 Aug only W1's P1 and the July receipt of P2 were held.
    early = await stock.get_stock_figures(runtime.uow, HQ, "", "", "2026-08-01", "2026-08-01")
    assert early.total.inventory_value_fen == 2500
    assert early.total.slow_moving_value_fen == 0

    first, token = await stock.list_record_mismatches(runtime.uow, HQ, "", "", 2, "")
    rest, end = await stock.list_record_mismatches(runtime.uow, HQ, "", "", 2, token)
    found = [
        (m.row.order_id, m.row.order_number, m.row.part_number, m.row.store_id, m.kind)
        for m in first + rest
    ]
    quantities = [(m.row.record_quantity, m.row.issued_quantity) for m in first + rest]
    assert found == [
        (o1, f"N{o1}", "P1", s1, "quantity_differs"),
        (o1, f"N{o1}", "P4", s1, "line_without_issue"),
        (o2, f"N{o2}", "P5", s1, "issued_without_line"),
    ]
    assert quantities == [(1, 2), (1, 0), (0, 1)]
    assert token and end == ""
    zj_manager = AuthContext("u-zj", "branch_manager", chain.zj)
    assert (await stock.list_record_mismatches(runtime.uow, zj_manager, "", "", 0, ""))[0] == []
    with pytest.raises(InvalidInput):
        await stock.list_record_mismatches(runtime.uow, HQ, "", "", 0, "not-a-token")


@pytest.mark.service("reporting")
async def test_a_declined_order_returned_unrepaired_is_no_mismatch(
    runtime: Runtime, chain: Chain, orders_consumer: EventConsumer
) -> None:
    """Its diagnosis planned a part the customer refused: closed after the decline, nothing
    was issued and nothing should have been (found end to end, tests/e2e/test_report_centre)."""
    s1 = chain.store(chain.sh, 1)
    declined, repaired = chain.order(1), chain.order(2)
    planned = [("L1", "P1", 1)]
    refused = step(chain.sh, s1, declined, 4, "declined", planned)
    refused.from_status = "awaiting_approval"
    picked_up = step(chain.sh, s1, declined, 5, "closed", planned)
    picked_up.from_status = "declined"
    # Another order closed with its part never issued: still a mismatch.
    for event in [refused, picked_up, step(chain.sh, s1, repaired, 9, "closed", planned)]:
        await publish(runtime, event)
    sh_manager = AuthContext("u-sh", "branch_manager", chain.sh)

    async def listed() -> list[tuple[str, str]] | None:
        found, _ = await stock.list_record_mismatches(runtime.uow, sh_manager, "", "", 10, "")
        return [(m.row.order_id, m.kind) for m in found] or None

    assert await eventually(listed) == [(repaired, "line_without_issue")]
    # The refused step arriving again later, or the older diagnosis, changes nothing.
    await publish(runtime, refused, replay_of=refused.meta.event_id)
    await publish(runtime, step(chain.sh, s1, declined, 2, "diagnosed", planned))
    await publish(runtime, step(chain.sh, s1, chain.order(3), 9, "closed", planned))
    assert await eventually(lambda: _count(runtime, sh_manager, 2)) == [
        (repaired, "line_without_issue"),
        (chain.order(3), "line_without_issue"),
    ]


async def _count(runtime: Runtime, auth: AuthContext, wanted: int) -> list[tuple[str, str]] | None:
    found, _ = await stock.list_record_mismatches(runtime.uow, auth, "", "", 10, "")
    rows = [(m.row.order_id, m.kind) for m in found]
    return rows if len(rows) == wanted else None


@pytest.mark.service("reporting")
async def test_the_service_consumes_every_inventory_event(runtime: Runtime) -> None:
    inventory = next(c for c in SPEC.consumers(runtime) if c.stream == "INVENTORY")
    assert (inventory.name, inventory.subjects) == ("reporting-inventory", ["inventory.v1.>"])
    assert set(inventory.handlers) == {
        "aftersales.events.v1.StockMoved",
        "aftersales.events.v1.OrderPartsChanged",
    }


async def _apply(runtime: Runtime, events: list[Message]) -> None:
    """Straight through the handlers, one unit of work each (the consumers' part is above)."""
    for event in events:
        async with runtime.uow() as uow:
            if isinstance(event, inventory_events_pb2.StockMoved):
                await stock.stock_moved(uow, event)
            elif isinstance(event, inventory_events_pb2.OrderPartsChanged):
                await stock.order_parts_changed(uow, event)
            else:
                assert isinstance(event, order_events_pb2.OrderStatusChanged)
                await stock.order_parts_recorded(uow, event)
            await uow.commit()


async def _all_figures(runtime: Runtime, chain: Chain) -> list[tuple[object, ...]]:
    scopes = [
        (HQ, "", ""),
        (HQ, chain.sh, ""),
        (HQ, "", chain.store(chain.sh, 1)),
        (HQ, chain.zj, chain.store(chain.zj, 1)),
    ]
    periods = [
        ("2026-11-01", "2026-11-04"),
        ("2026-08-01", "2026-08-01"),
        ("2026-06-15", "2027-02-28"),  # whole months, their edges, and days after the last move
        ("2026-11-03", "2026-11-30"),
    ]
    found = []
    for auth, branch, store in scopes:
        for first, last in periods:
            got = await stock.get_stock_figures(runtime.uow, auth, branch, store, first, last)
            found.append(
                (
                    branch,
                    store,
                    first,
                    totals(got.total),
                    [(t.branch_id, t.store_id, *totals(t)) for t in got.by_store],
                    [(w.part_number, w.orders, w.quantity) for w in got.waiting_parts],
                )
            )
    return found


@pytest.mark.service("reporting")
async def test_an_order_issued_on_several_days_counts_once_and_slow_stock_turns_over_time(
    runtime: Runtime, chain: Chain
) -> None:
    s1, s2 = chain.store(chain.sh, 1), chain.store(chain.sh, 2)
    w1, w2 = f"W-{s1}", f"W-{s2}"
    o1, o2 = chain.order(1), chain.order(2)
    await _apply(
        runtime,
        [
            # Issued on the 3rd first, then the late movement of the 2nd arrives.
            moved(chain.sh, s1, w1, "P1", "2026-11-03", "issue", -1, 100, 8),
            moved(chain.sh, s1, w1, "P1", "2026-08-01", "receipt", 10, 100, 10),
            moved(chain.sh, s1, w1, "P1", "2026-11-02", "issue", -1, 100, 9),
            moved(chain.sh, s2, w2, "P2", "2026-07-01", "receipt", 2, 500, 2),
            # O1: issued by S1 in October and on the 2nd and 3rd, and by S2 on the 3rd.
            parts_changed(chain.sh, s1, o1, "2026-10-20", "issue", [("L1", "P1", 1, 0, 100)]),
            parts_changed(chain.sh, s1, o1, "2026-11-03", "issue", [("L1", "P1", 3, 0, 100)]),
            parts_changed(chain.sh, s1, o1, "2026-11-04", "issue", [("L1", "P1", 4, 0, 100)]),
            parts_changed(chain.sh, s2, o1, "2026-11-03", "issue", [("L2", "P2", 1, 0, 500)]),
            parts_changed(chain.sh, s1, o1, "2026-11-02", "issue", [("L1", "P1", 2, 0, 100)]),
            parts_changed(chain.sh, s2, o2, "2026-11-04", "issue", [("L3", "P2", 1, 0, 500)]),
            step(chain.sh, s2, o2, 3, "waiting_parts", [("L3", "P2", 2)], [("P2", 1)]),
        ],
    )
    nov = await figures(runtime, HQ)
    # L1's counter went 1 (October) → 3 on the 3rd, 4 on the 4th; its state of the 2nd came late
    # and moved nothing. O1 counts once (S1 on the 3rd and 4th, S2 the 3rd; October), O2 once.
    assert (nov.total.parts_cost_fen, nov.total.orders_with_issues) == (1300, 2)
    assert [(t.store_id, t.parts_cost_fen, t.orders_with_issues) for t in nov.by_store] == [
        (s1, 300, 1),
        (s2, 1000, 2),
    ]
    # P1 was issued in the window; P2 (held since July, never issued) is slow at S2.
    assert nov.total.slow_moving_value_fen == 1000
    late = await stock.get_stock_figures(runtime.uow, HQ, "", "", "2027-01-01", "2027-02-28")
    # 90 days after P1's last issue (3 Nov) it is slow too: 800 more.
    assert (late.total.slow_moving_value_fen, late.total.inventory_value_fen) == (1800, 1800)
    oct_nov = await stock.get_stock_figures(runtime.uow, HQ, "", "", "2026-10-01", "2026-11-30")
    assert oct_nov.total.orders_with_issues == 2
    assert [(w.part_number, w.orders, w.quantity) for w in oct_nov.waiting_parts] == [("P2", 1, 1)]
    # O2 is short no more: its part came.
    await _apply(runtime, [step(chain.sh, s2, o2, 4, "in_repair", [("L3", "P2", 2)])])
    assert (await figures(runtime, HQ)).waiting_parts == ()


@pytest.mark.service("reporting")
async def test_the_migration_fills_the_rollups_the_handlers_keep(
    runtime: Runtime, chain: Chain
) -> None:
    """Handlers' rollups, taken back to the store days of 0007 and filled again by 0008: the
    same figures at every level over every kind of period."""
    s1, s2, z1 = chain.store(chain.sh, 1), chain.store(chain.sh, 2), chain.store(chain.zj, 1)
    await _apply(
        runtime,
        [
            moved(chain.sh, s1, f"W-{s1}", "P1", "2026-08-01", "receipt", 10, 100, 10),
            moved(chain.sh, s1, f"W-{s1}", "P1", "2026-11-03", "issue", -1, 100, 8),
            moved(chain.sh, s1, f"W-{s1}", "P1", "2026-11-02", "issue", -1, 100, 9),
            moved(chain.sh, s1, f"W-{s1}", "P2", "2026-06-20", "receipt", 3, 500, 3),
            moved(chain.sh, "", f"W-{chain.sh}", "P2", "2026-09-09", "receipt", 1, 400, 1),
            moved(chain.sh, s2, f"W-{s2}", "P3", "2026-11-01", "receipt", 4, 120, 4),
            moved(chain.zj, z1, f"W-{z1}", "P3", "2026-11-04", "receipt", 2, 1000, 2),
            parts_changed(
                chain.sh, s1, chain.order(1), "2026-10-30", "issue", [("L1", "P1", 1, 0, 100)]
            ),
            parts_changed(
                chain.sh, s1, chain.order(1), "2026-11-02", "issue", [("L1", "P1", 2, 0, 100)]
            ),
            parts_changed(
                chain.sh, s2, chain.order(1), "2026-11-03", "issue", [("L2", "P3", 1, 0, 120)]
            ),
            parts_changed(
                chain.zj, z1, chain.order(2), "2026-11-04", "return", [("L3", "P3", 1, 1, 1000)]
            ),
            step(chain.zj, z1, chain.order(3), 4, "waiting_parts", [("L5", "P3", 1)], [("P3", 1)]),
            step(chain.sh, s2, chain.order(4), 4, "waiting_parts", [("L6", "P3", 2)], [("P3", 2)]),
        ],
    )
    kept = await _all_figures(runtime, chain)

    def down_and_up(connection: Connection) -> None:
        config = migrations.alembic_config(SPEC.migrations_dir, connection, runtime.db.schema)
        command.downgrade(config, "0007_dashboard_rollups")
        command.upgrade(config, "head")

    async with runtime.db.engine.connect() as connection:
        await connection.run_sync(down_and_up)
        await connection.commit()
    assert await _all_figures(runtime, chain) == kept


def _history(chain: Chain, orders: int) -> list[Message]:
    """Movements of a few parts, orders issued to and returned from, steps waiting for parts."""
    s1, s2 = chain.store(chain.sh, 1), chain.store(chain.sh, 2)
    found: list[Message] = [
        moved(chain.sh, s1, f"W-{s1}", "P1", "2026-08-01", "receipt", 50, 100, 50),
        moved(chain.sh, s2, f"W-{s2}", "P2", "2026-07-01", "receipt", 20, 300, 20),
    ]
    for n in range(orders):
        store, part, cost = (s1, "P1", 100) if n % 2 else (s2, "P2", 300)
        day = f"2026-11-{1 + n % 4:02d}"
        order_id = chain.order(n)
        # Apart in time: the ledger's order, not the event ids the two chains differ by.
        issue = moved(chain.sh, store, f"W-{store}", part, day, "issue", -1, cost, 40 - n)
        issue.meta.occurred_at.CopyFrom(to_timestamp(shanghai_morning(day) + timedelta(minutes=n)))
        found += [
            issue,
            parts_changed(chain.sh, store, order_id, day, "issue", [("L1", part, 1, 0, cost)]),
            step(chain.sh, store, order_id, 3, "waiting_parts", [("L1", part, 2)], [(part, 1)]),
            step(chain.sh, store, order_id, 4 + n % 2, "in_repair", [("L1", part, 2)]),
        ]
    return found


def _anonymous(found: list[tuple[object, ...]], chain: Chain) -> str:
    return repr(found).replace(chain.tag, "")


@pytest.mark.service("reporting")
async def test_a_batch_in_any_order_gives_the_figures_of_one_event_at_a_time_in_fixed_statements(
    runtime: Runtime,
) -> None:
    one_by_one, batched = Chain.unique(), Chain.unique()
    await _apply(runtime, _history(one_by_one, 12))
    events = _history(batched, 12)
    async with runtime.uow() as uow:
        for event in reversed(events):
            if isinstance(event, inventory_events_pb2.StockMoved):
                await stock.stock_moved(uow, event)
            elif isinstance(event, inventory_events_pb2.OrderPartsChanged):
                await stock.order_parts_changed(uow, event)
            else:
                assert isinstance(event, order_events_pb2.OrderStatusChanged)
                await stock.order_parts_recorded(uow, event)
        await uow.commit()

    async def figures_of(chain: Chain) -> str:
        sh = AuthContext("u-sh", "branch_manager", chain.sh)
        found = []
        for first, last in (("2026-11-01", "2026-11-04"), ("2026-11-03", "2026-12-31")):
            got = await stock.get_stock_figures(runtime.uow, sh, "", "", first, last)
            found.append((totals(got.total), [totals(t) for t in got.by_store], got.waiting_parts))
        mismatches, _ = await stock.list_record_mismatches(runtime.uow, sh, "", "", 100, "")
        found.append(tuple((m.row.order_id, m.row.part_number, m.kind) for m in mismatches))
        return _anonymous(found, chain)

    assert await figures_of(batched) == await figures_of(one_by_one)

    async def statements(orders: int) -> int:
        chain = Chain.unique()
        events = _history(chain, orders)
        async with runtime.uow() as uow:
            with statements_sent(runtime.db) as sent:
                for event in events:
                    if isinstance(event, inventory_events_pb2.StockMoved):
                        await stock.stock_moved(uow, event)
                    elif isinstance(event, inventory_events_pb2.OrderPartsChanged):
                        await stock.order_parts_changed(uow, event)
                    else:
                        assert isinstance(event, order_events_pb2.OrderStatusChanged)
                        await stock.order_parts_recorded(uow, event)
                await uow.commit()
        return len(sent)

    assert await statements(3) == await statements(40)
