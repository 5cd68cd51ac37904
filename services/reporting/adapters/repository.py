"""Reading and writing the read models. SQL lives here; rules live in domain/.

A consumer's batch costs a fixed number of statements, however many events it holds: the
facts it touches are made and locked in two, written back in one, and each rollup table takes
its summed changes in one executemany upsert. Rows are always taken in key order, so two
replicas' batches wait for each other but never deadlock.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, DropIndex

from servicekit.db import Database, upsert_on
from servicekit.timeutil import as_utc, shanghai_day_end_utc, shanghai_day_start_utc
from services.reporting.adapters.orm import (
    open_orders,
    order_facts,
    order_rollups,
    technician_rollups,
    turnaround_sketches,
)
from services.reporting.domain.facts import OrderFact
from services.reporting.domain.kpis import (
    BACKLOG_COUNTERS,
    FIGURE_COUNTERS,
    TECHNICIAN_COUNTERS,
)
from services.reporting.domain.period import Period, tiles
from services.reporting.domain.rollups import (
    ALL,
    BacklogKey,
    FigureKey,
    RollupKey,
    Rollups,
    RowSums,
    TechnicianKey,
    TurnaroundKey,
)

FACT_COLUMNS = tuple(f.name for f in dataclasses.fields(OrderFact))
_FACT_VALUES = operator.attrgetter(*FACT_COLUMNS)
_TIMES = (
    "received_at",
    "ready_at",
    "closed_at",
    "cancelled_at",
    "declined_at",
    "waiting_parts_at",
    "worked_at",
)

# Each rollup kept a row per key: its table, the key fields (the dataclass's, same names as
# the columns) and its counters. TurnaroundKey's rows are kept a sketch per row instead
# (turnaround_sketches): its bucket is a key of the row's counts.
_ROLLUPS: dict[type, tuple[Table, tuple[str, ...]]] = {
    FigureKey: (order_rollups, FIGURE_COUNTERS),
    BacklogKey: (open_orders, BACKLOG_COUNTERS),
    TechnicianKey: (technician_rollups, TECHNICIAN_COUNTERS),
}


# --- the consumer's side ------------------------------------------------------------------


async def lock_facts(
    session: AsyncConnection, order_ids: Iterable[str], claim_ids: Iterable[str] = ()
) -> dict[str, OrderFact]:
    """The facts of these orders, and of every order on these claims, locked for this
    transaction. A missing order gets an empty row first, so two batches that both see an
    order for the first time queue on it instead of both counting it."""
    ids = sorted(set(order_ids))
    claims = sorted(set(claim_ids) - {""})
    if ids:
        await session.execute(_make_missing(session.dialect.name), [{"order_id": i} for i in ids])
    rows = await session.execute(
        _locked(bool(ids), bool(claims)),
        {"order_ids": ids, "claim_ids": claims},
    )
    return {row.order_id: _fact(row) for row in rows}


@functools.cache
def _make_missing(dialect_name: str) -> Any:
    return upsert_on(dialect_name, order_facts).on_conflict_do_nothing()


@functools.cache
def _locked(by_order: bool, by_claim: bool) -> Any:
    c = order_facts.c
    wanted: list[ColumnElement[bool]] = []
    if by_order:
        wanted.append(c.order_id.in_(bindparam("order_ids", expanding=True)))
    if by_claim:
        wanted.append(c.claim_id.in_(bindparam("claim_ids", expanding=True)))
    return select(order_facts).where(or_(false(), *wanted)).order_by(c.order_id).with_for_update()


def _fact(row: Any) -> OrderFact:
    values = {name: getattr(row, name) for name in FACT_COLUMNS}
    for name in _TIMES:
        if values[name] is not None:
            values[name] = as_utc(values[name])
    return OrderFact(**values)


async def save_facts(session: AsyncConnection, facts: Iterable[OrderFact]) -> None:
    """Write the changed facts back, in key order, in one statement."""
    rows = [_fact_row(f) for f in sorted(facts, key=lambda f: f.order_id)]
    if rows:
        await session.execute(_save(session.dialect.name), rows)


def _fact_row(fact: OrderFact) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every value, the most of a batch's CPU.
    return {**dict(zip(FACT_COLUMNS, _FACT_VALUES(fact), strict=True)), "on_time": fact.on_time}


@functools.cache
def _key_fields(kind: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    names = tuple(f.name for f in dataclasses.fields(kind))
    getter = operator.attrgetter(*names)
    return names, getter


def _rollup_row(key: RollupKey, amounts: Mapping[str, int]) -> dict[str, Any]:
    kind: type = type(key)
    names, values = _key_fields(kind)
    row = dict(zip(names, values(key), strict=True))
    for name in _ROLLUPS[kind][1]:
        row[name] = amounts.get(name, 0)
    return row


@functools.cache
def _save(dialect_name: str) -> Any:
    statement = upsert_on(dialect_name, order_facts).values(
        {name: bindparam(name) for name in (*FACT_COLUMNS, "on_time")}
    )
    return statement.on_conflict_do_update(
        index_elements=["order_id"],
        set_={
            name: statement.excluded[name]
            for name in (*FACT_COLUMNS, "on_time")
            if name != "order_id"
        },
    )


async def add_rollups(session: AsyncConnection, changes: Rollups) -> None:
    """Add a batch's summed changes to the rollups: one executemany upsert per table, rows in
    key order (tables in a fixed order too)."""
    by_kind: dict[type, list[tuple[RollupKey, Mapping[str, int]]]] = {}
    for key, amounts in changes.items():
        by_kind.setdefault(type(key), []).append((key, amounts))
    for kind in (*_ROLLUPS, TurnaroundKey):
        if kind is TurnaroundKey:
            await _add_to_sketches(session, _sketches(by_kind.get(kind, ())))
            continue
        rows = by_kind.get(kind)
        if not rows:
            continue
        values = _key_fields(kind)[1]
        rows.sort(key=lambda row: values(row[0]))
        await session.execute(
            _add_to(session.dialect.name, kind),
            [_rollup_row(key, amounts) for key, amounts in rows],
        )


SketchKey = tuple[str, str, str, date]
"""A row of turnaround_sketches: branch_id, store_id, grain, day."""
_SKETCH_KEY = ("branch_id", "store_id", "grain", "day")
_SKETCH_LOCKS = 500
"""Sketch rows locked per statement: four parameters each, well under either database's
limit."""


def _sketches(changes: Iterable[tuple[Any, Mapping[str, int]]]) -> dict[SketchKey, dict[int, int]]:
    """Turnaround changes (or rows) per sketch row: {bucket: orders}, zeros left out."""
    sketches: dict[SketchKey, dict[int, int]] = {}
    for key, amounts in changes:
        n = amounts.get("n", 0)
        if n:
            counts = sketches.setdefault((key.branch_id, key.store_id, key.grain, key.day), {})
            counts[key.bucket] = counts.get(key.bucket, 0) + n
    return sketches


def _counts_json(counts: Mapping[int, int]) -> dict[str, int]:
    return {str(bucket): n for bucket, n in sorted(counts.items()) if n}


async def _add_to_sketches(
    session: AsyncConnection, changes: Mapping[SketchKey, Mapping[int, int]]
) -> None:
    """Add counts to sketch rows: the missing rows made first (a batch that makes one queues
    behind another making it), then all locked in key order, added to and written back. Adding
    commutes, so any order of batches gives the same rows."""
    keys = sorted(changes)
    if not keys:
        return
    dialect = session.dialect.name
    await session.execute(
        _make_missing_sketch(dialect),
        [{**dict(zip(_SKETCH_KEY, key, strict=True)), "counts": {}} for key in keys],
    )
    stored: dict[SketchKey, Mapping[str, int]] = {}
    for at in range(0, len(keys), _SKETCH_LOCKS):
        rows = await session.execute(_locked_sketches(), {"keys": keys[at : at + _SKETCH_LOCKS]})
        for row in rows:
            stored[(row.branch_id, row.store_id, row.grain, row.day)] = orjson.loads(row.counts)
    written = []
    for key in keys:
        counts = {int(bucket): n for bucket, n in stored[key].items()}
        for bucket, n in changes[key].items():
            counts[bucket] = counts.get(bucket, 0) + n
        written.append(
            {
                **{f"k_{name}": value for name, value in zip(_SKETCH_KEY, key, strict=True)},
                "new_counts": _counts_json(counts),
            }
        )
    await session.execute(_write_sketch(), written)


@functools.cache
def _make_missing_sketch(dialect_name: str) -> Any:
    return upsert_on(dialect_name, turnaround_sketches).on_conflict_do_nothing()


@functools.cache
def _locked_sketches() -> Any:
    c = turnaround_sketches.c
    key = tuple_(*[c[name] for name in _SKETCH_KEY])
    return (
        select(*[c[name] for name in _SKETCH_KEY], cast(c.counts, Text).label("counts"))
        .where(key.in_(bindparam("keys", expanding=True)))
        .order_by(*[c[name] for name in _SKETCH_KEY])
        .with_for_update()
    )


@functools.cache
def _write_sketch() -> Any:
    c = turnaround_sketches.c
    return (
        update(turnaround_sketches)
        .where(*[c[name] == bindparam(f"k_{name}") for name in _SKETCH_KEY])
        .values(counts=bindparam("new_counts", type_=c.counts.type))
    )


async def stored_turnarounds(session: AsyncConnection) -> Rollups:
    """Every sketch row's buckets as the rollups they hold (to compare with contributions)."""
    rows = await session.execute(select(turnaround_sketches))
    return {
        TurnaroundKey(row.branch_id, row.store_id, row.grain, row.day, int(bucket)): {"n": n}
        for row in rows
        for bucket, n in row.counts.items()
        if n
    }


