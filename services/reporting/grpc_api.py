"""The reporting gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

import grpc

from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from servicekit.auth import current_auth
from services.reporting import handlers
from services.reporting.domain.kpis import Kpis


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
    )


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


def register(server: grpc.aio.Server, new_uow: handlers.NewUow) -> None:
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingService(new_uow), server)
