"""The orders gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import grpc

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import AuthContext, current_auth
from servicekit.errors import invalid
from servicekit.idempotency import request_hash
from servicekit.timeutil import to_timestamp
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.inventory import Parts
from services.orders.domain import lifecycle
from services.orders.domain.base_data import check_diagnosis_codes
from services.orders.domain.intake import IntakeForm
from services.orders.domain.order import Diagnosis, PlannedPart, RepairOrder


def _day(value: object) -> str:
    return value.isoformat() if value else ""  # type: ignore[attr-defined]


def order_message(order: RepairOrder) -> orders_pb2.RepairOrder:
    intake, warranty, work = order.intake, order.warranty, order.work
    message = orders_pb2.RepairOrder(
        id=order.id,
        number=order.number,
        status=order.status,
        service_type=intake.service_type,
        branch_id=order.branch_id,
        store_id=order.store_id,
        customer=orders_pb2.Customer(
            name=intake.customer_name,
            phone=intake.customer_phone,
            message_consent=intake.message_consent,
            language=intake.language,
        ),
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
                step=e.step,
            )
            for e in order.timeline
        ],
        version=order.version,
        lines=[
            orders_pb2.OrderLine(
                line_id=line.line_id,
                part_id=line.part_id,
                quantity=line.quantity,
                warranty=line.warranty,
                reserved=line.reserved,
                short=line.short,
                issued=line.issued,
                released=line.released,
                old_part_kept=line.old_part_kept,
                retail_price_fen=line.retail_price_fen,
            )
            for line in work.lines
        ],
        payments=[
            orders_pb2.Payment(method=p.method, amount_fen=p.amount_fen, at=to_timestamp(p.at))
            for p in work.payments
        ],
        actions_done=list(work.actions_done),
        repair_level=work.repair_level,
        qc_failures=work.qc_failures,
    )
    if work.diagnosis:
        d = work.diagnosis
        message.diagnosis.CopyFrom(
            orders_pb2.Diagnosis(
                symptom_code=d.symptom_code,
                fault_code=d.fault_code,
                cause_code=d.cause_code,
                actions=list(d.actions),
                parts=[
                    orders_pb2.PlannedPart(part_id=p.part_id, quantity=p.quantity) for p in d.parts
                ],
                repair_level=d.repair_level,
                warranty_override=d.warranty_override,
                override_reason=d.override_reason,
            )
        )
    if work.quote:
        message.quote.CopyFrom(
            orders_pb2.Quote(
                labour_fen=work.quote.labour_fen,
                parts_fen=work.quote.parts_fen,
                total_fen=work.quote.total_fen,
                manager_approval_required=work.manager_approval_required,
                customer_approved=work.customer_approved,
                manager_approved=work.manager_approved,
            )
        )
    if order.closed_at:
        message.closed_at.CopyFrom(to_timestamp(order.closed_at))
    return message


# Which part of TakeStepRequest.data each step reads.
STEP_DATA = {
    "diagnosis": "diagnosis",
    "quote": "quote",
    "approval": "decision",
    "manager-approval": "decision",
    "parts": None,
    "repair/start": None,
    "repair/finish": "repair",
    "qc": "decision",
    "pickup": "pickup",
    "cancel": "cancel",
}


def step_action(
    auth: AuthContext,
    request: orders_pb2.TakeStepRequest,
    retail_prices: Mapping[str, int],
    base: repository.BaseData,
) -> handlers.Apply:
    """The pure transition a request asks for, with its data out of protobuf (and, for a
    diagnosis, the catalog's prices of the planned parts), under HQ's base data."""
    step = request.step
    if step not in STEP_DATA:
        raise invalid("step", f"must be one of {', '.join(STEP_DATA)}")
    wanted = STEP_DATA[step]
    if wanted and request.WhichOneof("data") != wanted:
        raise invalid(wanted, f"the step {step} needs its {wanted}")
    decision, report = request.decision, request.repair
    if step == "diagnosis":
        d = request.diagnosis
        diagnosis = Diagnosis(
            symptom_code=d.symptom_code,
            fault_code=d.fault_code,
            cause_code=d.cause_code,
            actions=tuple(d.actions),
            parts=tuple(PlannedPart(p.part_id, p.quantity) for p in d.parts),
            repair_level=d.repair_level,
            warranty_override=d.warranty_override,
            override_reason=d.override_reason,
        )

        def diagnose(order: RepairOrder, now: datetime) -> None:
            lifecycle.check_step(order, "diagnosis", auth)
            check_diagnosis_codes(base.fault_codes, order.intake.brand, diagnosis)
            lifecycle.diagnose(order, auth, now, diagnosis, retail_prices)

        return diagnose
    if step == "quote":
        labour_fen = request.quote.labour_fen
        return lambda order, now: lifecycle.quote(
            order, auth, now, labour_fen, base.approval_threshold_fen(order.branch_id)
        )
    if step == "approval":
        return lambda o, now: lifecycle.approve(o, auth, now, decision.accepted, decision.note)
    if step == "manager-approval":
        return lambda o, now: lifecycle.manager_approve(
            o, auth, now, decision.accepted, decision.note
        )
    if step == "parts":

        def parts_came(order: RepairOrder, now: datetime) -> None:
            # Only the guard: the handler reserves with inventory and records its answer.
            lifecycle.check_step(order, "parts", auth)

        return parts_came
    if step == "repair/start":
        return lambda order, now: lifecycle.start_repair(order, auth, now)
    if step == "repair/finish":
        return lambda order, now: lifecycle.finish_repair(
            order,
            auth,
            now,
            tuple(report.actions_done),
            report.repair_level,
            tuple(report.old_parts_kept),
        )
    if step == "qc":
        return lambda o, now: lifecycle.check_quality(
            o, auth, now, decision.accepted, decision.note
        )
    if step == "pickup":
        pickup = request.pickup
        return lambda o, now: lifecycle.pick_up(o, auth, now, pickup.method, pickup.amount_fen)
    return lambda o, now: lifecycle.cancel(o, auth, now, request.cancel.reason)


class OrdersService(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, new_uow: handlers.NewUow, parts: Parts) -> None:
        self.new_uow = new_uow
        self.parts = parts
        self.base_data = repository.BaseDataCache()

    async def TakeStep(
        self, request: orders_pb2.TakeStepRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.RepairOrder:
        auth = current_auth()
        async with self.new_uow() as uow:
            base = await self.base_data.get(uow.session)
        prices: dict[str, int] = {}
        if request.step == "diagnosis" and request.diagnosis.parts:
            part_ids = [p.part_id for p in request.diagnosis.parts]
            prices = await handlers.catalog_prices(
                self.new_uow, self.parts, auth, request.order_id, part_ids
            )
        order = await handlers.take_step(
            self.new_uow,
            self.parts,
            auth,
            request.order_id,
            request.expected_version,
            request.step,
            step_action(auth, request, prices, base),
        )
        return order_message(order)

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
            message_consent=request.customer.message_consent,
            language=request.customer.language,
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


def register(server: grpc.aio.Server, new_uow: handlers.NewUow, parts: Parts) -> None:
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(OrdersService(new_uow, parts), server)
