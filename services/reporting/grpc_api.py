"""The reporting gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

import grpc

from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from servicekit.auth import current_auth
from servicekit.timeutil import to_timestamp
from services.reporting import handlers
from services.reporting.domain.facts import OrderFact
from services.reporting.domain.kpis import Backlog, Figures, Kpis, TechnicianFigures

_COUNTS = (
    "received",
    "closed",
    "cancelled",
    "ready",
    "promised",
    "on_time",
    "repeat_received",
    "repaired",
    "first_time_fixed",
    "followed_up",
    "revenue_fen",
    "labour_claimed_fen",
    "labour_accepted_fen",
    "labour_paid_fen",
)
_MEASURES = (
    "turnaround_median_hours",
    "turnaround_p90_hours",
    "turnaround_mean_hours",
    "on_time_rate",
    "repeat_repair_rate",
    "first_time_fix_rate",
    "follow_up_rate",
    "average_satisfaction",
)


def figures_message(figures: Figures) -> reporting_pb2.Figures:
    message = reporting_pb2.Figures(**{name: figures[name] for name in _COUNTS})
    for name in _MEASURES:
        value = getattr(figures, name)
        if value is not None:
            setattr(message, name, value)
    return message


def backlog_message(backlog: Backlog | None) -> reporting_pb2.Backlog | None:
    if backlog is None:
        return None
    return reporting_pb2.Backlog(
        open=[reporting_pb2.AgeBucket(age=age, orders=n) for age, n in backlog.open],
        waiting_parts=[
            reporting_pb2.AgeBucket(age=age, orders=n) for age, n in backlog.waiting_parts
        ],
        swap_limit_near=backlog.swap_limit_near,
        swap_limit_passed=backlog.swap_limit_passed,
    )


def technician_message(technician: TechnicianFigures) -> reporting_pb2.TechnicianFigures:
    message = reporting_pb2.TechnicianFigures(
        technician_id=technician.technician_id,
        branch_id=technician.branch_id,
        store_id=technician.store_id,
        completed=technician["completed"],
        came_back=technician["came_back"],
    )
    for name in ("turnaround_mean_hours", "repeat_rate", "average_satisfaction"):
        value = getattr(technician, name)
        if value is not None:
            setattr(message, name, value)
    return message


def kpis_message(kpis: Kpis) -> reporting_pb2.Kpis:
    return reporting_pb2.Kpis(
        branch_id=kpis.branch_id or "",
        store_id=kpis.store_id or "",
        date_from=kpis.period.first.isoformat(),
        date_to=kpis.period.last.isoformat(),
        orders_received=kpis.orders_received,
        by_store=[
            reporting_pb2.StoreKpis(
                branch_id=s.branch_id, store_id=s.store_id, orders_received=s.orders_received
            )
            for s in kpis.by_store
        ],
        by_service_type=[
            reporting_pb2.ServiceTypeKpis(
                service_type=t.service_type, orders_received=t.orders_received
            )
            for t in kpis.by_service_type
        ],
        figures=figures_message(kpis.figures),
        by_split=[
            reporting_pb2.SplitFigures(
                service_type=s.service_type, brand=s.brand, figures=figures_message(s.figures)
            )
            for s in kpis.by_split
        ],
        by_unit=[
            reporting_pb2.UnitFigures(
                branch_id=u.branch_id, store_id=u.store_id, figures=figures_message(u.figures)
            )
            for u in kpis.by_unit
        ],
        backlog=backlog_message(kpis.backlog),
        technicians=[technician_message(t) for t in kpis.technicians],
    )


def figure_order_message(fact: OrderFact) -> reporting_pb2.FigureOrder:
    message = reporting_pb2.FigureOrder(
        order_id=fact.order_id,
        number=fact.number,
        branch_id=fact.branch_id,
        store_id=fact.store_id,
        service_type=fact.service_type,
        brand=fact.brand,
        warranty_status=fact.warranty_status,
        status=fact.status,
        promised_date=fact.promised_date.isoformat() if fact.promised_date else "",
        technician_id=fact.technician_id,
        satisfaction=fact.satisfaction if fact.followed_up else 0,
    )
    for name in ("received_at", "ready_at", "closed_at"):
        moment = getattr(fact, name)
        if moment is not None:
            getattr(message, name).CopyFrom(to_timestamp(moment))
    return message


class ReportingService(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, new_uow: handlers.NewUow) -> None:
        self.new_uow = new_uow

    async def GetKpis(
        self, request: reporting_pb2.GetKpisRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.Kpis:
        kpis = await handlers.get_kpis(
            self.new_uow,
            current_auth(),
            branch_id=request.branch_id,
            store_id=request.store_id,
            date_from=request.date_from,
            date_to=request.date_to,
        )
        return kpis_message(kpis)

    async def ListFigureOrders(
        self, request: reporting_pb2.ListFigureOrdersRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.FigureOrders:
        facts, token = await handlers.list_figure_orders(
            self.new_uow,
            current_auth(),
            branch_id=request.branch_id,
            store_id=request.store_id,
            date_from=request.date_from,
            date_to=request.date_to,
            figure=request.figure,
            requested_page_size=request.page_size,
            page_token=request.page_token,
        )
        return reporting_pb2.FigureOrders(
            orders=[figure_order_message(f) for f in facts], next_page_token=token
        )


def register(server: grpc.aio.Server, new_uow: handlers.NewUow) -> None:
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingService(new_uow), server)
