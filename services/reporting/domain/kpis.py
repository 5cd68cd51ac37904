"""The report centre's figures (报表中心) and how each is worked out from the rollups' counters.

Each figure's name, Chinese title and definition are written once, on its field in the contract
(protos/aftersales/reporting/v1/reporting.proto, options kpi_title and kpi_definition): the
gateway may not import this service's code, and its OpenAPI describes every figure with the
same words. `DEFINITIONS` reads them from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from google.protobuf.descriptor import Descriptor

from aftersales.reporting.v1 import reporting_pb2
from services.reporting.domain import sketch
from services.reporting.domain.period import Period

SECONDS_PER_HOUR = 3600

FIGURE_COUNTERS = (
    "received",
    "repeat_received",
    "ready",
    "turnaround_seconds",
    "promised",
    "on_time",
    "closed",
    "repaired",
    "first_time_fixed",
    "revenue_fen",
    "followed_up",
    "satisfaction_sum",
    "labour_claimed_fen",
    "labour_accepted_fen",
    "labour_paid_fen",
    "cancelled",
)
"""The counter columns of `order_rollups`, each on the day its figure belongs to."""

BACKLOG_COUNTERS = ("open", "swap_clock", "waiting_parts")
TECHNICIAN_COUNTERS = (
    "completed",
    "turnaround_seconds",
    "ready",
    "came_back",
    "followed_up",
    "satisfaction_sum",
)

AGE_BUCKETS = ((0, 2), (3, 7), (8, 14), (15, 30), (31, None))
"""Backlog ages in days, both ends inclusive; None: and older."""

SWAP_LIMIT_DAYS = 60
SWAP_LIMIT_NEAR_DAYS = 45
"""三包: an in-warranty repair not done within 60 days of intake for want of parts is owed a
swap; from day 45 the branch sees it coming."""


@dataclass(frozen=True)
class Definition:
    name: str
    title: str
    definition: str


def definitions(message: Descriptor) -> dict[str, Definition]:
    """The figures a message of the contract defines, by field name."""
    found = {}
    for item in message.fields:
        options = item.GetOptions()
        title = options.Extensions[reporting_pb2.kpi_title]
        if title:
            found[item.name] = Definition(
                item.name, title, options.Extensions[reporting_pb2.kpi_definition]
            )
    return found


DEFINITIONS = {
    **definitions(reporting_pb2.Figures.DESCRIPTOR),
    **definitions(reporting_pb2.Backlog.DESCRIPTOR),
}


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_HOUR


@dataclass(frozen=True)
class Figures:
    """A scope's counters over a period, and the turnaround percentiles (hours) beside them."""

    counters: Mapping[str, int] = field(default_factory=dict)
    turnaround_median_hours: float | None = None
    turnaround_p90_hours: float | None = None

    def __getitem__(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    @property
    def turnaround_mean_hours(self) -> float | None:
        mean = ratio(self["turnaround_seconds"], self["ready"])
        return hours(mean)

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self["on_time"], self["promised"])

    @property
    def repeat_repair_rate(self) -> float | None:
        return ratio(self["repeat_received"], self["received"])

    @property
    def first_time_fix_rate(self) -> float | None:
        return ratio(self["first_time_fixed"], self["repaired"])

    @property
    def follow_up_rate(self) -> float | None:
        return ratio(self["followed_up"], self["closed"])

    @property
    def average_satisfaction(self) -> float | None:
        return ratio(self["satisfaction_sum"], self["followed_up"])


