"""What one order adds to the rollups (汇总), as a pure function of its fact.

An event changes the rollups by contributions(after) − contributions(before): the same figures
whatever order the events came in, however often, and the same as a rebuild from the facts.

Units are (branch_id, store_id) with "" for all: ("", "") is HQ, (B, "") branch B, (B, S) its
store S. Every dated contribution goes to a day row and to its month's row (grain "d" or "m",
the month row dated on the 1st), so a long period reads whole months plus its edge days.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from servicekit.timeutil import shanghai_day
from services.reporting.domain import sketch
from services.reporting.domain.facts import ACCEPTED_STATES, CLAIMED_STATES, IN_WARRANTY, OrderFact

DAY, MONTH = "d", "m"

ALL = "*"
"""The service type and brand of a unit's total row (合计): every figure is also added to
(unit, grain, day, ALL, ALL), so a breakdown by unit reads one row per unit and month or edge
day instead of summing its service types and brands. No service type or brand is spelt so."""

Counters = dict[str, int]


@dataclass(frozen=True, order=True)
class FigureKey:
    """A row of `order_rollups`: a unit's day or month, split by service type and brand (or
    its total: ALL, ALL)."""

    branch_id: str
    store_id: str
    grain: str
    day: date
    service_type: str
    brand: str


@dataclass(frozen=True, order=True)
class BacklogKey:
    """A row of `open_orders`: a unit's orders still open, by the day they came in (or, for
    waiting_parts, the day they started waiting). Never by grain: it is state, not a flow."""

    branch_id: str
    store_id: str
    day: date


@dataclass(frozen=True, order=True)
class TurnaroundKey:
    """A row of `turnaround_buckets`: how many orders of a unit's day or month became ready
    after a turnaround in this sketch bucket."""

    branch_id: str
    store_id: str
    grain: str
    day: date
    bucket: int


@dataclass(frozen=True, order=True)
class TechnicianKey:
    """A row of `technician_rollups`: one technician's day or month at a store."""

    branch_id: str
    store_id: str
    technician_id: str
    grain: str
    day: date


RollupKey = FigureKey | BacklogKey | TurnaroundKey | TechnicianKey
Rollups = dict[RollupKey, Counters]


def month_of(day: date) -> date:
    return day.replace(day=1)


def _units(fact: OrderFact) -> tuple[tuple[str, str], ...]:
    return (("", ""), (fact.branch_id, ""), (fact.branch_id, fact.store_id))


def _grains(day: date) -> tuple[tuple[str, date], ...]:
    return ((DAY, day), (MONTH, month_of(day)))


def _add(rollups: Rollups, key: RollupKey, counters: Mapping[str, int]) -> None:
    row = rollups.setdefault(key, {})
    for name, amount in counters.items():
        if amount:
            row[name] = row.get(name, 0) + amount


