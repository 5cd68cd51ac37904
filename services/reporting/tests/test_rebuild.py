"""Rebuilding reporting's read models from the archive, with a real NATS server and a real
database: the figures the live consumer built come back the same, also once the 30-day stream
has lost the events, and a figure the live consumer never computed is backfilled."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from servicekit import bus
from servicekit.auth import AuthContext
from servicekit.db import async_url
from servicekit.inbox import EventConsumer, Handlers
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, eventually, service_settings
from services.reporting import handlers, rebuild
from services.reporting.domain.kpis import Kpis
from services.reporting.service import ORDERS_CONSUMER, SPEC
from services.reporting.tests.factories import order_received, publish

HQ = AuthContext("u-analyst", "hq_analyst")
WEEK = ("2026-11-25", "2026-11-29")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def branches() -> tuple[str, str]:
    """Branches of this test's own: the ORDERS stream and the archive are shared."""
    tag = uuid.uuid4().hex[:8].upper()
    return f"SH{tag}", f"ZJ{tag}"


@pytest.fixture
async def live(
    runtime: Runtime, branches: tuple[str, str]
) -> AsyncIterator[Callable[..., Awaitable[EventConsumer]]]:
    """Starts the live consumer of this test's branches with the handlers of some version."""
    started: list[tuple[EventConsumer, asyncio.Task[None]]] = []

    async def start(consumer_handlers: Handlers, name: str = "") -> EventConsumer:
        consumer = runtime.consumer(
            name or f"reporting-test-{branches[0]}",
            "ORDERS",
            [f"orders.v1.{branch}.>" for branch in branches],
            consumer_handlers,
        )
        started.append((consumer, asyncio.create_task(consumer.run(runtime.js))))
        return consumer

    yield start
    for consumer, task in started:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await runtime.js.delete_consumer("ORDERS", consumer.name)


async def publish_week(runtime: Runtime, branches: tuple[str, str]) -> int:
    sh, zj = branches
    orders = [
        (sh, f"{sh}-001", "2026-11-26T15:59:59", "repair"),  # the 26th in Shanghai
        (sh, f"{sh}-001", "2026-11-26T16:30:00", "repair"),  # the 27th
        (sh, f"{sh}-001", "2026-11-27T03:00:00", "swap"),
        (sh, f"{sh}-002", "2026-11-27T10:00:00", "repair"),
        (zj, f"{zj}-001", "2026-11-27T15:59:00", "software"),
        (zj, f"{zj}-001", "2026-11-28T01:00:00", "repair"),
    ]
    for branch, store, received_at, service_type in orders:
        await publish(runtime.js, order_received(branch, store, utc(received_at), service_type))
    # A branch-level order no store's figures can take: skipped live and in a rebuild alike.
    await publish(runtime.js, order_received(sh, "", utc("2026-11-27T03:00:00")))
    return len(orders)


async def figures(runtime: Runtime, branches: tuple[str, str]) -> list[Kpis]:
    """The week's KPIs of each branch and of each day of it, as GetKpis answers them."""
    scopes = [(branch, day, day) for branch in branches for day in _days()]
    scopes += [(branch, *WEEK) for branch in branches]
    return [
        await handlers.get_kpis(runtime.uow, HQ, branch, "", first, last)
        for branch, first, last in scopes
    ]


def _days() -> list[str]:
    return [f"2026-11-{day}" for day in range(25, 30)]


async def orders_counted(runtime: Runtime, branches: tuple[str, str]) -> int:
    return sum(k.orders_received for k in (await figures(runtime, branches))[-2:])


async def all_archived(runtime: Runtime, branches: tuple[str, str], count: int) -> None:
    async def there() -> bool:
        total = 0
        for branch in branches:
            info = await runtime.js.stream_info(
                bus.ARCHIVE_STREAM, subjects_filter=f"orders.v1.{branch}.>"
            )
            total += sum((info.state.subjects or {}).values())
        return total >= count

    await eventually(there)


@pytest.mark.service("reporting")
async def test_a_rebuild_from_the_archive_gives_the_same_figures(
    runtime: Runtime,
    branches: tuple[str, str],
    live: Callable[..., Awaitable[EventConsumer]],
) -> None:
    await live(handlers.ORDER_EVENTS)
    orders = await publish_week(runtime, branches)

    async def counted() -> bool:
        return await orders_counted(runtime, branches) == orders

    await eventually(counted)
    built_live = await figures(runtime, branches)
    await all_archived(runtime, branches, orders + 1)

    done = await rebuild.rebuild(runtime, SPEC, batch_size=4)

    assert await figures(runtime, branches) == built_live
    assert done.applied >= orders
    assert done.unprocessable >= 1  # the branch-level order

    # The 30-day stream forgets them; the archive still has them all.
    for branch in branches:
        await runtime.js.purge_stream("ORDERS", subject=f"orders.v1.{branch}.>")
        info = await runtime.js.stream_info("ORDERS", subjects_filter=f"orders.v1.{branch}.>")
        assert not info.state.subjects
    await rebuild.rebuild(runtime, SPEC)
    assert await figures(runtime, branches) == built_live


