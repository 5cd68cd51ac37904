"""The parts side's rules, without I/O: the ledger's order, a movement applied to its day, the
period figures, line counters that only grow, and when a record and its issues disagree."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from random import Random

import pytest

from services.reporting.domain import stock
from services.reporting.domain.period import Period

MORNING = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai on the 27th


def moved(
    at: datetime, event_id: str, on_hand: int, cost: int, kind: str = "receipt", quantity: int = 1
) -> stock.Movement:
    return stock.movement(at, event_id, kind, quantity, cost, on_hand, cost)


def test_the_ledger_orders_by_time_then_event_id() -> None:
    early = stock.ledger_key(MORNING, "b")
    same_moment = stock.ledger_key(MORNING, "a")
    later = stock.ledger_key(MORNING.replace(microsecond=1), "0")
    assert same_moment < early < later
    assert later.occurred_us - early.occurred_us == 1


def test_a_movement_counts_on_its_shanghai_day_and_issues_cost_what_orders_consumed() -> None:
    late_evening = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # 00:30 on the 28th
    issue = stock.movement(late_evening, "e", "issue", -2, 4500, 3, 4400)
    assert (issue.day, issue.issued_quantity) == (date(2026, 11, 28), 2)
    assert issue.issued_cost_fen == 9000
    back = stock.movement(MORNING, "e", "return", 1, 4500, 4, 4400)
    assert (back.issued_quantity, back.returned_cost_fen) == (0, 4500)
    transfer = stock.movement(MORNING, "e", "transfer_out", -1, 4500, 3, 4400)
    assert (transfer.issued_cost_fen, transfer.returned_cost_fen) == (0, 0)


def test_the_latest_movement_changes_the_value_by_the_difference_from_then_on() -> None:
    first = moved(MORNING, "e1", 5, 100)
    assert first.value_fen == 500
    assert stock.value_changes(first, 0) == ((date(2026, 11, 27), 500),)
    issue = stock.movement(MORNING.replace(hour=2), "e2", "issue", -2, 100, 3, 100)
    assert stock.value_changes(issue, first.value_fen) == ((date(2026, 11, 27), -200),)
    assert stock.value_changes(moved(MORNING, "e3", 3, 100), 300) == ()


def level(day: date, at: datetime, event_id: str, on_hand: int, cost: int) -> stock.Level:
    return stock.Level(day, stock.ledger_key(at, event_id), on_hand, cost)


def test_an_older_movement_arriving_late_the_same_day_leaves_the_value() -> None:
    newer = level(date(2026, 11, 27), MORNING.replace(hour=3), "e2", 3, 100)
    older = stock.movement(MORNING, "e1", "issue", -1, 100, 4, 100)
    assert stock.late_value_changes(older, newer, None, None) == ()


def test_a_movement_arriving_late_closes_its_day_if_it_is_the_days_latest() -> None:
    earlier = level(date(2026, 11, 27), MORNING, "e1", 5, 100)
    later_day = date(2026, 11, 28)
    late = moved(MORNING.replace(hour=5), "e2", 4, 100)
    assert stock.late_value_changes(late, earlier, None, later_day) == (
        (date(2026, 11, 27), -100),
        (later_day, 100),
    )


def test_a_movement_of_an_earlier_day_arriving_late_shifts_only_the_days_up_to_the_next() -> None:
    before = level(date(2026, 11, 20), MORNING, "w", 1, 100)
    changes = stock.late_value_changes(
        moved(MORNING, "e", 4, 100), None, before, date(2026, 11, 28)
    )
    # Held 100 from the 20th; 400 from the 27th; the 28th's own level stands.
    assert changes == ((date(2026, 11, 27), 300), (date(2026, 11, 28), -300))
    first_ever = stock.late_value_changes(
        moved(MORNING, "e", 4, 100), None, None, date(2026, 12, 1)
    )
    assert first_ever == ((date(2026, 11, 27), 400), (date(2026, 12, 1), -400))


def test_average_value_and_turnover_days_over_a_period() -> None:
    period = Period(date(2026, 11, 1), date(2026, 11, 4))
    changes = {date(2026, 11, 2): 1000, date(2026, 11, 4): -500}
    assert stock.closing_values(2000, changes, period) == [2000, 3000, 3000, 2500]
    assert stock.round_half_up(2000 + 3000 + 3000 + 2500, period.days) == 2625
    # 2625 on hand on average against 1050 issued over 4 days (262.5 a day): 10 days.
    assert stock.turnover_days(2625, 1050, 4) == 10.0
    assert stock.turnover_days(2625, 800, 4) == 13.1  # 13.125 rounded half up
    assert stock.turnover_days(2625, 0, 4) is None
    assert stock.turnover_days(2625, -10, 4) is None


def test_parts_cost_per_order_rounds_half_up_and_needs_an_order() -> None:
    assert stock.per_order(1001, 2) == 501
    assert stock.per_order(1000, 3) == 333
    assert stock.per_order(500, 0) is None


def test_the_slow_moving_window_is_ninety_days_back() -> None:
    window = stock.slow_moving_window(date(2026, 11, 30))
    assert window.quiet_after == date(2026, 9, 1) == window.held_since


def test_line_counters_move_only_forward() -> None:
    stored = stock.LineCounts(issued=2, returned=0)
    grown = stock.line_progress(stored, stock.LineCounts(issued=3, returned=1))
    assert (grown.now, grown.issued, grown.returned) == (stock.LineCounts(3, 1), 1, 1)
    stale = stock.line_progress(grown.now, stock.LineCounts(issued=2, returned=0))
    assert (stale.now, stale.issued, stale.returned) == (stock.LineCounts(3, 1), 0, 0)
    again = stock.line_progress(grown.now, grown.now)
    assert (again.issued, again.returned) == (0, 0)


def test_record_quantities_add_up_lines_of_one_part() -> None:
    assert stock.record_quantities([("P1", 1), ("P2", 2), ("P1", 1)]) == {"P1": 2, "P2": 2}


def test_a_record_is_one_text_whatever_the_order_of_its_lines() -> None:
    unit = ("SH", "SH-001")
    one = stock.record_text({"P2": (unit, 1), "P1": (unit, 2)})
    assert one == stock.record_text({"P1": (unit, 2), "P2": (unit, 1)})
    assert one != stock.record_text({"P1": (unit, 2), "P2": (unit, 2)})
    assert stock.record_parts(one) == {"P1", "P2"}
    assert stock.record_parts("") == set() == stock.record_parts(stock.record_text({}))


def test_when_a_record_and_its_issues_disagree() -> None:
    kind = stock.mismatch_kind
    assert kind(0, 1, repair_finished=False) == stock.ISSUED_WITHOUT_LINE
    assert kind(0, 1, repair_finished=False, record_known=False) is None
    assert kind(0, 0, repair_finished=True) is None
    assert kind(1, 0, repair_finished=False) is None  # not issued yet
    assert kind(1, 0, repair_finished=True) == stock.LINE_WITHOUT_ISSUE
    assert kind(2, 1, repair_finished=True) == stock.QUANTITY_DIFFERS
    assert kind(2, 1, repair_finished=False) is None
    assert kind(2, 2, repair_finished=True) is None


def test_a_declined_order_goes_back_unrepaired_with_no_parts_on_its_record() -> None:
    assert stock.returned_unrepaired("declined", "awaiting_approval")
    assert stock.returned_unrepaired("closed", "declined")  # picked up, unrepaired
    assert not stock.returned_unrepaired("closed", "ready_for_pickup")
    assert not stock.returned_unrepaired("quality_check", "in_repair")


def test_every_figure_is_defined_once_with_a_chinese_title() -> None:
    defined = {d.name: d for d in stock.definitions()}
    assert set(defined) == {
        "inventory_value_fen",
        "average_inventory_value_fen",
        "issued_cost_fen",
        "turnover_days",
        "slow_moving_value_fen",
        "parts_cost_fen",
        "orders_with_issues",
        "parts_cost_per_order_fen",
        "orders",
        "kind",
    }
    assert defined["turnover_days"].title_zh == "库存周转天数"
    assert defined["kind"].title_zh == "维修记录与用料不符"
    assert all(d.definition for d in defined.values())


# The rollups: changes that add up to the figures, whatever order the events come in.


def _part_window(rows: dict[date, stock.PartDay], start: date) -> list[stock.PartDay]:
    """What the adapter reads for a change from `start` on (stock_repository.part_days)."""
    cut = start - timedelta(days=stock.SLOW_MOVING_DAYS)
    ordered = [rows[day] for day in sorted(rows)]
    earlier = [row for row in ordered if row.day < cut][-1:]
    return earlier + [row for row in ordered if row.day >= cut]


def _slow_by_hand(history: list[tuple[date, int, int]], on: date) -> int:
    """The figure's definition over the whole ledger (day, value after, issued quantity),
    movements in ledger order."""
    held = [m for m in history if m[0] <= on]
    if not held or min(m[0] for m in held) > on - timedelta(days=90):
        return 0
    if any(m[2] > 0 and m[0] > on - timedelta(days=90) for m in held):
        return 0
    return held[-1][1]


@pytest.mark.parametrize("seed", range(40))
def test_slow_moving_changes_add_up_to_the_figure_in_any_arrival_order(seed: int) -> None:
    random = Random(seed)
    first = date(2026, 1, 1)
    history = sorted(
        (
            first + timedelta(days=random.randrange(400)),
            random.choice([0, 100, 250, 900]),
            random.choice([0, 0, 0, 1, 2]),
        )
        for _ in range(random.randrange(1, 9))
    )
    keyed = [(stock.LedgerKey(n, f"e{n}"), *movement) for n, movement in enumerate(history)]
    arrivals = random.sample(keyed, len(keyed))
    rows: dict[date, stock.PartDay] = {}
    closing: dict[date, stock.LedgerKey] = {}
    series: dict[date, int] = {}
    for key, day, value, issued in arrivals:
        moved = stock.Movement(day, key, value, 1, issued, issued, 0)
        closes = day not in closing or closing[day] < key
        days = _part_window(rows, day)
        first_day = min(rows, default=None)
        after = stock.part_days_after(days, moved, closes)
        for turn, change in stock.slow_changes(
            days, first_day, after, min(first_day or day, day), day
        ).items():
            series[turn] = series.get(turn, 0) + change
        same = rows.get(day)
        rows[day] = stock.PartDay(
            day,
            value if closes else same.value_fen if same else value,
            issued > 0 or (same is not None and same.issued),
        )
        if closes:
            closing[day] = key
    for offset in range(0, 520, 3):
        on = first + timedelta(days=offset)
        kept = sum(change for turn, change in series.items() if turn <= on)
        assert kept == _slow_by_hand(history, on), on


@pytest.mark.parametrize("seed", range(40))
def test_orders_with_issues_count_each_order_once_in_any_period(seed: int) -> None:
    random = Random(seed)
    first = date(2026, 3, 1)
    stores = [("SH", "S1"), ("SH", "S2"), ("ZJ", "Z1")]
    issues = [
        (f"o{random.randrange(6)}", random.choice(stores), first + timedelta(random.randrange(40)))
        for _ in range(30)
    ]
    counts: dict[tuple[tuple[str, str], date], int] = {}
    pairs: dict[tuple[tuple[str, str], date, date], int] = {}
    seen: set[tuple[str, tuple[str, str], date]] = set()
    for order_id, unit, day in random.sample(issues, len(issues)):
        for level in stock.levels(unit):
            days = {d for o, u, d in seen if o == order_id and stock.covers(level, u)}
            added, changed = stock.issue_day_changes(days, day)
            counts[(level, day)] = counts.get((level, day), 0) + added
            for (earlier, later), n in changed.items():
                pairs[(level, later, earlier)] = pairs.get((level, later, earlier), 0) + n
        seen.add((order_id, unit, day))
    for _ in range(30):
        start = first + timedelta(random.randrange(40))
        end = start + timedelta(random.randrange(20))
        for level in {level for unit in stores for level in stock.levels(unit)}:
            kept = sum(n for (u, d), n in counts.items() if u == level and start <= d <= end)
            kept -= sum(
                n for (u, d, e), n in pairs.items() if u == level and e >= start and d <= end
            )
            by_hand = {o for o, u, d in issues if stock.covers(level, u) and start <= d <= end}
            assert kept == len(by_hand), (level, start, end)


def test_the_average_value_from_sums_is_the_mean_of_closing_values() -> None:
    period = Period(date(2026, 11, 1), date(2026, 11, 4))
    changes = {date(2026, 11, 2): -200, date(2026, 11, 3): 100, date(2026, 11, 4): 50}
    values = stock.closing_values(2500, changes, period)
    weighted = sum(change * day.toordinal() for day, change in changes.items())
    assert stock.average_value(2500, sum(changes.values()), weighted, period) == (
        stock.round_half_up(sum(values), period.days)
    )