@functools.cache
def _add_to(dialect_name: str, kind: type) -> Any:
    """The upsert adding to a rollup's counters, built once per table (a consumer hot path)."""
    table, counters = _ROLLUPS[kind]
    keys = tuple(f.name for f in dataclasses.fields(kind))
    statement = upsert_on(dialect_name, table).values(
        {name: bindparam(name) for name in (*keys, *counters)}
    )
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in counters},
    )


# --- the queries' side --------------------------------------------------------------------


def _in_period(table: Table, period: Period) -> ColumnElement[bool]:
    """Rows of the period: the fewest rows that tile it (its whole years, quarters and months,
    whole weeks and days at its edges)."""
    c = table.c
    return or_(
        *[
            and_(c.grain == tile.grain, c.day >= tile.first, c.day <= tile.last)
            for tile in tiles(period)
        ]
    )


def _unit(table: Table, branch_id: str | None, store_id: str | None) -> list[ColumnElement[bool]]:
    """The rows of exactly this unit. A store is named with its branch when the caller gave
    one: a branch's user naming another branch's store finds nothing."""
    c = table.c
    if store_id and branch_id:
        return [c.branch_id == branch_id, c.store_id == store_id]
    if store_id:
        return [c.branch_id != "", c.store_id == store_id]
    if branch_id:
        return [c.branch_id == branch_id, c.store_id == _NONE]
    # Written out: HQ's sketch is read from an index kept on HQ's rows only.
    return [c.branch_id == _NONE, c.store_id == _NONE]


