"""The replicas bench's own reading and report, without the system: orders' share is read
from each replica's /metrics, and the report puts one replica beside two."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from tests.bench import replicas


def test_created_counts_only_the_orders_a_replica_took() -> None:
    registry = CollectorRegistry()
    handled = Counter(
        "aftersales_grpc_server_handled_total",
        "",
        ["service", "method", "code"],
        registry=registry,
    )
    handled.labels("orders", "CreateRepairOrder", "OK").inc(7)
    handled.labels("orders", "CreateRepairOrder", "INVALID_ARGUMENT").inc(2)
    handled.labels("orders", "GetRepairOrder", "OK").inc(5)
    assert replicas.created_in(generate_latest(registry).decode()) == 7


def test_the_report_shows_one_replica_beside_two() -> None:
    def result(count: int, rps: float, share: list[float]) -> dict[str, object]:
        return {
            "replicas": count,
            "create": {"rps": rps, "p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0, "errors": 0},
            "create_share_percent": share,
            "system_cpu_ms_per_order": 9.5,
            "orders_cpu_ms_per_order": 3.1,
            "lifecycle_runs_per_s": 2.5,
            "lifecycle_p50_ms": 400.0,
            "lifecycle_p95_ms": 600.0,
        }

    lines = replicas.report([result(1, 50.0, [100.0]), result(2, 60.0, [49.0, 51.0])])
    assert "orders ×1" in lines[0] and "orders ×2" in lines[0]
    by_label = {line[:30].strip(): line[30:].split() for line in lines[1:-1]}
    assert by_label["create order /s"] == ["50.0", "60.0"]
    assert by_label["orders' share per replica %"] == ["100.0", "49.0", "/", "51.0"]
    assert by_label["create p50 / p95 / p99 ms"] == ["10.0", "/", "20.0", "/", "30.0"] * 2
