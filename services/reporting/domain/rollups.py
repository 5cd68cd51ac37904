"""What one order adds to the rollups (汇总), as a pure function of its fact.

An event changes the rollups by contributions(after) − contributions(before): the same figures
whatever order the events came in, however often, and the same as a rebuild from the facts.

Units are (branch_id, store_id) with "" for all: ("", "") is HQ, (B, "") branch B, (B, S) its
store S. Every dated contribution goes to its day's row and to the rows of the week, month,
quarter and year holding that day (domain/period.py GRAINS, each row dated on its first day),
so a long period reads whole years, quarters and months plus whole weeks and days at its edges.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from servicekit.timeutil import shanghai_day
from services.reporting.domain import sketch
from services.reporting.domain.facts import ACCEPTED_STATES, CLAIMED_STATES, IN_WARRANTY, OrderFact
from services.reporting.domain.period import DAY, GRAINS, grain_start

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
    """A bucket of a `turnaround_sketches` row: how many orders of a unit's day or month
    became ready after a turnaround in this sketch bucket (the row holds all its buckets)."""

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


def _units(fact: OrderFact) -> tuple[tuple[str, str], ...]:
    return (("", ""), (fact.branch_id, ""), (fact.branch_id, fact.store_id))


@functools.cache
def _grains(day: date) -> tuple[tuple[str, date], ...]:
    return tuple((grain, grain_start(grain, day)) for grain in GRAINS)


def _add(rollups: Rollups, key: RollupKey, counters: Mapping[str, int]) -> None:
    row = rollups.setdefault(key, {})
    for name, amount in counters.items():
        if amount:
            row[name] = row.get(name, 0) + amount


def contributions(fact: OrderFact, *, store_only: bool = False) -> Rollups:
    """Everything the order counts for, at every level, on the days each figure belongs to
    (Asia/Shanghai business days). An order not yet placed (only a follow-up or a claim line
    seen so far) counts for nothing. `store_only`: its store's rows alone."""
    return _contributions(fact, _units(fact)[2:] if store_only else _units(fact), _grains)


def store_day_contributions(fact: OrderFact) -> Rollups:
    """Its store's day rows alone: what a bulk load sums (store_day_sums) and adds up into
    the coarser grains and into its branch's and HQ's rows itself (seed_history)."""
    return _contributions(fact, _units(fact)[2:], _day_only)


def _contributions(
    fact: OrderFact,
    units: tuple[tuple[str, str], ...],
    grains: Callable[[date], tuple[tuple[str, date], ...]],
) -> Rollups:
    if not fact.placed or fact.received_at is None:
        return {}
    rollups: Rollups = {}
    figures = order_figures(fact)
    ready = turnaround_bucket(fact)
    for unit in units:
        if ready is not None:
            for grain, day in grains(ready[0]):
                _add(rollups, TurnaroundKey(*unit, grain, day, ready[1]), {"n": 1})
        for when, counters in figures:
            for grain, day in grains(when):
                _add(rollups, FigureKey(*unit, grain, day, fact.service_type, fact.brand), counters)
                _add(rollups, FigureKey(*unit, grain, day, ALL, ALL), counters)
        for key, counters in backlog(fact, unit):
            _add(rollups, key, counters)
    worked = technician_figures(fact)
    if worked is not None:
        for grain, day in grains(worked[0]):
            _add(
                rollups,
                TechnicianKey(fact.branch_id, fact.store_id, fact.technician_id, grain, day),
                worked[1],
            )
    return {key: counters for key, counters in rollups.items() if counters}


def order_figures(fact: OrderFact) -> list[tuple[date, Counters]]:
    """A placed order's figures, each on its day: a unit's rows by service type and brand,
    and its total rows, add these up (contributions)."""
    assert fact.received_at is not None
    figures: list[tuple[date, Counters]] = [
        (
            shanghai_day(fact.received_at),
            {"received": 1, "repeat_received": int(fact.repeat_repair)},
        )
    ]
    turnaround = fact.turnaround_seconds
    if fact.ready_at is not None and turnaround is not None:
        figures.append(
            (
                shanghai_day(fact.ready_at),
                {
                    "ready": 1,
                    "turnaround_seconds": turnaround,
                    "promised": int(fact.on_time is not None),
                    "on_time": int(bool(fact.on_time)),
                },
            )
        )
    if fact.closed_at is not None:
        figures.append((shanghai_day(fact.closed_at), _closed_counters(fact)))
    if fact.cancelled_at is not None:
        figures.append((shanghai_day(fact.cancelled_at), {"cancelled": 1}))
    return figures