# Written out, not bound: the planner then knows a query of total rows may use the indexes
# kept only on them (orm.py).
_ALL: ColumnElement[str] = literal_column(f"'{ALL}'")
_NONE: ColumnElement[str] = literal_column("''")
# Which part of a statement answering for a unit and the units below it a row belongs to.
_OWN: ColumnElement[str] = literal_column("'own'")
_BELOW: ColumnElement[str] = literal_column("'below'")


def _sums(table: Table, names: Sequence[str]) -> list[Any]:
    return [func.sum(table.c[name]).label(name) for name in names]


def _counters(row: Any, names: Sequence[str]) -> dict[str, int]:
    return {name: int(getattr(row, name) or 0) for name in names}


async def figure_rows(
    session: AsyncConnection, branch_id: str | None, store_id: str | None, period: Period
) -> list[tuple[str, str, dict[str, int]]]:
    """The unit's counters over the period, per service type and brand."""
    return (await scope_figures(session, branch_id, store_id, period, below=False))[0]


async def scope_figures(
    session: AsyncConnection,
    branch_id: str | None,
    store_id: str | None,
    period: Period,
    *,
    below: bool = True,
) -> tuple[list[tuple[str, str, dict[str, int]]], list[tuple[str, str, dict[str, int]]]]:
    """The unit's counters per service type and brand, and (`below`) each unit's below it
    from their total rows (see unit_rows), in one statement."""
    c = order_rollups.c
    parts = [
        select(
            _OWN.label("part"),
            c.service_type.label("a"),
            c.brand.label("b"),
            *_sums(order_rollups, FIGURE_COUNTERS),
        )
        .where(
            *_unit(order_rollups, branch_id, store_id),
            c.service_type != _ALL,
            _in_period(order_rollups, period),
        )
        .group_by(c.service_type, c.brand)
    ]
    if below:
        parts.append(_unit_totals(branch_id, store_id, period, _BELOW))
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    split: list[tuple[str, str, dict[str, int]]] = []
    units: list[tuple[str, str, dict[str, int]]] = []
    for r in await session.execute(statement):
        (split if r.part == "own" else units).append((r.a, r.b, _counters(r, FIGURE_COUNTERS)))
    return split, units


