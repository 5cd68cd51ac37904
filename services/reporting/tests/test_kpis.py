"""The report centre's rules without I/O: facts built from events in any order, what a fact
adds to the rollups, the period split into months and edge days, the turnaround sketch, and
the KPI maths."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.reporting.domain import sketch
from services.reporting.domain.facts import (
    OrderFact,
    OrderStep,
    apply_claim_line,
    apply_follow_up,
    apply_step,
    came_back,
)
from services.reporting.domain.kpis import (
    DEFINITIONS,
    Figures,
    Kpis,
    SplitFigures,
    backlog,
    with_exact,
    with_sketch,
)
from services.reporting.domain.period import Period, split
from services.reporting.domain.rollups import (
    BacklogKey,
    FigureKey,
    TechnicianKey,
    TurnaroundKey,
    contributions,
    delta,
    merge,
)

RECEIVED = datetime(2026, 11, 26, 16, 30, tzinfo=UTC)  # 00:30 on the 27th in Shanghai


def step(
    to_status: str,
    version: int,
    at: datetime,
    name: str = "",
    actor: str = "u-clerk",
    **fields: object,
) -> OrderStep:
    values: dict[str, object] = {
        "order_id": "o-1",
        "number": "SH-001-261127-0001",
        "branch_id": "SH",
        "store_id": "SH-001",
        "service_type": "repair",
        "brand": "huawei",
        "warranty_status": "out_of_warranty",
        "received_at": RECEIVED,
        "promised_date": date(2026, 11, 29),
        "repeat_repair": False,
        "repeat_of_order_id": "",
        "step": name or to_status,
        "to_status": to_status,
        "version": version,
        "occurred_at": at,
        "actor": actor,
    }
    values.update(fields)
    return OrderStep(**values)  # type: ignore[arg-type]


def lifecycle() -> list[OrderStep]:
    """Intake, diagnosis, quote, approval, repair, a failed QC, repair again, QC, pickup."""
    hour = timedelta(hours=1)
    return [
        step("received", 1, RECEIVED, "intake"),
        step("diagnosed", 2, RECEIVED + hour, "diagnosis", "u-tech"),
        step("awaiting_approval", 3, RECEIVED + 2 * hour, "quote", quote_total_fen=20000),
        step("waiting_parts", 4, RECEIVED + 3 * hour, "approval", quote_total_fen=20000),
        step("approved", 5, RECEIVED + 24 * hour, "parts", quote_total_fen=20000),
        step("in_repair", 6, RECEIVED + 25 * hour, "repair/start", "u-tech"),
        step("quality_check", 7, RECEIVED + 26 * hour, "repair/finish", "u-tech"),
        step("in_repair", 8, RECEIVED + 27 * hour, "qc", qc_failures=1),
        step("quality_check", 9, RECEIVED + 28 * hour, "repair/finish", "u-tech2", qc_failures=1),
        step("ready_for_pickup", 10, RECEIVED + 30 * hour, "qc", qc_failures=1),
        step("closed", 11, RECEIVED + 50 * hour, "pickup", qc_failures=1, paid_fen=20000),
    ]


def build(steps: list[OrderStep]) -> OrderFact:
    fact = OrderFact("o-1")
    for each in steps:
        fact = apply_step(fact, each)
    return fact


def test_any_order_and_any_repetition_of_the_events_gives_the_same_fact() -> None:
    steps = lifecycle()
    expected = build(steps)
    assert expected.status == "closed"
    assert expected.version == 11
    assert expected.ready_at == RECEIVED + timedelta(hours=30)
    assert expected.waiting_parts_at == RECEIVED + timedelta(hours=3)
    assert (expected.technician_id, expected.technician_version) == ("u-tech2", 9)
    assert expected.turnaround_seconds == 30 * 3600
    rng = random.Random(7)
    for _ in range(50):
        shuffled = steps + rng.sample(steps, 4)  # some delivered twice
        rng.shuffle(shuffled)
        assert build(shuffled) == expected


def test_an_older_event_never_moves_the_state_back() -> None:
    steps = lifecycle()
    fact = build(steps)
    assert apply_step(fact, steps[3]) == fact
    assert apply_step(fact, steps[0]).status == "closed"


def test_an_event_from_before_the_contract_keeps_the_placement_it_does_not_carry() -> None:
    fact = build(lifecycle()[:2])
    old = replace(lifecycle()[2], received_at=None, brand="")
    after = apply_step(fact, old)
    assert (after.received_at, after.brand, after.status) == (
        RECEIVED,
        "huawei",
        "awaiting_approval",
    )


def test_follow_ups_and_claims_keep_only_their_newest() -> None:
    fact = OrderFact("o-1")
    fact = apply_follow_up(fact, 2, "done", 4)
    assert apply_follow_up(fact, 1, "open", 0) == fact
    assert fact.followed_up
    claimed = apply_claim_line(fact, "c-1", 3, "2026-11", "accepted", 3000)
    assert apply_claim_line(claimed, "c-1", 2, "2026-11", "claimed", 3000) == claimed
    assert apply_claim_line(claimed, "c-0", 9, "2026-10", "rejected", 3000) == claimed
    paid = apply_claim_line(claimed, "c-1", 4, "2026-11", "paid", 3000)
    assert paid.claim_state == "paid"
    later = apply_claim_line(paid, "c-2", 1, "2026-12", "claimed", 2500)
    assert (later.claim_id, later.claim_labour_fen) == ("c-2", 2500)


def test_the_earliest_repeat_is_kept_whatever_order_they_come_in() -> None:
    fact = OrderFact("o-1")
    assert came_back(came_back(fact, "o-9"), "o-5") == came_back(came_back(fact, "o-5"), "o-9")
    assert came_back(fact, "o-5").came_back_as == "o-5"


def figures_of(rollups: dict, branch: str, store: str, grain: str, day: date) -> dict[str, int]:
    return rollups.get(FigureKey(branch, store, grain, day, "repair", "huawei"), {})


def test_a_closed_order_counts_on_its_days_at_every_level() -> None:
    fact = apply_follow_up(build(lifecycle()), 1, "done", 5)
    fact = apply_claim_line(fact, "c-1", 1, "2026-11", "accepted", 3000)
    rollups = contributions(fact)
    for branch, store in [("", ""), ("SH", ""), ("SH", "SH-001")]:
        intake = figures_of(rollups, branch, store, "d", date(2026, 11, 27))
        assert intake == {"received": 1}
        ready = figures_of(rollups, branch, store, "d", date(2026, 11, 28))
        assert ready == {"ready": 1, "turnaround_seconds": 30 * 3600, "promised": 1, "on_time": 1}
        closed = figures_of(rollups, branch, store, "d", date(2026, 11, 29))
        assert closed == {
            "closed": 1,
            "repaired": 1,
            "revenue_fen": 20000,
            "followed_up": 1,
            "satisfaction_sum": 5,
            "labour_claimed_fen": 3000,
            "labour_accepted_fen": 3000,
        }  # one QC failure: no first-time fix
        month = figures_of(rollups, branch, store, "m", date(2026, 11, 1))
        assert month["received"] == month["closed"] == month["ready"] == 1
        bucket = sketch.bucket(30 * 3600)
        assert rollups[TurnaroundKey(branch, store, "d", date(2026, 11, 28), bucket)] == {"n": 1}
    # Closed: nothing open any more.
    assert not any(isinstance(key, BacklogKey) for key in rollups)
    technician = rollups[TechnicianKey("SH", "SH-001", "u-tech2", "d", date(2026, 11, 28))]
    assert technician == {
        "completed": 1,
        "turnaround_seconds": 30 * 3600,
        "ready": 1,
        "followed_up": 1,
        "satisfaction_sum": 5,
    }


def test_an_open_order_is_in_the_backlog_by_intake_day_and_waiting_by_the_day_it_began() -> None:
    later = RECEIVED + timedelta(days=2)  # waiting from the 29th
    waiting = build([*lifecycle()[:3], step("waiting_parts", 4, later, "approval")])
    waiting = replace(waiting, warranty_status="in_warranty")
    rollups = contributions(waiting)
    assert rollups[BacklogKey("SH", "SH-001", date(2026, 11, 27))] == {"open": 1, "swap_clock": 1}
    assert rollups[BacklogKey("", "", date(2026, 11, 29))] == {"waiting_parts": 1}


def test_an_event_changes_the_rollups_by_after_minus_before_and_a_repeat_changes_nothing() -> None:
    steps = lifecycle()
    fact = build(steps[:-1])
    closed = apply_step(fact, steps[-1])
    change = delta(fact, closed)
    assert figures_of(change, "SH", "", "d", date(2026, 11, 29))["closed"] == 1
    assert change[BacklogKey("SH", "", date(2026, 11, 27))] == {"open": -1}
    assert delta(closed, apply_step(closed, steps[-1])) == {}
    # Adding the deltas of every event in any order gives the contributions of the end state.
    rng = random.Random(3)
    for _ in range(10):
        shuffled = rng.sample(steps, len(steps))
        total, fact = [], OrderFact("o-1")
        for each in shuffled:
            after = apply_step(fact, each)
            total.append(delta(fact, after))
            fact = after
        assert merge(total) == contributions(build(steps))


def test_an_order_that_came_back_is_no_first_time_fix_and_counts_as_its_technicians_repeat() -> (
    None
):
    steps = [s for s in lifecycle() if s.version not in (8, 9)]
    steps = [replace(s, qc_failures=0) for s in steps]
    fixed = build(steps)
    assert (
        figures_of(contributions(fixed), "", "", "d", date(2026, 11, 29))["first_time_fixed"] == 1
    )
    returned = came_back(fixed, "o-2")
    change = delta(fixed, returned)
    assert figures_of(change, "", "", "d", date(2026, 11, 29)) == {"first_time_fixed": -1}
    assert change[TechnicianKey("SH", "SH-001", "u-tech", "m", date(2026, 11, 1))] == {
        "came_back": 1
    }


def test_an_order_known_only_by_its_follow_up_counts_for_nothing_yet() -> None:
    assert contributions(apply_follow_up(OrderFact("o-1"), 1, "done", 5)) == {}


@pytest.mark.parametrize(
    ("first", "last", "months", "days"),
    [
        ("2026-11-27", "2026-11-27", None, [("2026-11-27", "2026-11-27")]),
        ("2026-11-01", "2026-11-30", ("2026-11-01", "2026-11-01"), []),
        ("2026-11-02", "2026-11-30", None, [("2026-11-02", "2026-11-30")]),
        (
            "2026-01-15",
            "2026-12-10",
            ("2026-02-01", "2026-11-01"),
            [("2026-01-15", "2026-01-31"), ("2026-12-01", "2026-12-10")],
        ),
        ("2024-02-01", "2024-02-29", ("2024-02-01", "2024-02-01"), []),  # a leap February
        (
            "2026-01-31",
            "2026-03-01",
            ("2026-02-01", "2026-02-01"),
            [("2026-01-31", "2026-01-31"), ("2026-03-01", "2026-03-01")],
        ),
    ],
)
def test_a_period_splits_into_whole_months_and_edge_days(
    first: str, last: str, months: tuple[str, str] | None, days: list[tuple[str, str]]
) -> None:
    def period(a: str, b: str) -> Period:
        return Period(date.fromisoformat(a), date.fromisoformat(b))

    parts = split(period(first, last))
    assert parts.months == (period(*months) if months else None)
    assert list(parts.days) == [period(*d) for d in days]


def test_the_split_covers_every_day_of_any_period_once() -> None:
    start = date(2023, 12, 20)
    for offset, length in itertools.product(range(0, 70, 3), range(1, 800, 37)):
        whole = Period(start + timedelta(days=offset), start + timedelta(days=offset + length - 1))
        parts = split(whole)
        covered = [d for p in parts.days for d in days_of(p)]
        if parts.months is not None:
            month = parts.months.first
            while month <= parts.months.last:
                nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
                covered += days_of(Period(month, nxt - timedelta(days=1)))
                month = nxt
        assert sorted(covered) == days_of(whole)


def days_of(period: Period) -> list[date]:
    return [period.first + timedelta(days=i) for i in range(period.days)]


def test_the_sketch_is_within_its_relative_error_of_the_exact_quantile() -> None:
    rng = random.Random(11)
    for _ in range(30):
        values = [int(rng.lognormvariate(11, 1.5)) + 1 for _ in range(rng.randint(1, 3000))]
        counts: dict[int, int] = {}
        for value in values:
            counts[sketch.bucket(value)] = counts.get(sketch.bucket(value), 0) + 1
        for q in (0.0, 0.5, 0.9, 0.99, 1.0):
            exact = sketch.exact_quantile(values, q)
            estimate = sketch.quantile(counts, q)
            assert exact is not None and estimate is not None
            assert abs(estimate - exact) <= sketch.RELATIVE_ACCURACY * exact + 1e-9


def test_sketches_merge_by_adding_counts() -> None:
    a, b = [3600, 7200, 90000], [60, 86400 * 3]
    merged: dict[int, int] = {}
    for value in a + b:
        merged[sketch.bucket(value)] = merged.get(sketch.bucket(value), 0) + 1
    assert sketch.quantile(merged, 0.5) == pytest.approx(7200, rel=sketch.RELATIVE_ACCURACY)
    assert sketch.quantile({}, 0.5) is None


def test_rates_and_averages_and_nothing_to_divide_by() -> None:
    figures = Figures(
        {
            "received": 10,
            "repeat_received": 1,
            "ready": 4,
            "turnaround_seconds": 4 * 7200,
            "promised": 4,
            "on_time": 3,
            "closed": 5,
            "repaired": 4,
            "first_time_fixed": 3,
            "followed_up": 2,
            "satisfaction_sum": 9,
        }
    )
    assert figures.repeat_repair_rate == 0.1
    assert figures.on_time_rate == 0.75
    assert figures.first_time_fix_rate == 0.75
    assert figures.follow_up_rate == 0.4
    assert figures.average_satisfaction == 4.5
    assert figures.turnaround_mean_hours == 2
    empty = Figures({})
    assert (empty.on_time_rate, empty.average_satisfaction, empty.turnaround_mean_hours) == (
        None,
        None,
        None,
    )
    exact = with_exact({"ready": 3}, [3600, 7200, 36000])
    assert (exact.turnaround_median_hours, exact.turnaround_p90_hours) == (2, 2)
    assert with_sketch({}, {}).turnaround_p90_hours is None


def test_backlog_buckets_by_age_on_the_asked_day() -> None:
    on = date(2026, 11, 27)
    rows = [
        (on, {"open": 2}),
        (on - timedelta(days=5), {"open": 1, "waiting_parts": 1}),
        (on - timedelta(days=50), {"open": 1, "swap_clock": 1}),
        (on - timedelta(days=61), {"open": 1, "swap_clock": 1}),
        (on + timedelta(days=1), {"open": 7}),  # came in after the asked day
    ]
    result = backlog(rows, on)
    assert dict(result.open) == {"0-2": 2, "3-7": 1, "8-14": 0, "15-30": 0, "31+": 2}
    assert dict(result.waiting_parts)["3-7"] == 1
    assert (result.swap_limit_near, result.swap_limit_passed) == (1, 1)


def test_orders_received_by_service_type_sum_the_brands() -> None:
    period = Period(date(2026, 11, 27), date(2026, 11, 27))
    kpis = Kpis(
        "SH",
        None,
        period,
        Figures({"received": 4}),
        by_split=(
            SplitFigures("repair", "apple", Figures({"received": 1})),
            SplitFigures("repair", "huawei", Figures({"received": 2})),
            SplitFigures("swap", "huawei", Figures({"received": 1})),
            SplitFigures("software", "huawei", Figures({"closed": 1})),
        ),
    )
    assert kpis.orders_received == 4
    assert [(t.service_type, t.orders_received) for t in kpis.by_service_type] == [
        ("repair", 3),
        ("swap", 1),
    ]


def test_every_figure_has_a_title_and_a_definition_in_the_contract() -> None:
    for name in ("received", "turnaround_p90_hours", "repeat_repair_rate", "open"):
        assert DEFINITIONS[name].title and DEFINITIONS[name].definition
    assert DEFINITIONS["repeat_repair_rate"].title == "返修率"