def turnaround_bucket(fact: OrderFact) -> tuple[date, int] | None:
    """The day a placed order became ready and its turnaround's sketch bucket."""
    turnaround = fact.turnaround_seconds
    if fact.ready_at is None or turnaround is None:
        return None
    return shanghai_day(fact.ready_at), sketch.bucket(turnaround)


def technician_figures(fact: OrderFact) -> tuple[date, Counters] | None:
    """What a placed order counts for its technician, on the day of the work."""
    if not fact.technician_id or fact.worked_at is None:
        return None
    return shanghai_day(fact.worked_at), _technician_counters(fact)


def _day_only(day: date) -> tuple[tuple[str, date], ...]:
    return ((DAY, day),)


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


def backlog(fact: OrderFact, unit: tuple[str, str]) -> Iterator[tuple[BacklogKey, Counters]]:
    """A placed order's rows in the unit's backlog while it is open."""
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


RowSums = dict[type, dict[tuple[Any, ...], Counters]]
"""Rollup rows for a bulk load, by key type: each key as the plain tuple of its fields (a
tuple hashes and slices at C speed, where ten million orders make a key object each cost
minutes)."""


def store_day_sums(facts: Iterable[OrderFact]) -> RowSums:
    """The store day rows of these facts (one store's), summed: the same rows and counters as
    merging store_day_contributions() of each, from the same rules, without a key object or
    a dict per order."""
    figures: dict[tuple[Any, ...], Counters] = {}
    buckets: dict[tuple[Any, ...], Counters] = {}
    technicians: dict[tuple[Any, ...], Counters] = {}
    open_rows: Rollups = {}
    for fact in facts:
        if not fact.placed or fact.received_at is None:
            continue
        unit = (fact.branch_id, fact.store_id)
        for when, counters in order_figures(fact):
            _add_sum(figures, (*unit, DAY, when, fact.service_type, fact.brand), counters)
            _add_sum(figures, (*unit, DAY, when, ALL, ALL), counters)
        ready = turnaround_bucket(fact)
        if ready is not None:
            _add_sum(buckets, (*unit, DAY, *ready), {"n": 1})
        worked = technician_figures(fact)
        if worked is not None:
            _add_sum(technicians, (*unit, fact.technician_id, DAY, worked[0]), worked[1])
        for key, counters in backlog(fact, unit):
            _add(open_rows, key, counters)
    return {
        FigureKey: figures,
        TurnaroundKey: buckets,
        TechnicianKey: technicians,
        BacklogKey: {dataclasses.astuple(key): counters for key, counters in open_rows.items()},
    }


def _add_sum(
    rows: dict[tuple[Any, ...], Counters], key: tuple[Any, ...], counters: Counters
) -> None:
    row = rows.get(key)
    if row is None:
        rows[key] = {name: amount for name, amount in counters.items() if amount}
        return
    for name, amount in counters.items():
        if amount:
            row[name] = row.get(name, 0) + amount


_GRAIN_AT = {FigureKey: 2, TurnaroundKey: 2, TechnicianKey: 3}
"""Where a key's grain stands among its fields (its day follows it)."""


def coarser_sums(day_sums: RowSums) -> RowSums:
    """Day rows and every coarser grain's rows they add up to: what contributions() writes
    for the orders behind the day rows (backlog rows, by no grain, as they are)."""
    total: RowSums = {kind: {} for kind in day_sums}
    for kind, rows in day_sums.items():
        into = total[kind]
        at = _GRAIN_AT.get(kind)
        for key, counters in rows.items():
            if at is None:
                _add_sum(into, key, counters)
                continue
            head, tail = key[:at], key[at + 2 :]
            for grain, start in _grains(key[at + 1]):
                _add_sum(into, (*head, grain, start, *tail), counters)
    return total


def level_up(sums: RowSums) -> RowSums:
    """The rows store rows add up to at their branch, or branch rows at HQ: the same counters,
    as contributions() writes them at every level. A technician's rows are a store's only."""
    total: RowSums = {}
    for kind, rows in sums.items():
        if kind is TechnicianKey:
            continue
        into = total.setdefault(kind, {})
        for key, counters in rows.items():
            upper = (key[0], "", *key[2:]) if key[1] else ("", "", *key[2:])
            _add_sum(into, upper, counters)
    return total


def add_sums(total: RowSums, more: RowSums) -> None:
    for kind, rows in more.items():
        into = total.setdefault(kind, {})
        for key, counters in rows.items():
            _add_sum(into, key, counters)


def as_rollups(sums: RowSums) -> Rollups:
    """Row sums as rollups keyed by their key objects (to compare, or to write few rows)."""
    return {
        kind(*key): dict(counters)
        for kind, rows in sums.items()
        for key, counters in rows.items()
        if counters
    }