def add_counters(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for row in rows:
        for name, amount in row.items():
            total[name] = total.get(name, 0) + int(amount or 0)
    return total


def with_sketch(counters: Mapping[str, int], buckets: Mapping[int, int]) -> Figures:
    """Figures whose percentiles come from merged sketch buckets (a branch, HQ)."""
    return Figures(
        dict(counters),
        hours(sketch.quantile(buckets, 0.5)),
        hours(sketch.quantile(buckets, 0.9)),
    )


def with_exact(counters: Mapping[str, int], turnarounds: Iterable[int]) -> Figures:
    """Figures whose percentiles come from the orders' own turnarounds (one store)."""
    values = list(turnarounds)
    return Figures(
        dict(counters),
        hours(sketch.exact_quantile(values, 0.5)),
        hours(sketch.exact_quantile(values, 0.9)),
    )


@dataclass(frozen=True)
class SplitFigures:
    service_type: str
    brand: str
    figures: Figures


@dataclass(frozen=True)
class UnitFigures:
    branch_id: str
    store_id: str
    figures: Figures


@dataclass(frozen=True)
class Backlog:
    """Orders open now, by age in days on the asked day."""

    open: tuple[tuple[str, int], ...]
    waiting_parts: tuple[tuple[str, int], ...]
    swap_limit_near: int
    swap_limit_passed: int


def age_label(low: int, high: int | None) -> str:
    return f"{low}-{high}" if high is not None else f"{low}+"


def backlog(rows: Iterable[tuple[date, Mapping[str, int]]], on: date) -> Backlog:
    """The open-order rows (by intake day, or by day waiting began) bucketed by age on `on`;
    rows dated after `on` are orders that came later and are left out."""
    open_by_age = dict.fromkeys(AGE_BUCKETS, 0)
    waiting_by_age = dict.fromkeys(AGE_BUCKETS, 0)
    near = passed = 0
    for day, counters in rows:
        age = (on - day).days
        if age < 0:
            continue
        bucket = next(b for b in AGE_BUCKETS if b[1] is None or age <= b[1])
        open_by_age[bucket] += counters.get("open", 0)
        waiting_by_age[bucket] += counters.get("waiting_parts", 0)
        clock = counters.get("swap_clock", 0)
        if age >= SWAP_LIMIT_DAYS:
            passed += clock
        elif age >= SWAP_LIMIT_NEAR_DAYS:
            near += clock
    return Backlog(
        tuple((age_label(*b), n) for b, n in open_by_age.items()),
        tuple((age_label(*b), n) for b, n in waiting_by_age.items()),
        near,
        passed,
    )


@dataclass(frozen=True)
class TechnicianFigures:
    technician_id: str
    branch_id: str
    store_id: str
    counters: Mapping[str, int]

    def __getitem__(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    @property
    def turnaround_mean_hours(self) -> float | None:
        return hours(ratio(self["turnaround_seconds"], self["ready"]))

    @property
    def repeat_rate(self) -> float | None:
        return ratio(self["came_back"], self["completed"])

    @property
    def average_satisfaction(self) -> float | None:
        return ratio(self["satisfaction_sum"], self["followed_up"])


@dataclass(frozen=True)
class StoreKpis:
    branch_id: str
    store_id: str
    orders_received: int


@dataclass(frozen=True)
class ServiceTypeKpis:
    service_type: str
    orders_received: int


@dataclass(frozen=True)
class Kpis:
    """Every figure for one scope (None: all branches or all stores of it) and period."""

    branch_id: str | None
    store_id: str | None
    period: Period
    figures: Figures
    by_split: tuple[SplitFigures, ...] = ()
    by_unit: tuple[UnitFigures, ...] = ()
    by_store: tuple[StoreKpis, ...] = ()
    backlog: Backlog | None = None
    technicians: tuple[TechnicianFigures, ...] = ()

    @property
    def orders_received(self) -> int:
        return self.figures["received"]

    @property
    def by_service_type(self) -> tuple[ServiceTypeKpis, ...]:
        """Orders received per service type (the split summed over brands)."""
        types: dict[str, int] = {}
        for split in self.by_split:
            types[split.service_type] = types.get(split.service_type, 0) + split.figures["received"]
        return tuple(ServiceTypeKpis(kind, n) for kind, n in sorted(types.items()) if n)