def contributions(fact: OrderFact, *, store_only: bool = False) -> Rollups:
    """Everything the order counts for, at every level, on the days each figure belongs to
    (Asia/Shanghai business days). An order not yet placed (only a follow-up or a claim line
    seen so far) counts for nothing. `store_only`: its store's rows alone, for a bulk load
    that adds its stores' rows up into their branch's and HQ's itself (seed_history)."""
    if not fact.placed or fact.received_at is None:
        return {}
    units = _units(fact)[2:] if store_only else _units(fact)
    rollups: Rollups = {}
    figures: list[tuple[date, Counters]] = [
        (
            shanghai_day(fact.received_at),
            {"received": 1, "repeat_received": int(fact.repeat_repair)},
        )
    ]
    turnaround = fact.turnaround_seconds
    if fact.ready_at is not None and turnaround is not None:
        ready_day = shanghai_day(fact.ready_at)
        figures.append(
            (
                ready_day,
                {
                    "ready": 1,
                    "turnaround_seconds": turnaround,
                    "promised": int(fact.on_time is not None),
                    "on_time": int(bool(fact.on_time)),
                },
            )
        )
        for unit in units:
            for grain, day in _grains(ready_day):
                _add(rollups, TurnaroundKey(*unit, grain, day, sketch.bucket(turnaround)), {"n": 1})
    if fact.closed_at is not None:
        figures.append((shanghai_day(fact.closed_at), _closed_counters(fact)))
    if fact.cancelled_at is not None:
        figures.append((shanghai_day(fact.cancelled_at), {"cancelled": 1}))
    for unit in units:
        for when, counters in figures:
            for grain, day in _grains(when):
                _add(rollups, FigureKey(*unit, grain, day, fact.service_type, fact.brand), counters)
                _add(rollups, FigureKey(*unit, grain, day, ALL, ALL), counters)
        for key, counters in _backlog(fact, unit):
            _add(rollups, key, counters)
    if fact.technician_id and fact.worked_at is not None:
        for grain, day in _grains(shanghai_day(fact.worked_at)):
            _add(
                rollups,
                TechnicianKey(fact.branch_id, fact.store_id, fact.technician_id, grain, day),
                _technician_counters(fact),
            )
    return {key: counters for key, counters in rollups.items() if counters}


def _closed_counters(fact: OrderFact) -> Counters:
    repaired = fact.repaired
    claimed = fact.claim_state in CLAIMED_STATES
    return {
        "closed": 1,
        "repaired": int(repaired),
        "first_time_fixed": int(repaired and fact.qc_failures == 0 and not fact.came_back_as),
        "revenue_fen": fact.paid_fen,
        "followed_up": int(fact.followed_up),
        "satisfaction_sum": fact.satisfaction if fact.followed_up else 0,
        "labour_claimed_fen": fact.claim_labour_fen if claimed else 0,
        "labour_accepted_fen": fact.claim_labour_fen if fact.claim_state in ACCEPTED_STATES else 0,
        "labour_paid_fen": fact.claim_labour_fen if fact.claim_state == "paid" else 0,
    }


def _backlog(fact: OrderFact, unit: tuple[str, str]) -> Iterator[tuple[BacklogKey, Counters]]:
    if not fact.is_open or fact.received_at is None:
        return
    intake_day = shanghai_day(fact.received_at)
    # 三包: in warranty and not repaired yet, the 60-day swap clock runs from intake.
    unrepaired = fact.warranty_status == IN_WARRANTY and fact.worked_at is None
    yield BacklogKey(*unit, intake_day), {"open": 1, "swap_clock": int(unrepaired)}
    if fact.status == "waiting_parts":
        since = fact.waiting_parts_at or fact.received_at
        yield BacklogKey(*unit, shanghai_day(since)), {"waiting_parts": 1}


def _technician_counters(fact: OrderFact) -> Counters:
    turnaround = fact.turnaround_seconds
    return {
        "completed": 1,
        "turnaround_seconds": turnaround or 0,
        "ready": int(turnaround is not None),
        "came_back": int(bool(fact.came_back_as)),
        "followed_up": int(fact.followed_up),
        "satisfaction_sum": fact.satisfaction if fact.followed_up else 0,
    }


def delta(before: OrderFact | None, after: OrderFact) -> Rollups:
    """What an event changes: contributions(after) − contributions(before), zeros left out."""
    return merge([contributions(after), negate(contributions(before) if before else {})])


def negate(rollups: Rollups) -> Rollups:
    return {key: {name: -amount for name, amount in row.items()} for key, row in rollups.items()}


def merge(parts: Iterable[Rollups]) -> Rollups:
    """The sum of several rollup changes (a batch's), rows and counters that net to zero left
    out: a redelivered event costs no write."""
    total: Rollups = {}
    for part in parts:
        for key, row in part.items():
            _add(total, key, row)
    return {
        key: nonzero
        for key, row in total.items()
        if (nonzero := {name: amount for name, amount in row.items() if amount})
    }
