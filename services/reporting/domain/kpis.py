"""What the report centre counts (报表中心): daily counters per store and service type, which
every KPI of any level (store, branch, HQ) and any period is summed from."""

from __future__ import annotations

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
class Kpis:
    """The figures for one scope (None: all branches or all stores of it) and period."""

    branch_id: str | None
    store_id: str | None
    period: Period
    by_store: tuple[StoreKpis, ...]

    @property
    def orders_received(self) -> int:
        return sum(store.orders_received for store in self.by_store)
