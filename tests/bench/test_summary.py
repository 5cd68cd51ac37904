"""What `make bench` prints from its figures, without processes: the ratios to the bare hop,
issue 12's targets met or missed, and the comparison with (and recording of) recorded.json."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from tests.bench import run_bench
from tests.bench.run_bench import LIFECYCLE_ALONE, Figures, Target


def figures(rps: float) -> Figures:
    return Figures("x", 100, 0, 1.0, rps, 1.0, 2.0, 3.0)


def a_run(cpu_all: float = 4.0) -> dict[str, Any]:
    return {
        "database": "SQLite",
        "ratios": run_bench.ratios(figures(1000), figures(700), figures(200)),
        "system_cpu_ms_per_request": {"create_peak": cpu_all},
        "cpu_ms_per_request": {"create_peak": {"gateway": 1.5, "orders": 2.5, "wrk": 0.3}},
        "create_half": {"p99_ms": 60.0},
        "flows": {LIFECYCLE_ALONE: {"server_p50_ms": 95.0}},
        "check_cpu_ms_per_order": {"gateway": 3.0, "orders": 5.0, "all": 8.0},
        "calibration_ms": 11.0,
    }


def test_ratios_against_the_bare_hop() -> None:
    assert run_bench.ratios(figures(1000), figures(700), figures(200)) == {
        "no-op / bare": 0.7,
        "create / bare": 0.2,
        "create / no-op": 0.286,
    }
    assert run_bench.ratios(figures(0), figures(700), figures(200))["no-op / bare"] is None


def test_targets_met_or_missed_by_how_much() -> None:
    found = {t.name: t for t in run_bench.targets(a_run())}
    assert [t.verdict() for t in found.values()] == [
        "met",  # 4.0 ms ≤ 5
        "met",  # 0.7 ≥ 0.6
        "missed by 0.05",  # 0.2 < 0.25
        "missed by 10.00",  # 60 ms ≥ 50
        "met",  # 95 ms < 100
    ]
    assert Target("x", None, 1.0, at_most=True).verdict() == "not measured"


def test_peak_cpu_leaves_the_load_generator_out() -> None:
    assert run_bench.peak_cpu_by_process(a_run()) == {"gateway": 1.5, "orders": 2.5, "all": 4.0}


def test_recording_keeps_the_other_database_and_compares_next_time(tmp_path: Path) -> None:
    path = tmp_path / "recorded.json"
    path.write_text(json.dumps({"PostgreSQL": {"kept": True}}))
    run_bench.record([a_run()], path)
    recorded = json.loads(path.read_text())
    assert recorded["PostgreSQL"] == {"kept": True}
    entry = recorded["SQLite"]
    assert entry["create_order_cpu_ms"] == {"gateway": 1.5, "orders": 2.5, "all": 4.0}
    assert entry["check_cpu_ms_per_order"]["all"] == 8.0
    assert entry["recorded"] == datetime.date.today().isoformat()

    later = a_run()
    later["cpu_ms_per_request"]["create_peak"]["orders"] = 3.5
    later["check_cpu_ms_per_order"] = {"gateway": 4.0, "orders": 14.0, "all": 18.0}
    lines = run_bench.compared_with_recorded(later, recorded)
    assert "  all 4.00 → 5.00 ms (+1.00 ms, +25 %)" in lines
    assert "  orders 2.50 → 3.50 ms (+1.00 ms, +40 %)" in lines
    assert lines[-1] == "  BEYOND the CI check's limit of 16.0 ms (2 × recorded)"


def test_nothing_recorded_is_said() -> None:
    assert run_bench.compared_with_recorded(a_run(), {}) == [
        "nothing recorded for SQLite in recorded.json"
    ]
