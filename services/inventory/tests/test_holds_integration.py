"""Whose a hold is, against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL):
an attempt's undo lets go only of what no other attempt claims, the order's events decide the
attempts and let an ended order's holds go, and the operator's reconcile-holds lists and lets
go of holds no live step stands behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from aftersales.events.v1.events_pb2 import OrderReceived
from aftersales.events.v1.order_events_pb2 import OrderStatusChanged
from servicekit.db import async_url
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from servicekit.timeutil import utc_now
from services.inventory import commands
from services.inventory.adapters.orm import events_heard, inbox, order_part_claims
from services.inventory.adapters.repository import holds as held_by
from services.inventory.domain.holds import EVENT_SETTLE, STANDING, Attempt
from services.inventory.handlers import holds, work_order_parts
from services.inventory.handlers.holds import ORDER_HOLDS_CONSUMER
from services.inventory.service import SPEC
from services.inventory.tests.test_order_parts_integration import (
    TECH,
    WAREHOUSE,
    ledger_rows,
    level,
    one,
)

A, B = Attempt("a", 5), Attempt("b", 5)


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


async def reserved(runtime: Runtime, order_id: str) -> dict[str, int]:
    found = await work_order_parts.get_order_parts(runtime.uow, TECH, order_id)
    return {x.line_id: x.reserved for x in found.lines}


async def claims(runtime: Runtime, order_id: str) -> set[tuple[str, bool]]:
    async with runtime.uow() as uow:
        return {(x.attempt_id, x.committed) for x in await held_by.claims_of(uow.session, order_id)}


async def hear(runtime: Runtime, event: OrderStatusChanged) -> None:
    async with runtime.uow() as uow:
        await holds.order_moved(uow, event)
        await uow.commit()


def moved(
    order_id: str,
    version: int,
    status: str,
    attempt: str = "",
    created_at: datetime | None = None,
) -> OrderStatusChanged:
    event = OrderStatusChanged(
        order_id=order_id, version=version, to_status=status, parts_attempt=attempt
    )
    event.meta.occurred_at.FromDatetime(created_at or utc_now())
    return event


async def claimed_at(runtime: Runtime, order_id: str) -> datetime:
    async with runtime.uow() as uow:
        [claim] = await held_by.claims_of(uow.session, order_id)
    return claim.claimed_at


@pytest.mark.service("inventory")
async def test_an_undo_lets_go_only_of_what_no_other_attempt_claims(runtime: Runtime) -> None:
    start = await level(runtime)
    uow = runtime.uow
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), A)
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), B)
    assert await claims(runtime, "o-1") == {("a", False), ("b", False)}
    # A made the hold and lost: its undo leaves B's part held.
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], A)
    assert await reserved(runtime, "o-1") == {"l-1": 1}
    # Undoing again, or undoing for an attempt that never claimed the line: nothing.
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], A)
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1", "l-9"], Attempt("c", 5))
    assert await reserved(runtime, "o-1") == {"l-1": 1}
    # The last claim's undo lets it go.
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], B)
    assert await reserved(runtime, "o-1") == {"l-1": 0}
    assert (await level(runtime)).reserved == start.reserved


@pytest.mark.service("inventory")
async def test_the_orders_standing_hold_outlives_a_later_attempts_undo(runtime: Runtime) -> None:
    uow = runtime.uow
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one())
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), A)
    assert await claims(runtime, "o-1") == {(STANDING, True), ("a", False)}
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], A)
    assert await reserved(runtime, "o-1") == {"l-1": 1}
    # The order's own release lets it go, and every claim with it.
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"])
    assert await reserved(runtime, "o-1") == {"l-1": 0}
    assert await claims(runtime, "o-1") == set()


@pytest.mark.service("inventory")
async def test_undoing_an_issue_gives_it_back_only_when_no_other_attempt_claims_it(
    runtime: Runtime,
) -> None:
    start, uow = await level(runtime), runtime.uow
    for attempt in (A, B):
        await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), attempt)
        await work_order_parts.issue_parts(uow, TECH, "o-1", ["l-1"], attempt)
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], A)
    assert (await level(runtime)).on_hand == start.on_hand - 1
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], B)
    assert (await level(runtime)).on_hand == start.on_hand
    cost = start.average_cost_fen
    assert await ledger_rows(runtime, "o-1") == [("issue", -1, cost), ("return", 1, cost)]


@pytest.mark.service("inventory")
async def test_the_orders_event_keeps_the_written_attempt_and_drops_the_lost_one(
    runtime: Runtime,
) -> None:
    uow = runtime.uow
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), A)
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), B)
    await hear(runtime, moved("o-1", 5, "approved", "b"))
    assert await claims(runtime, "o-1") == {("b", True)}
    assert await reserved(runtime, "o-1") == {"l-1": 1}
    # A's undo arriving late changes nothing.
    await work_order_parts.release_parts(uow, TECH, "o-1", ["l-1"], A)
    assert await reserved(runtime, "o-1") == {"l-1": 1}
    # Redelivered late, an older event does not move the order's state back.
    await hear(runtime, moved("o-1", 6, "in_repair"))
    await hear(runtime, moved("o-1", 5, "approved", "b"))
    async with runtime.uow() as u:
        assert await held_by.order_state(u.session, "o-1") == (6, "in_repair")


@pytest.mark.service("inventory")
async def test_a_step_that_moved_no_parts_decides_the_race_against_every_attempt(
    runtime: Runtime,
) -> None:
    await work_order_parts.reserve_parts(runtime.uow, TECH, "o-1", WAREHOUSE, one(), A)
    await hear(runtime, moved("o-1", 5, "diagnosed"))
    assert await reserved(runtime, "o-1") == {"l-1": 0}


@pytest.mark.service("inventory")
async def test_an_ended_orders_holds_go_at_every_store_of_it(runtime: Runtime) -> None:
    uow = runtime.uow
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one())
    await work_order_parts.reserve_parts(uow, TECH, "o-1/SH-002", WAREHOUSE, one())
    await work_order_parts.reserve_parts(uow, TECH, "o-2", WAREHOUSE, one())
    await hear(runtime, moved("o-1", 9, "cancelled"))
    assert await reserved(runtime, "o-1") == {"l-1": 0}
    assert await reserved(runtime, "o-1/SH-002") == {"l-1": 0}
    assert await reserved(runtime, "o-2") == {"l-1": 1}


@pytest.mark.service("inventory")
async def test_reconcile_holds_lists_loose_holds_and_lets_them_go(
    runtime: Runtime,
    db_target: DatabaseTarget,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uow = runtime.uow
    await work_order_parts.reserve_parts(uow, TECH, "o-1", WAREHOUSE, one(), A)
    await work_order_parts.reserve_parts(uow, TECH, "o-2", WAREHOUSE, one(), B)
    await hear(runtime, moved("o-2", 5, "approved", "b"))
    await work_order_parts.reserve_parts(uow, TECH, "o-3", WAREHOUSE, one())
    async with runtime.db.session() as session:
        hour_ago = utc_now() - timedelta(hours=1)
        await session.execute(update(order_part_claims).values(claimed_at=hour_ago))
        await session.commit()
    await hear(runtime, moved("o-3", 7, "closed"))  # its release failed: put it back held
    await work_order_parts.reserve_parts(uow, TECH, "o-3", WAREHOUSE, one())
    async with runtime.db.session() as session:  # what was heard has settled
        await session.execute(update(events_heard).values(noted_at=hour_ago))
        await session.commit()
    monkeypatch.setenv("DATABASE_URL", async_url(db_target.url))
    if db_target.schema:
        monkeypatch.setenv("DB_SCHEMA", db_target.schema)
    monkeypatch.setenv("HOLD_GRACE_SECONDS", "600")

    assert await commands.reconcile_holds_command([]) == 1
    listed = capsys.readouterr().out.splitlines()
    assert [row.split("\t")[0::5] for row in listed[1:-1]] == [
        ["o-1", "attempt never written: a@v5"],
        ["o-3", "order closed"],
    ]
    assert listed[-1] == "2 loose holds"
    assert await commands.reconcile_holds_command(["--release"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 loose holds"
    assert await reserved(runtime, "o-1") == {"l-1": 0}
    assert await reserved(runtime, "o-2") == {"l-1": 1}
    assert await reserved(runtime, "o-3") == {"l-1": 0}


@pytest.mark.service("inventory")
async def test_a_stalled_orders_stream_keeps_an_unconfirmed_hold_past_the_grace(
    runtime: Runtime,
) -> None:
    """Orders' outbox or the broker is away longer than the grace: nothing says the attempt
    was not written, so its hold stays until events created after claim + grace are heard."""
    grace = timedelta(minutes=10)
    await work_order_parts.reserve_parts(runtime.uow, TECH, "o-1", WAREHOUSE, one(), A)
    await work_order_parts.reserve_parts(runtime.uow, TECH, "o-2", WAREHOUSE, one(), B)
    async with runtime.db.session() as session:
        await session.execute(update(order_part_claims).values(claimed_at=utc_now() - 2 * grace))
        await session.commit()
    claim = await claimed_at(runtime, "o-1")
    await hear(runtime, moved("o-2", 5, "approved", "b", created_at=claim))
    # The keeper's rounds, once what was heard has settled.
    later = utc_now() + EVENT_SETTLE
    # The only event heard was created before the claims aged: the stream is stalled since.
    assert await holds.loose_holds(runtime.uow, grace, later) == []
    assert await holds.let_go_stale(runtime.uow, grace, later) == 0
    await hear(runtime, moved("o-9", 2, "diagnosed", created_at=claim + grace / 2))
    assert await holds.let_go_stale(runtime.uow, grace, utc_now() + EVENT_SETTLE) == 0
    assert await reserved(runtime, "o-1") == {"l-1": 1}

    # Orders' events flowed on: one created the grace after the claim is heard, without a.
    await hear(runtime, moved("o-9", 3, "approved", created_at=claim + grace))
    # Not at once: an earlier event may still be in flight at another replica.
    assert await holds.let_go_stale(runtime.uow, grace) == 0
    later = utc_now() + EVENT_SETTLE
    # Nor while an orders event fails and waits for its retry: it may name the attempt.
    failing = {"consumer": ORDER_HOLDS_CONSUMER, "event_id": "e-failing"}
    async with runtime.db.session() as session:
        await session.execute(
            held_by.consumer_failures.insert(),
            {
                **failing,
                "errors": 1,
                "attempts": 1,
                "first_failed_at": later,
                "last_failed_at": later,
                "last_error": "OperationalError: lock timeout",
            },
        )
        await session.commit()
    assert await holds.loose_holds(runtime.uow, grace, later) == []
    assert await holds.let_go_stale(runtime.uow, grace, later) == 0
    async with runtime.db.session() as session:
        await session.execute(inbox.insert(), {**failing, "handled_at": later})
        await session.commit()

    [loose] = await holds.loose_holds(runtime.uow, grace, later)
    assert (loose.line.order_id, loose.reason) == ("o-1", "attempt never written: a@v5")
    assert await holds.let_go_stale(runtime.uow, grace, later) == 1
    assert await reserved(runtime, "o-1") == {"l-1": 0}
    # The confirmed attempt is never let go, however far the events flow.
    await hear(runtime, moved("o-9", 4, "repairing", created_at=claim + 100 * grace))
    assert await holds.let_go_stale(runtime.uow, grace, utc_now() + EVENT_SETTLE) == 0
    assert await reserved(runtime, "o-2") == {"l-1": 1}
    # A late event, created before the newest heard, moves nothing back.
    await hear(runtime, moved("o-8", 2, "diagnosed", created_at=claim))
    async with runtime.uow() as uow:
        heard = await held_by.heard_until(uow.session, "ORDERS")
    assert heard is not None and heard.newest == claim + 100 * grace


@pytest.mark.service("inventory")
async def test_a_new_order_heard_shows_orders_events_flowed_past_an_attempt(
    runtime: Runtime,
) -> None:
    grace = timedelta(minutes=10)
    await work_order_parts.reserve_parts(runtime.uow, TECH, "o-1", WAREHOUSE, one(), A)
    claim = await claimed_at(runtime, "o-1")
    received = OrderReceived(order_id="o-9")
    received.meta.occurred_at.FromDatetime(claim + grace)
    async with runtime.uow() as uow:
        await holds.order_received(uow, received)
        await uow.commit()
    assert await holds.let_go_stale(runtime.uow, grace, utc_now() + EVENT_SETTLE) == 1
    assert await reserved(runtime, "o-1") == {"l-1": 0}