def _below(table: Table, branch_id: str | None, store_id: str | None) -> list[Any]:
    """The units one level below: HQ's branches, a branch's stores, a store's own row."""
    c = table.c
    if store_id:
        return _unit(table, branch_id, store_id)
    if branch_id:
        return [c.branch_id == branch_id, c.store_id != ""]
    # Written out: the index of the branches' sketches is kept on store_id '' rows only.
    return [c.store_id == _NONE, c.branch_id != ""]


async def unit_rows(
    session: AsyncConnection, branch_id: str | None, store_id: str | None, period: Period
) -> list[tuple[str, str, dict[str, int]]]:
    """Counters per unit below the scope (a store's own row for a store), from the units'
    total rows: one per unit and tile of the period."""
    rows = await session.execute(_unit_totals(branch_id, store_id, period, _BELOW))
    return [(r.a, r.b, _counters(r, FIGURE_COUNTERS)) for r in rows]


def _unit_totals(branch_id: str | None, store_id: str | None, period: Period, part: Any) -> Any:
    c = order_rollups.c
    return (
        select(
            part.label("part"),
            c.branch_id.label("a"),
            c.store_id.label("b"),
            *_sums(order_rollups, FIGURE_COUNTERS),
        )
        .where(
            *_below(order_rollups, branch_id, store_id),
            c.service_type == _ALL,
            _in_period(order_rollups, period),
        )
        .group_by(c.branch_id, c.store_id)
    )


async def turnaround_sketch(
    session: AsyncConnection, branch_id: str | None, store_id: str | None, period: Period
) -> dict[int, int]:
    return (await scope_sketches(session, branch_id, store_id, period, below=False))[0]


async def unit_sketches(
    session: AsyncConnection, branch_id: str | None, store_id: str | None, period: Period
) -> dict[tuple[str, str], dict[int, int]]:
    """The turnaround sketch of each unit below the scope."""
    return (await scope_sketches(session, branch_id, store_id, period, own=False))[1]


async def scope_sketches(
    session: AsyncConnection,
    branch_id: str | None,
    store_id: str | None,
    period: Period,
    *,
    own: bool = True,
    below: bool = True,
) -> tuple[dict[int, int], dict[tuple[str, str], dict[int, int]]]:
    """The unit's turnaround sketch over the period and each unit's below it, in one
    statement: a sketch row per unit and tile of the period, their buckets' counts added up
    here (HQ's 30 branches over a year are some 500 rows)."""
    c = turnaround_sketches.c
    parts: list[tuple[Any, list[Any]]] = []
    if own:
        parts.append((_OWN, _unit(turnaround_sketches, branch_id, store_id)))
    if below:
        parts.append((_BELOW, _below(turnaround_sketches, branch_id, store_id)))
    runs = [
        # As text, parsed here by orjson: twice as fast as the json module on ~500 rows.
        select(
            part.label("part"), c.branch_id, c.store_id, cast(c.counts, Text).label("counts")
        ).where(*conditions, c.grain == tile.grain, c.day >= tile.first, c.day <= tile.last)
        for part, conditions in parts
        for tile in tiles(period)
    ]
    mine: dict[str, int] = {}
    theirs: dict[tuple[str, str], dict[str, int]] = {}
    for row in await session.execute(runs[0] if len(runs) == 1 else union_all(*runs)):
        into = mine if row.part == "own" else theirs.setdefault((row.branch_id, row.store_id), {})
        for bucket, n in orjson.loads(row.counts).items():
            into[bucket] = into.get(bucket, 0) + n
    return _by_bucket(mine), {unit: _by_bucket(counts) for unit, counts in theirs.items()}


def _by_bucket(counts: Mapping[str, int]) -> dict[int, int]:
    return {int(bucket): n for bucket, n in counts.items() if n}


def _day_bounds(period: Period) -> tuple[datetime, datetime]:
    return shanghai_day_start_utc(period.first), shanghai_day_end_utc(period.last)


