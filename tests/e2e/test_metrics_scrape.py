"""/metrics of every running process (the four services and the gateway), scraped after an
order went through: promtool's lint passes on each, and the figures operators alert and
draw dashboards on are there."""

from __future__ import annotations

import httpx

from devtools.system import SERVICES, LocalSystem
from servicekit.testing import eventually
from tests.alerts import promtool
from tests.e2e.conftest import Api, repair_order

# The series each process must show once an order has gone through (a labelled one appears
# with its first child; a histogram by its _count).
EXPECTED = {
    "gateway": ("aftersales_http_requests_total", "aftersales_http_request_duration_seconds_count"),
    "orders": (
        "aftersales_grpc_server_handled_total",
        "aftersales_grpc_server_handling_seconds_count",
        "aftersales_orders_received_total",
        "aftersales_outbox_published_total",
        "aftersales_outbox_oldest_pending_age_seconds",
        "aftersales_events_published_total",
        "aftersales_db_pool_connections_in_use",
        "aftersales_db_pool_connections_max",
        "aftersales_jetstream_account_storage_used_bytes",
        "aftersales_jetstream_stream_bytes",
        "aftersales_consumer_pending_messages",
    ),
    "inventory": ("aftersales_consumer_pending_messages", "aftersales_outbox_pending_events"),
    "customers": ("aftersales_inbox_messages_total", "aftersales_event_lag_seconds_count"),
    "reporting": (
        "aftersales_inbox_messages_total",
        "aftersales_consumer_pending_messages",
        "aftersales_consumer_ack_pending_messages",
        "aftersales_jetstream_stream_messages",
    ),
}


def _series(text: str) -> set[str]:
    """The names of the samples in an exposition (not the families merely declared)."""
    return {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def _scrape(client: httpx.AsyncClient, url: str) -> str:
    reply = await client.get(url)
    assert reply.status_code == 200, (url, reply.status_code)
    return reply.text


async def test_every_process_metrics_pass_promtool(system: LocalSystem, api: Api) -> None:
    promtool.promtool()
    created = await api.post("sh001.clerk", "/api/v1/repair-orders", repair_order())
    assert created.status_code == 201, created.text
    urls = {"gateway": f"{system.gateway_url}/metrics"} | {
        name: f"http://127.0.0.1:{system.config.metrics_ports[name]}/metrics" for name in SERVICES
    }
    async with httpx.AsyncClient(timeout=10) as client:
        missing: list[tuple[str, str]] = []

        async def all_there() -> dict[str, str] | None:
            scraped = {name: await _scrape(client, url) for name, url in urls.items()}
            missing[:] = [
                (name, series)
                for name, expected in EXPECTED.items()
                for series in expected
                if series not in _series(scraped[name])
            ]
            return None if missing else scraped

        try:
            scraped = await eventually(all_there, within=40, interval=0.5)
        except AssertionError:
            raise AssertionError(f"missing from /metrics: {missing}") from None
    for name, text in scraped.items():
        checked = promtool.run("check", "metrics", stdin=text.encode())
        assert checked.returncode == 0, f"{name}: {checked.stdout}"
