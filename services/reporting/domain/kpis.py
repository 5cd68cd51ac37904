"""What the report centre counts (报表中心): daily counters per store and service type, which
every KPI of any level (store, branch, HQ) and any period is summed from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from servicekit.timeutil import shanghai_day
from services.reporting.domain.period import Period


@dataclass(frozen=True)
class DailyKey:
    """One row of the daily counters: a store's business day, for one service type."""

    day: date
    branch_id: str
    store_id: str
    service_type: str


def daily_key(happened_at: datetime, branch_id: str, store_id: str, service_type: str) -> DailyKey:
    """An event counts on the Asia/Shanghai business day it happened on, not its UTC day: an
    order taken in at 00:30 in Shanghai belongs to that morning's figures."""
    if not branch_id or not store_id:
        raise ValueError("an event without its branch and store cannot be counted")
    return DailyKey(shanghai_day(happened_at), branch_id, store_id, service_type)


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
class CountRow:
    """Orders received by one store for one service type over the period."""

    branch_id: str
    store_id: str
    service_type: str
    orders_received: int


@dataclass(frozen=True)
class Kpis:
    """The figures for one scope (None: all branches or all stores of it) and period."""

    branch_id: str | None
    store_id: str | None
    period: Period
    by_store: tuple[StoreKpis, ...]
    by_service_type: tuple[ServiceTypeKpis, ...] = ()

    @property
    def orders_received(self) -> int:
        return sum(store.orders_received for store in self.by_store)


def summarise(
    rows: Iterable[CountRow],
) -> tuple[tuple[StoreKpis, ...], tuple[ServiceTypeKpis, ...]]:
    """Per store (ordered by store) and per service type (ordered by type) from the counts of
    each store and type: one query serves both."""
    stores: dict[tuple[str, str], int] = {}
    types: dict[str, int] = {}
    for row in rows:
        key = (row.branch_id, row.store_id)
        stores[key] = stores.get(key, 0) + row.orders_received
        types[row.service_type] = types.get(row.service_type, 0) + row.orders_received
    return (
        tuple(
            StoreKpis(branch, store, total)
            for (branch, store), total in sorted(stores.items(), key=lambda kv: kv[0][::-1])
        ),
        tuple(ServiceTypeKpis(kind, total) for kind, total in sorted(types.items())),
    )