async def store_turnarounds(
    session: AsyncConnection, branch_id: str | None, store_id: str, period: Period
) -> list[int]:
    """One store's turnarounds (seconds) of the orders ready in the period, from its facts."""
    c = order_facts.c
    start, end = _day_bounds(period)
    conditions = [c.store_id == store_id, c.ready_at >= start, c.ready_at < end]
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    rows = await session.execute(select(c.received_at, c.ready_at).where(*conditions))
    return [
        max(int((as_utc(ready) - as_utc(received)).total_seconds()), 0)
        for received, ready in rows
        if received is not None
    ]


async def backlog_rows(
    session: AsyncConnection, branch_id: str | None, store_id: str | None
) -> list[tuple[date, dict[str, int]]]:
    c = open_orders.c
    rows = await session.execute(
        select(c.day, *[c[name] for name in BACKLOG_COUNTERS]).where(
            *_unit(open_orders, branch_id, store_id),
            or_(*[c[name] != 0 for name in BACKLOG_COUNTERS]),
        )
    )
    return [(r.day, _counters(r, BACKLOG_COUNTERS)) for r in rows]


async def technician_rows(
    session: AsyncConnection, branch_id: str | None, store_id: str | None, period: Period
) -> list[tuple[str, str, str, dict[str, int]]]:
    """Per technician of a branch or a store over the period (HQ: none, see handlers)."""
    c = technician_rollups.c
    conditions: list[ColumnElement[bool]] = []
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if store_id:
        conditions.append(c.store_id == store_id)
    rows = await session.execute(
        select(
            c.technician_id,
            c.branch_id,
            c.store_id,
            *_sums(technician_rollups, TECHNICIAN_COUNTERS),
        )
        .where(*conditions, _in_period(technician_rollups, period))
        .group_by(c.technician_id, c.branch_id, c.store_id)
        .order_by(c.store_id, c.technician_id)
    )
    return [
        (r.technician_id, r.branch_id, r.store_id, _counters(r, TECHNICIAN_COUNTERS)) for r in rows
    ]


# --- drill-down ---------------------------------------------------------------------------

_FIGURE_TIME = {
    "received": "received_at",
    "repeat_received": "received_at",
    "ready": "ready_at",
    "on_time": "ready_at",
    "late": "ready_at",
    "closed": "closed_at",
    "not_first_time_fixed": "closed_at",
    "followed_up": "closed_at",
    "cancelled": "cancelled_at",
    "open": "received_at",
    "waiting_parts": "received_at",
    "swap_limit": "received_at",
}
FIGURES_LISTED = tuple(_FIGURE_TIME)


def figure_time(figure: str) -> str:
    """The fact's time a figure's orders are listed by."""
    return _FIGURE_TIME[figure]


def _figure_filter(figure: str, period: Period) -> list[ColumnElement[bool]]:
    """Which facts make up a figure: the same rules as domain/rollups.py, as SQL."""
    c = order_facts.c
    start, end = _day_bounds(period)
    moment = c[_FIGURE_TIME[figure]]
    if figure in ("open", "waiting_parts", "swap_limit"):
        # State now, of orders taken in up to the period's end (the backlog's rows).
        conditions = [moment < end, c.closed_at.is_(None), c.cancelled_at.is_(None)]
        if figure == "waiting_parts":
            conditions.append(c.status == "waiting_parts")
        if figure == "swap_limit":
            conditions += [c.warranty_status == "in_warranty", c.worked_at.is_(None)]
        return conditions
    conditions = [moment >= start, moment < end]
    match figure:
        case "repeat_received":
            conditions.append(c.repeat_repair.is_(True))
        case "on_time":
            conditions.append(c.on_time.is_(True))
        case "late":
            conditions.append(c.on_time.is_(False))
        case "not_first_time_fixed":
            conditions += [
                c.declined_at.is_(None),
                or_(c.qc_failures > 0, c.came_back_as != ""),
            ]
        case "followed_up":
            conditions += [c.follow_up_state == "done", c.satisfaction > 0]
    return conditions


