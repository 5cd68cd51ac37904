"""Bodies of the report centre's routes (报表中心). Each figure is described by its title and
definition as the contract writes them once (reporting.proto, options kpi_title and
kpi_definition), so the OpenAPI page says exactly what the reporting service counts."""

from __future__ import annotations

from typing import Any, Literal

from google.protobuf.descriptor import Descriptor
from pydantic import BaseModel, Field

from aftersales.reporting.v1 import reporting_pb2


def described(message: Descriptor, name: str) -> Any:
    """A Field described as the contract defines the figure `name` of `message`."""
    options = message.fields_by_name[name].GetOptions()
    title = options.Extensions[reporting_pb2.kpi_title]
    definition = options.Extensions[reporting_pb2.kpi_definition]
    return Field(description=f"{title}: {definition}")


_F = reporting_pb2.Figures.DESCRIPTOR
_B = reporting_pb2.Backlog.DESCRIPTOR
_T = reporting_pb2.TechnicianFigures.DESCRIPTOR


class Figures(BaseModel):
    """Every order figure of a scope and period; a rate or an average is null when there was
    nothing to divide by."""

    received: int = described(_F, "received")
    closed: int = described(_F, "closed")
    cancelled: int = described(_F, "cancelled")
    ready: int = described(_F, "ready")
    turnaround_median_hours: float | None = described(_F, "turnaround_median_hours")
    turnaround_p90_hours: float | None = described(_F, "turnaround_p90_hours")
    turnaround_mean_hours: float | None = described(_F, "turnaround_mean_hours")
    promised: int = described(_F, "promised")
    on_time: int = described(_F, "on_time")
    on_time_rate: float | None = described(_F, "on_time_rate")
    repeat_received: int = described(_F, "repeat_received")
    repeat_repair_rate: float | None = described(_F, "repeat_repair_rate")
    repaired: int = described(_F, "repaired")
    first_time_fixed: int = described(_F, "first_time_fixed")
    first_time_fix_rate: float | None = described(_F, "first_time_fix_rate")
    followed_up: int = described(_F, "followed_up")
    follow_up_rate: float | None = described(_F, "follow_up_rate")
    average_satisfaction: float | None = described(_F, "average_satisfaction")
    revenue_fen: int = described(_F, "revenue_fen")
    labour_claimed_fen: int = described(_F, "labour_claimed_fen")
    labour_accepted_fen: int = described(_F, "labour_accepted_fen")
    labour_paid_fen: int = described(_F, "labour_paid_fen")


class SplitFigures(BaseModel):
    service_type: str
    brand: str
    figures: Figures


class UnitFigures(BaseModel):
    branch_id: str
    store_id: str | None = Field(description="null for a branch")
    figures: Figures


class AgeBucket(BaseModel):
    age: Literal["0-2", "3-7", "8-14", "15-30", "31+"] = Field(description="days")
    orders: int


class Backlog(BaseModel):
    """Orders open now, by age counted to date_to."""

    open: list[AgeBucket] = described(_B, "open")
    waiting_parts: list[AgeBucket] = described(_B, "waiting_parts")
    swap_limit_near: int = described(_B, "swap_limit_near")
    swap_limit_passed: int = described(_B, "swap_limit_passed")


class TechnicianFigures(BaseModel):
    technician_id: str
    branch_id: str
    store_id: str
    completed: int = described(_T, "completed")
    turnaround_mean_hours: float | None = described(_T, "turnaround_mean_hours")
    came_back: int = described(_T, "came_back")
    repeat_rate: float | None = described(_T, "repeat_rate")
    average_satisfaction: float | None = described(_T, "average_satisfaction")


class StoreKpis(BaseModel):
    branch_id: str
    store_id: str
    orders_received: int


class ServiceTypeKpis(BaseModel):
    service_type: str
    orders_received: int


class Kpis(BaseModel):
    branch_id: str | None
    store_id: str | None
    date_from: str
    date_to: str
    orders_received: int = described(_F, "received")
    by_store: list[StoreKpis] = Field(
        description="orders received per store of a branch, or the store itself; empty for "
        "the whole chain, where by_unit lists the branches"
    )
    by_service_type: list[ServiceTypeKpis]
    figures: Figures
    by_split: list[SplitFigures] = Field(description="by service type and brand")
    by_unit: list[UnitFigures] = Field(
        description="by the level below: HQ → branches, branch → stores; empty for a store"
    )
    backlog: Backlog
    technicians: list[TechnicianFigures] = Field(
        description="技师绩效, by the day the technician finished the work; for a branch or a "
        "store (empty at HQ: ask per branch)"
    )


class FigureOrder(BaseModel):
    order_id: str
    number: str
    branch_id: str
    store_id: str
    service_type: str
    brand: str
    warranty_status: str
    status: str
    received_at: str | None
    ready_at: str | None
    closed_at: str | None
    promised_date: str | None
    technician_id: str | None
    satisfaction: int | None


class FigureOrderPage(BaseModel):
    items: list[FigureOrder]
    next_cursor: str | None