@pytest.mark.service("reporting")
async def test_a_rebuild_while_the_consumer_runs_counts_every_order_once(
    runtime: Runtime, branches: tuple[str, str], live: Callable[..., Awaitable[EventConsumer]]
) -> None:
    # The service's own consumer (its inbox rows are the ones the rebuild keeps true), on this
    # test's branches.
    consumer = await live(handlers.ORDER_EVENTS, ORDERS_CONSUMER)
    sh = branches[0]

    async def take_orders(count: int) -> None:
        for _ in range(count):
            await publish(runtime.js, order_received(sh, f"{sh}-001", utc("2026-11-27T03:00")))

    await take_orders(20)
    rebuilding = asyncio.create_task(rebuild.rebuild(runtime, SPEC, batch_size=3))
    await take_orders(20)
    await rebuilding

    async def caught_up() -> bool:
        info = await runtime.js.consumer_info("ORDERS", consumer.name)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(caught_up)
    assert await orders_counted(runtime, branches) == 40


@pytest.mark.service("reporting")
async def test_a_figure_added_later_is_backfilled_for_the_history_before_it(
    runtime: Runtime,
    branches: tuple[str, str],
    live: Callable[..., Awaitable[EventConsumer]],
) -> None:
    # An older version counted nothing of these events: its consumer acked them unread.
    await live({})
    orders = await publish_week(runtime, branches)
    await all_archived(runtime, branches, orders + 1)
    assert await orders_counted(runtime, branches) == 0

    await rebuild.rebuild(runtime, SPEC)

    assert await orders_counted(runtime, branches) == orders
    sh_week = (await figures(runtime, branches))[-2]
    assert [(s.store_id, s.orders_received) for s in sh_week.by_store] == [
        (f"{branches[0]}-001", 3),
        (f"{branches[0]}-002", 1),
    ]


def test_a_rebuild_empties_the_read_models_only() -> None:
    names = {table.name for table in rebuild.read_model_tables(SPEC)}
    assert {"order_facts", "order_rollups", "open_orders", "turnaround_sketches"} <= names
    assert not names & {"outbox", "inbox", "consumer_failures"}
    assert "rebuild" in SPEC.commands


async def test_the_command_takes_no_arguments() -> None:
    assert await rebuild.command(SPEC, ["--now"]) == 2


@pytest.mark.service("reporting")
async def test_reporting_rebuilds_as_its_own_nats_user(
    db_target: DatabaseTarget, nats_server: NatsServer, branches: tuple[str, str]
) -> None:
    """The permission table lets reporting keep and read the archive, and nothing more."""
    settings = dataclasses.replace(
        service_settings("reporting", db_target, nats_server.url),
        nats_auth=nats_server.auth("reporting"),
    )
    runtime = await open_runtime(SPEC, settings)
    try:
        harness = await nats_server.connect()
        sh = branches[0]
        await publish(harness.jetstream(), order_received(sh, f"{sh}-001", utc("2026-11-27T03:00")))
        await harness.close()
        await all_archived(runtime, branches, 1)

        await rebuild.rebuild(runtime, SPEC)

        assert await orders_counted(runtime, branches) == 1
    finally:
        await close_runtime(runtime)


@pytest.mark.service("reporting")
async def test_the_command_rebuilds_and_says_what_it_did(
    runtime: Runtime,
    db_target: DatabaseTarget,
    nats_server: NatsServer,
    branches: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m services.reporting rebuild`, in the service's environment, as its NATS user."""
    sh = branches[0]
    await publish(runtime.js, order_received(sh, f"{sh}-001", utc("2026-11-27T03:00")))
    await all_archived(runtime, branches, 1)
    for name, value in {
        "DATABASE_URL": async_url(db_target.url),
        "DB_SCHEMA": db_target.schema or "",
        **nats_server.env("reporting"),
    }.items():
        monkeypatch.setenv(name, value)

    assert await rebuild.command(SPEC, []) == 0

    assert await orders_counted(runtime, branches) == 1
    said = capsys.readouterr().out
    assert "order_facts" in said and "from ARCHIVE up to sequence" in said
