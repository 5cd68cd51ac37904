"""The CPU budget's arithmetic, without processes: per-order figures, when the consumers are
done, the check's limit from the recorded figures, and how far each figure moved."""

from __future__ import annotations

import pytest

from servicekit.identifiers import imei_problem, mobile_problem
from tests.bench import cpu_budget
from tests.bench.cpu_budget import (
    QUIET_READINGS,
    STUCK_READINGS,
    calibration_ms,
    check_limit_ms,
    check_order,
    consumers_at_rest,
    moved,
    per_order_ms,
)


def test_per_order_figures_of_each_process_and_of_all() -> None:
    before = {"gateway": 10.0, "orders": 20.0}
    after = {"gateway": 10.3, "orders": 20.45}
    assert per_order_ms(before, after, 100) == {"gateway": 3.0, "orders": 4.5, "all": 7.5}


def test_check_orders_are_valid_and_new_each() -> None:
    orders = [check_order(serial) for serial in range(10**9, 10**9 + 50)]
    for order in orders:
        assert imei_problem(order["device"]["imei"]) is None
        assert mobile_problem(order["customer"]["phone"]) is None
    assert len({o["device"]["imei"] for o in orders}) == len(orders)
    assert len({o["customer"]["phone"] for o in orders}) == len(orders)


def test_consumers_at_rest_once_drained_and_still() -> None:
    busy = {"ORDERS/reporting": (3, 1, 40)}
    done = {"ORDERS/reporting": (0, 0, 44)}
    assert not consumers_at_rest([])
    assert not consumers_at_rest([busy, done, done])
    assert consumers_at_rest([busy] + [done] * QUIET_READINGS)


def test_a_consumer_nobody_pulls_from_holds_the_wait_only_so_long() -> None:
    forgotten = {"ORDERS/reporting": (0, 0, 44), "DEAD/inspect": (5, 0, 0)}
    assert not consumers_at_rest([forgotten] * QUIET_READINGS)
    assert consumers_at_rest([forgotten] * STUCK_READINGS)


def test_the_check_fails_beyond_twice_the_recorded_figure() -> None:
    recorded = {"SQLite": {"check_cpu_ms_per_order": {"all": 7.5, "gateway": 3.0}}}
    assert check_limit_ms(recorded, "SQLite") == 15.0
    with pytest.raises(LookupError):
        check_limit_ms(recorded, "PostgreSQL")


def test_the_repository_records_a_check_figure_for_each_database() -> None:
    recorded = cpu_budget.load_recorded()
    for database in ("PostgreSQL", "SQLite"):
        assert check_limit_ms(recorded, database) > 0


def test_how_far_each_figure_moved() -> None:
    before = {"all": 10.0, "gateway": 4.0, "nats-server": 0.5}
    after = {"all": 8.0, "gateway": 5.0, "postgresql": 1.2}
    assert moved(before, after) == [
        "all 10.00 → 8.00 ms (-2.00 ms, -20 %)",
        "gateway 4.00 → 5.00 ms (+1.00 ms, +25 %)",
        "nats-server 0.50 → – ms",
        "postgresql – → 1.20 ms",
    ]


def test_the_limit_follows_the_machines_speed_against_the_recorded_calibration() -> None:
    recorded = {"SQLite": {"check_cpu_ms_per_order": {"all": 10.0}, "calibration_ms": 12.0}}
    assert check_limit_ms(recorded, "SQLite") == 20.0
    assert check_limit_ms(recorded, "SQLite", calibration=24.0) == 40.0
    assert check_limit_ms(recorded, "SQLite", calibration=6.0) == 20.0
    older = {"SQLite": {"check_cpu_ms_per_order": {"all": 10.0}}}
    assert check_limit_ms(older, "SQLite", calibration=24.0) == 20.0


def test_the_calibration_is_a_positive_figure() -> None:
    assert calibration_ms() > 0
