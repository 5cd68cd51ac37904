"""Every Prometheus metric of the platform, declared in this one place. Names follow promtool's
rules: a unit suffix, `_total` on counters, a single `aftersales_` namespace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

GRPC_SERVER_HANDLED = Counter(
    "aftersales_grpc_server_handled_total",
    "gRPC calls handled, by method and status code",
    ["service", "method", "code"],
)
GRPC_SERVER_DURATION = Histogram(
    "aftersales_grpc_server_handling_seconds",
    "Time to handle a gRPC call",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "aftersales_http_requests_total",
    "HTTP requests answered by the gateway, by route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "aftersales_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
OUTBOX_PUBLISHED = Counter(
    "aftersales_outbox_published_total", "Outbox events published to JetStream", ["service"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "aftersales_outbox_publish_failures_total",
    "Outbox relay rounds that failed to publish (retried)",
    ["service"],
)
OUTBOX_PENDING = Gauge(
    "aftersales_outbox_pending_events", "Outbox events committed but not yet published", ["service"]
)
OUTBOX_PARKED = Counter(
    "aftersales_outbox_parked_total",
    "Outbox events set aside after the broker refused them again and again (kept for replay)",
    ["service"],
)
OUTBOX_BROKER_WAITS = Counter(
    "aftersales_outbox_broker_waits_total",
    "Outbox relay rounds stopped because the broker could not take events (away, full)",
    ["service"],
)
OUTBOX_BROKER_WAITING = Gauge(
    "aftersales_outbox_broker_waiting",
    "1 while the outbox relay waits for a broker that cannot take events, else 0",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "aftersales_outbox_oldest_pending_age_seconds",
    "Age of the oldest outbox event committed but not yet published (0 when none), at the last"
    " look",
    ["service"],
)
EVENTS_PUBLISHED = Counter(
    "aftersales_events_published_total",
    "Events the outbox relay published, by protobuf type: committed business facts (a stock"
    " movement is one aftersales.events.v1.StockMoved)",
    ["service", "event_type"],
)
INBOX_HANDLED = Counter(
    "aftersales_inbox_messages_total",
    "Messages taken by a consumer, by outcome (handled, duplicate, ignored, retried, poison:"
    " sent to the dead letters)",
    ["service", "consumer", "outcome"],
)
DEAD_LETTERS = Counter(
    "aftersales_dead_letters_total",
    "Messages a consumer sent to the DEAD_LETTERS stream, by kind (undecodable, unprocessable,"
    " failing)",
    ["service", "consumer", "kind"],
)
CONSUMER_WAITING = Gauge(
    "aftersales_consumer_waiting_for_database",
    "1 while a consumer has stopped fetching because its database does not answer",
    ["service", "consumer"],
)
CONSUMER_PENDING = Gauge(
    "aftersales_consumer_pending_messages",
    "Messages of its stream a durable consumer has not been given yet (JetStream num_pending),"
    " at the last look",
    ["service", "consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "aftersales_consumer_ack_pending_messages",
    "Messages given to a durable consumer and not acknowledged yet, at the last look",
    ["service", "consumer"],
)
CONSUMER_REDELIVERIES = Counter(
    "aftersales_consumer_redeliveries_total",
    "Messages a consumer was given again (a nak, a timeout, a restart before the ack)",
    ["service", "consumer"],
)
EVENT_LAG = Histogram(
    "aftersales_event_lag_seconds",
    "From an event occurring to a consumer having handled it",
    ["service", "consumer"],
    buckets=LATENCY_BUCKETS,
)

HOLDS_LET_GO = Counter(
    "aftersales_inventory_holds_let_go_total",
    "Orders' parts holds inventory let go by itself, by reason (order_ended,"
    " attempt_never_written)",
    ["reason"],
)
LOOSE_HOLDS = Gauge(
    "aftersales_inventory_loose_holds",
    "Open order-line holds no live step of their order stands behind, at the last check",
)

JETSTREAM_STREAM_BYTES = Gauge(
    "aftersales_jetstream_stream_bytes",
    "Bytes a JetStream stream stores, at the relay's last look",
    ["stream"],
)
JETSTREAM_STREAM_MAX_BYTES = Gauge(
    "aftersales_jetstream_stream_max_bytes",
    "A stream's max_bytes limit (absent when it has none)",
    ["stream"],
)
JETSTREAM_STREAM_MESSAGES = Gauge(
    "aftersales_jetstream_stream_messages",
    "Messages a JetStream stream stores, at the relay's last look",
    ["stream"],
)
JETSTREAM_STORE_USED = Gauge(
    "aftersales_jetstream_account_storage_used_bytes",
    "File storage the account's streams use on the broker",
)
JETSTREAM_STORE_LIMIT = Gauge(
    "aftersales_jetstream_account_storage_limit_bytes",
    "File storage the account may use on the broker (absent when unlimited)",
)

# Business counters, each kept by the service that owns the fact, counted after its commit.
ORDERS_RECEIVED = Counter(
    "aftersales_orders_received_total",
    "Repair orders taken in (受理), by branch and store",
    ["branch", "store"],
)
ORDERS_CLOSED = Counter(
    "aftersales_orders_closed_total",
    "Repair orders closed (picked up or completed), by branch and store",
    ["branch", "store"],
)
SMS_MESSAGES = Counter(
    "aftersales_sms_messages_total",
    "SMS notices by outcome: sent, failed (tried again later), given_up, skipped (no consent)",
    ["outcome"],
)

# When the credentials a process holds run out, set where they are loaded (servicekit.tls,
# servicekit.caller_token): alerts fire well before.
CERTIFICATE_EXPIRY = Gauge(
    "aftersales_certificate_expiry_timestamp_seconds",
    "When a TLS certificate this process serves or presents expires (Unix time)",
    ["service", "certificate"],
)
SIGNING_KEY_EXPIRY = Gauge(
    "aftersales_signing_key_expiry_timestamp_seconds",
    "When a signing key this process signs or verifies with is due to be retired (Unix time)",
    ["service", "kid"],
)


class PoolCollector(Collector):
    """Database connection pools' use, read at each scrape (nothing to keep up to date)."""

    def __init__(self) -> None:
        self.pools: dict[str, Any] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = GaugeMetricFamily(
            "aftersales_db_pool_connections_in_use",
            "Database connections checked out of the pool now",
            labels=["service"],
        )
        size = GaugeMetricFamily(
            "aftersales_db_pool_connections_max",
            "Connections the pool may hold at most (pool size plus overflow)",
            labels=["service"],
        )
        for service, pool in self.pools.items():
            in_use.add_metric([service], float(pool.checkedout()))
            limit = getattr(pool, "size", None)
            if callable(limit):
                overflow = max(getattr(pool, "_max_overflow", 0), 0)
                size.add_metric([service], float(limit() + overflow))
        yield in_use
        yield size


_POOLS = PoolCollector()
REGISTRY.register(_POOLS)


def watch_pool(service: str, pool: Any) -> None:
    """Report a SQLAlchemy pool's use as `service`'s (the last one given per service)."""
    _POOLS.pools[service] = pool


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on its own port (a daemon thread of prometheus_client)."""
    if port:
        start_http_server(port, addr=host)
