"""The orders gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

import grpc

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import AuthContext, current_auth
from servicekit.errors import invalid
from servicekit.idempotency import received_request, request_hash
from servicekit.personal_data import DataKeys
from servicekit.timeutil import to_timestamp
from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.inventory import Parts
from services.orders.domain import lifecycle, routes
from services.orders.domain.base_data import check_diagnosis_codes
from services.orders.domain.intake import IntakeForm
from services.orders.domain.order import Diagnosis, PlannedPart, RepairOrder
from services.orders.domain.warranty import WarrantyDecision, WarrantyPolicy


def _day(value: object) -> str:
    return value.isoformat() if value else ""  # type: ignore[attr-defined]


def warranty_message(warranty: WarrantyDecision) -> orders_pb2.WarrantyDecision:
    return orders_pb2.WarrantyDecision(
        status=warranty.status,
        entitlements=list(warranty.entitlements),
        reason=warranty.reason,
        expires_on=_day(warranty.expires_on),
        send_on_required=warranty.send_on_required,
    )


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
        warranty=warranty_message(warranty),
        brand_authorised=order.brand_authorised,
        repeat_repair=order.repeat_repair,
        repeat_of_order_id=order.repeat_of or "",
        parts_wait_swap_on=order.parts_wait_swap_on.isoformat() if order.parts_wait_swap_on else "",
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
                store_id=line.store_id or order.store_id,
                serials=list(line.serials),
                successor_part_id=line.successor_part_id,
                successor_available=line.successor_available,
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
        partner_branch_id=work.partner_branch_id,
        partner_store_id=work.partner_store_id,
        at_partner=work.at_partner,
        partner_repaired=work.partner_repaired,
        current_imei=order.current_imei,
        swap_offered=work.swap_offered,
        swap_offer_reason=work.swap_offer_reason,
        inspection_fee_fen=work.inspection_fee_fen,
        holder_store_id=order.holder_store_id,
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
                store_id=work.quote.store_id or order.store_id,
            )
        )
    if order.closed_at:
        message.closed_at.CopyFrom(to_timestamp(order.closed_at))
    if factory := work.factory:
        message.factory.CopyFrom(
            orders_pb2.FactoryReturn(
                carrier=factory.carrier,
                tracking_number=factory.tracking_number,
                shipped_at=to_timestamp(factory.shipped_at),
                outcome=factory.outcome,
                new_imei=factory.new_imei,
            )
        )
        if factory.received_at:
            message.factory.received_at.CopyFrom(to_timestamp(factory.received_at))
    if unit := work.swap:
        message.swap.CopyFrom(
            orders_pb2.SwapUnit(
                imei=unit.imei,
                part_id=unit.part_id,
                faulty_imei=unit.faulty_imei,
                faulty_return_owed=unit.faulty_return_owed,
            )
        )
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
    "send-out": "send_out",
    "receive": None,
    "return": None,
    "factory-return": "factory_return",
    "factory-receive": "factory_receive",
    "swap": "swap",
    "complete": "quick",
}


def step_action(
    auth: AuthContext,
    request: orders_pb2.TakeStepRequest,
    retail_prices: Mapping[str, int],
    base: repository.BaseData,
    earlier_faults: Collection[str] = (),
    partner: routes.Partner | None = None,
    categories: Mapping[str, str] | None = None,
) -> handlers.Apply:
    """The pure transition a request asks for, with its data out of protobuf (and, for a
    diagnosis, the catalog's prices and categories of the planned parts), under HQ's base
    data."""
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
            policy = base.brands[order.intake.brand].policy
            lifecycle.diagnose(
                order,
                auth,
                now,
                diagnosis,
                retail_prices,
                earlier_faults,
                policy.swap_after_repairs,
                categories,
                policy,
            )

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
        substitutes = [
            lifecycle.Substitute(x.line_id, x.part_id) for x in request.parts.substitutes
        ]

        def parts_came(order: RepairOrder, now: datetime) -> None:
            # The guard, and the successors taken (替代料): the handler reserves with
            # inventory and records its answer.
            lifecycle.check_step(order, "parts", auth)
            if substitutes:
                threshold = base.approval_threshold_fen(order.branch_id)
                lifecycle.substitute(order, auth, now, substitutes, retail_prices, threshold)

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
            report.new_imei,
        )
    if step == "qc":
        return lambda o, now: lifecycle.check_quality(
            o, auth, now, decision.accepted, decision.note
        )
    if step == "pickup":
        pickup = request.pickup
        return lambda o, now: lifecycle.pick_up(o, auth, now, pickup.method, pickup.amount_fen)
    if step == "cancel":
        return lambda o, now: lifecycle.cancel(o, auth, now, request.cancel.reason)
    return route_action(auth, request, retail_prices, partner, categories, base)


def route_action(
    auth: AuthContext,
    request: orders_pb2.TakeStepRequest,
    retail_prices: Mapping[str, int],
    partner: routes.Partner | None,
    categories: Mapping[str, str] | None = None,
    base: repository.BaseData | None = None,
) -> handlers.Apply:
    """The steps of the routes: send-outs, factory returns, swaps and quick orders."""
    step, note = request.step, request.route.note
    if step == "send-out":
        assert partner is not None  # looked up by TakeStep for a send-out
        to = partner
        return lambda o, now: routes.send_out(o, auth, now, to, request.send_out.note)
    if step == "receive":
        return lambda o, now: routes.receive(o, auth, now, note)
    if step == "return":
        return lambda o, now: routes.return_to_intake(o, auth, now, note)
    if step == "factory-return":
        shipment = request.factory_return
        return lambda o, now: routes.ship_to_factory(
            o, auth, now, shipment.carrier, shipment.tracking_number, shipment.note
        )
    if step == "factory-receive":
        back = request.factory_receive
        return lambda o, now: routes.receive_from_factory(
            o, auth, now, back.outcome, back.new_imei, back.note
        )
    if step == "swap":
        unit = request.swap
        return lambda o, now: routes.swap(o, auth, now, unit.imei, unit.part_id, unit.note)
    quick = request.quick
    parts = tuple(PlannedPart(p.part_id, p.quantity) for p in quick.parts)
    return lambda o, now: routes.complete(
        o,
        auth,
        now,
        tuple(quick.actions_done),
        parts,
        retail_prices,
        quick.service_fen,
        quick.method,
        quick.amount_fen,
        categories,
        _policy(base, o),
    )


def _policy(base: repository.BaseData | None, order: RepairOrder) -> WarrantyPolicy | None:
    info = base.brands.get(order.intake.brand) if base else None
    return info.policy if info else None


def _hash_of(request: orders_pb2.CreateRepairOrderRequest) -> str:
    """The request's hash: the server's interceptor took it already when a request id came
    with the call (hashing the request costs a copy and an encoding)."""
    received = received_request()
    return received.request_hash if received is not None else request_hash(request)


class OrdersService(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, new_uow: handlers.NewUow, parts: Parts, personal_keys: DataKeys) -> None:
        self.new_uow = new_uow
        self.parts = parts
        self.personal_keys = personal_keys
        self.base_data = repository.BaseDataCache()

    async def TakeStep(
        self, request: orders_pb2.TakeStepRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.RepairOrder:
        auth = current_auth()
        context = await handlers.step_context(
            self.new_uow, self.base_data, auth, request.order_id, request.step
        )
        prices: dict[str, int] = {}
        categories: dict[str, str] = {}
        planned = {
            "diagnosis": [p.part_id for p in request.diagnosis.parts],
            "complete": [p.part_id for p in request.quick.parts],
            "parts": [s.part_id for s in request.parts.substitutes],
        }
        if part_ids := planned.get(request.step, []):
            # The catalog's prices now, asked with no transaction of ours open.
            prices = await self.parts.retail_prices(context.order.intake.brand, part_ids)
            if request.step != "parts":  # a line's warranty is decided when it is planned
                categories = await self.parts.part_categories(context.order.intake.brand, part_ids)
        partner = None
        if request.step == "send-out":
            to = request.send_out
            partner = handlers.partner_store(context, to.branch_id, to.store_id)
        order = await handlers.take_step(
            self.new_uow,
            self.parts,
            auth,
            context.order,
            request.expected_version,
            request.step,
            step_action(
                auth, request, prices, context.base, context.earlier_faults, partner, categories
            ),
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
            request_hash=request.request_hash or _hash_of(request),
            personal_keys=self.personal_keys,
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
            swap_due_by=request.swap_due_by,
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

    async def GetDevicePassport(
        self, request: orders_pb2.GetDevicePassportRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.DevicePassport:
        passport = await handlers.device_passport(self.new_uow, current_auth(), request.imei)
        return orders_pb2.DevicePassport(
            imei=passport.imei,
            imeis=passport.imeis,
            links=[
                orders_pb2.ImeiLink(
                    old_imei=x.old_imei,
                    new_imei=x.new_imei,
                    kind=x.kind,
                    order_id=x.order_id,
                    at=to_timestamp(x.at),
                )
                for x in passport.links
            ],
            orders=[order_message(o) for o in passport.orders],
            warranty=warranty_message(passport.orders[0].warranty),
        )

    async def Ping(
        self, request: orders_pb2.PingRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.PingResponse:
        return orders_pb2.PingResponse()


def register(
    server: grpc.aio.Server, new_uow: handlers.NewUow, parts: Parts, personal_keys: DataKeys
) -> None:
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(
        OrdersService(new_uow, parts, personal_keys), server
    )
