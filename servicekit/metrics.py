"""Every Prometheus metric of the platform, declared in this one place. Names follow promtool's
rules: a unit suffix, `_total` on counters, a single `aftersales_` namespace."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on its own port (a daemon thread of prometheus_client)."""
    if port:
        start_http_server(port, addr=host)
