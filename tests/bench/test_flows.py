"""The bench's stateful flows, without the system: the orders they take in are valid and their
own, the gateway's request time is read from its /metrics, and the clients share the work."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from servicekit.identifiers import imei_problem, mobile_problem
from tests.bench import run_bench


def test_paid_repair_orders_are_valid_out_of_warranty_and_unique() -> None:
    orders = [run_bench.paid_repair_order(7, serial) for serial in range(1, 200)]
    for order in orders:
        assert imei_problem(order["device"]["imei"]) is None
        assert mobile_problem(order["customer"]["phone"]) is None
        assert order["device"]["purchase_date"] is None  # no proof: the customer pays
    assert len({o["device"]["imei"] for o in orders}) == len(orders)


def test_server_seconds_sums_every_route_but_the_scrapes() -> None:
    registry = CollectorRegistry()
    duration = Histogram(
        "aftersales_http_request_duration_seconds", "", ["method", "route"], registry=registry
    )
    duration.labels("POST", "/api/v1/repair-orders").observe(0.25)
    duration.labels("POST", "/api/v1/repair-orders/{order_id}/qc").observe(0.5)
    duration.labels("GET", "/metrics").observe(4.0)
    assert run_bench.server_seconds(generate_latest(registry).decode()) == 0.75


async def test_concurrently_runs_each_item_once_with_that_many_clients() -> None:
    seen: list[int] = []
    running = peak = 0

    async def one(item: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        seen.append(item)
        running -= 1

    durations, seconds = await run_bench.concurrently(3, list(range(10)), one)
    assert sorted(seen) == list(range(10)) and len(durations) == 10
    assert peak == 3 and seconds >= 0.04  # 10 items, 3 at a time: 4 rounds at least