async def figure_orders(
    session: AsyncConnection,
    branch_id: str | None,
    store_id: str | None,
    period: Period,
    figure: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[OrderFact]:
    """A page of the orders behind a figure, by the time of the figure's event then order id,
    starting after `after`."""
    c = order_facts.c
    moment = c[_FIGURE_TIME[figure]]
    conditions = _figure_filter(figure, period)
    if branch_id:
        conditions.append(c.branch_id == branch_id)
    if store_id:
        conditions.append(c.store_id == store_id)
    if after is not None:
        conditions.append(tuple_(moment, c.order_id) > tuple_(bindparam("t", after[0]), after[1]))
    rows = await session.execute(
        select(order_facts).where(*conditions).order_by(moment, c.order_id).limit(limit)
    )
    return [_fact(row) for row in rows]


# --- bulk loading (seed-history) ----------------------------------------------------------


async def is_empty(session: AsyncConnection) -> bool:
    return (await session.execute(select(order_facts.c.order_id).limit(1))).first() is None


async def insert_facts(session: AsyncConnection, facts: Sequence[OrderFact]) -> None:
    await _bulk_insert(
        session,
        order_facts,
        (*FACT_COLUMNS, "on_time"),
        [(*_FACT_VALUES(f), f.on_time) for f in facts],
    )


async def insert_rollups(session: AsyncConnection, rollups: Rollups) -> None:
    """New rollup rows (none of their keys may be there yet): COPY on PostgreSQL."""
    by_kind: dict[type, list[tuple[Any, ...]]] = {}
    await _insert_sketches(
        session, _sketches((k, v) for k, v in rollups.items() if isinstance(k, TurnaroundKey))
    )
    for key, amounts in rollups.items():
        kind: type = type(key)
        if kind is TurnaroundKey:
            continue
        counters = _ROLLUPS[kind][1]
        by_kind.setdefault(kind, []).append(
            (*_key_fields(kind)[1](key), *[amounts.get(name, 0) for name in counters])
        )
    for kind, rows in by_kind.items():
        table, counters = _ROLLUPS[kind]
        await _bulk_insert(session, table, (*_key_fields(kind)[0], *counters), rows)


async def insert_sums(session: AsyncConnection, sums: RowSums) -> None:
    """New rollup rows from row sums (none of their keys may be there yet): COPY on
    PostgreSQL."""
    turnarounds = sums.get(TurnaroundKey, {})
    await _insert_sketches(
        session, _sketches((TurnaroundKey(*key), n) for key, n in turnarounds.items())
    )
    for kind in _ROLLUPS:
        rows = sums.get(kind)
        if not rows:
            continue
        table, counters = _ROLLUPS[kind]
        records = [
            (*key, *[amounts.get(name, 0) for name in counters])
            for key, amounts in rows.items()
            if amounts
        ]
        await _bulk_insert(session, table, (*_key_fields(kind)[0], *counters), records)


async def _insert_sketches(
    session: AsyncConnection, sketches: Mapping[SketchKey, Mapping[int, int]]
) -> None:
    # COPY takes JSON as its text; an insert through the table, as the object.
    as_text = session.dialect.name == "postgresql"
    rows = []
    for key, counts in sorted(sketches.items()):
        packed = _counts_json(counts)
        rows.append((*key, json.dumps(packed) if as_text else packed))
    await _bulk_insert(session, turnaround_sketches, (*_SKETCH_KEY, "counts"), rows)


async def _bulk_insert(
    session: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
) -> None:
    if not rows:
        return
    if session.dialect.name != "postgresql":
        await session.execute(
            table.insert(), [dict(zip(columns, row, strict=True)) for row in rows]
        )
        return
    # The transaction is begun on this connection already (the emptiness check); COPY joins it.
    raw = await session.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        table.name, records=rows, columns=list(columns)
    )


BULK_TABLES = (order_facts, order_rollups, open_orders, turnaround_sketches, technician_rollups)


async def drop_indexes(session: AsyncConnection) -> None:
    """Before a bulk load into empty tables: their secondary indexes, built again after it at
    once (a sort each) instead of row by row."""
    for table in BULK_TABLES:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            await session.execute(DropIndex(index, if_exists=True))


async def create_indexes(session: AsyncConnection) -> None:
    for table in BULK_TABLES:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            await session.execute(CreateIndex(index, if_not_exists=True))


async def vacuum(db: Database) -> None:
    """After a bulk load on PostgreSQL: statistics for the planner, and the visibility map
    that lets the dashboards' reads come from the indexes alone."""
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in BULK_TABLES:
            await autocommit.execute(text(f"VACUUM ANALYZE {table.name}"))
