"""The orders gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

import grpc

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import current_auth
from servicekit.idempotency import request_hash
from servicekit.timeutil import to_timestamp
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.domain.intake import IntakeForm
from services.orders.domain.order import RepairOrder


def _day(value: object) -> str:
    return value.isoformat() if value else ""  # type: ignore[attr-defined]


def order_message(order: RepairOrder) -> orders_pb2.RepairOrder:
    intake, warranty = order.intake, order.warranty
    return orders_pb2.RepairOrder(
        id=order.id,
        number=order.number,
        status=order.status,
        service_type=intake.service_type,
        branch_id=order.branch_id,
        store_id=order.store_id,
        customer=orders_pb2.Customer(name=intake.customer_name, phone=intake.customer_phone),
        device=orders_pb2.Device(
            imei=intake.imei,
            brand=intake.brand,
            model=intake.model,
            colour=intake.colour,
            purchase_date=_day(intake.purchase_date),
        ),
        fault=orders_pb2.Fault(
            description=intake.fault_description, symptom_code=intake.symptom_code
        ),
        warranty=orders_pb2.WarrantyDecision(
            status=warranty.status,
            entitlements=list(warranty.entitlements),
            reason=warranty.reason,
            expires_on=_day(warranty.expires_on),
            send_on_required=warranty.send_on_required,
        ),
        brand_authorised=order.brand_authorised,
        repeat_repair=order.repeat_repair,
        accessories=intake.accessories,
        appearance=intake.appearance,
        promised_date=_day(intake.promised_date),
        received_at=to_timestamp(order.received_at),
        created_by=order.created_by,
        timeline=[
            orders_pb2.TimelineEntry(
                status=e.status,
                at=to_timestamp(e.at),
                user_id=e.user_id,
                store_id=e.store_id,
                note=e.note,
            )
            for e in order.timeline
        ],
    )


class OrdersService(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, new_uow: handlers.NewUow) -> None:
        self.new_uow = new_uow
        self.base_data = repository.BaseDataCache()

    async def CreateRepairOrder(
        self, request: orders_pb2.CreateRepairOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.RepairOrder:
        form = IntakeForm(
            customer_name=request.customer.name,
            customer_phone=request.customer.phone,
            imei=request.device.imei,
            brand=request.device.brand,
            model=request.device.model,
            colour=request.device.colour,
            purchase_date=request.device.purchase_date,
            fault_description=request.fault.description,
            symptom_code=request.fault.symptom_code,
            service_type=request.service_type,
            accessories=request.accessories,
            appearance=request.appearance,
            promised_date=request.promised_date,
        )
        order = await handlers.create_repair_order(
            self.new_uow,
            self.base_data,
            current_auth(),
            form,
            branch_id=request.branch_id,
            store_id=request.store_id,
            request_id=request.request_id or None,
            request_hash=request.request_hash or request_hash(request),
        )
        return order_message(order)

    async def GetRepairOrder(
        self, request: orders_pb2.GetRepairOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.RepairOrder:
        return order_message(
            await handlers.get_repair_order(self.new_uow, current_auth(), request.id)
        )

    async def ListRepairOrders(
        self, request: orders_pb2.ListRepairOrdersRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.ListRepairOrdersResponse:
        where = handlers.order_filter(
            current_auth(),
            branch_id=request.branch_id,
            store_id=request.store_id,
            status=request.status,
            service_type=request.service_type,
            imei=request.imei,
            phone=request.phone,
            received_from=request.received_from,
            received_to=request.received_to,
        )
        orders, token = await handlers.list_repair_orders(
            self.new_uow, where, request.page_size, request.page_token
        )
        return orders_pb2.ListRepairOrdersResponse(
            orders=[order_message(o) for o in orders], next_page_token=token
        )

    async def ListBrands(
        self, request: orders_pb2.ListBrandsRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.ListBrandsResponse:
        current_auth()
        async with self.new_uow() as uow:
            rows = await repository.list_brands(uow.session)
        return orders_pb2.ListBrandsResponse(
            brands=[
                orders_pb2.Brand(
                    code=code,
                    name=name,
                    models=[orders_pb2.Model(code=m, name=n) for m, n in models],
                )
                for code, name, models in rows
            ]
        )

    async def Ping(
        self, request: orders_pb2.PingRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.PingResponse:
        return orders_pb2.PingResponse()


def register(server: grpc.aio.Server, new_uow: handlers.NewUow) -> None:
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(OrdersService(new_uow), server)
