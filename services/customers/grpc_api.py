"""The customers gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from aftersales.customers.v1 import customers_pb2, customers_pb2_grpc
from servicekit.auth import current_auth
from servicekit.personal_data import DataKeys
from servicekit.timeutil import to_timestamp, utc_now
from services.customers import handlers
from services.customers.domain.complaint import is_overdue as complaint_overdue
from services.customers.domain.customer import Customer, CustomerEdit
from services.customers.domain.follow_up import is_overdue as follow_up_overdue
from services.customers.domain.history import ServiceRecord

Context: TypeAlias = grpc.aio.ServicerContext


def customer_message(profile: handlers.CustomerProfile) -> customers_pb2.Customer:
    customer = profile.customer
    return customers_pb2.Customer(
        id=customer.id,
        name=customer.name,
        # An erased record's placeholder is no phone: it never leaves the service.
        phone="" if customer.erased else customer.phone,
        devices=[
            customers_pb2.Device(
                imei=d.imei,
                brand=d.brand,
                model=d.model,
                first_seen_at=to_timestamp(d.first_seen_at),
            )
            for d in profile.devices
        ],
        order_count=customer.order_count,
        last_seen_at=to_timestamp(customer.last_seen_at),
        last_store_id=customer.last_store_id,
        email=customer.email or "",
        message_consent=customer.message_consent,
        language=customer.language,
        version=customer.version,
        open_store_ids=profile.open_store_ids,
        merged_into=customer.merged_into or "",
        erased=customer.erased,
        first_seen_at=to_timestamp(customer.first_seen_at),
    )


def record_message(record: ServiceRecord) -> customers_pb2.ServiceRecord:
    message = customers_pb2.ServiceRecord(
        order_id=record.order_id,
        number=record.number,
        branch_id=record.branch_id,
        store_id=record.store_id,
        imei=record.imei,
        status=record.status,
        service_type=record.service_type,
        paid_fen=record.paid_fen,
        received_at=to_timestamp(record.received_at),
    )
    if record.updated_at:
        message.updated_at.CopyFrom(to_timestamp(record.updated_at))
    if record.closed_at:
        message.closed_at.CopyFrom(to_timestamp(record.closed_at))
    return message


def phone_of(customer: Customer | None) -> str:
    return customer.phone if customer and not customer.erased else ""


def follow_up_message(view: handlers.FollowUpView) -> customers_pb2.FollowUp:
    f = view.follow_up
    return customers_pb2.FollowUp(
        id=f.id,
        order_id=f.order_id,
        order_number=f.number,
        branch_id=f.branch_id,
        store_id=f.store_id,
        customer_id=view.customer.id if view.customer else "",
        customer_name=view.customer.name if view.customer else "",
        customer_phone=phone_of(view.customer),
        picked_up_at=to_timestamp(f.picked_up_at),
        due_at=to_timestamp(f.due_at),
        state=f.state,
        assigned_to=f.assigned_to or "",
        attempts=f.attempts,
        score=f.score or 0,
        comments=f.comments or "",
        history=[
            customers_pb2.FollowUpAttempt(
                number=a.number,
                reached=a.reached,
                score=a.score or 0,
                comments=a.comments or "",
                agent_id=a.agent_id,
                at=to_timestamp(a.at),
            )
            for a in view.attempts
        ],
        complaint_id=view.complaint_id or "",
        overdue=follow_up_overdue(f, utc_now()),
    )


def complaint_message(view: handlers.ComplaintView) -> customers_pb2.Complaint:
    c = view.complaint
    message = customers_pb2.Complaint(
        id=c.id,
        follow_up_id=c.follow_up_id,
        order_id=c.order_id,
        branch_id=c.branch_id,
        store_id=c.store_id,
        customer_id=view.customer.id if view.customer else "",
        customer_name=view.customer.name if view.customer else "",
        customer_phone=phone_of(view.customer),
        score=c.score,
        owner_id=c.owner_id,
        state=c.state,
        outcome=c.outcome or "",
        opened_at=to_timestamp(c.opened_at),
        due_at=to_timestamp(c.due_at),
        notes=[
            customers_pb2.ComplaintNote(author_id=n.author_id, note=n.note, at=to_timestamp(n.at))
            for n in view.notes
        ],
        overdue=complaint_overdue(c, utc_now()),
        comments=view.comments or "",
    )
    if c.closed_at:
        message.closed_at.CopyFrom(to_timestamp(c.closed_at))
    return message


class CustomersService(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, new_uow: handlers.NewUow, personal_keys: DataKeys) -> None:
        self.new_uow = new_uow
        self.personal_keys = personal_keys

    async def FindCustomer(
        self, request: customers_pb2.FindCustomerRequest, context: Context
    ) -> customers_pb2.Customer:
        # Any signed-in role may look a customer up: the customer base is shared chain-wide so
        # any store can serve a returning customer. The gateway masks what the caller may not see.
        current_auth()
        profile = await handlers.find_customer(self.new_uow, request.phone, request.imei)
        return customer_message(profile)

    async def ListCustomers(
        self, request: customers_pb2.ListCustomersRequest, context: Context
    ) -> customers_pb2.ListCustomersReply:
        profiles, token = await handlers.list_customers(
            self.new_uow,
            current_auth(),
            request.branch_id,
            request.store_id,
            request.page_size,
            request.page_token,
        )
        return customers_pb2.ListCustomersReply(
            customers=[customer_message(p) for p in profiles], next_page_token=token
        )

    async def GetCustomer(
        self, request: customers_pb2.GetCustomerRequest, context: Context
    ) -> customers_pb2.CustomerDetail:
        current_auth()
        detail = await handlers.get_customer(self.new_uow, request.customer_id)
        return customers_pb2.CustomerDetail(
            customer=customer_message(detail.profile),
            history=[record_message(r) for r in detail.history],
        )

    async def UpdateCustomer(
        self, request: customers_pb2.UpdateCustomerRequest, context: Context
    ) -> customers_pb2.Customer:
        def given(name: str) -> bool:
            return request.HasField(name)  # type: ignore[arg-type]

        edit = CustomerEdit(
            name=request.name if given("name") else None,
            phone=request.phone if given("phone") else None,
            email=request.email if given("email") else None,
            message_consent=request.message_consent if given("message_consent") else None,
            language=request.language if given("language") else None,
        )
        profile = await handlers.update_customer(
            self.new_uow, current_auth(), request.customer_id, request.expected_version, edit
        )
        return customer_message(profile)

    async def MergeCustomers(
        self, request: customers_pb2.MergeCustomersRequest, context: Context
    ) -> customers_pb2.Customer:
        profile = await handlers.merge_customers(
            self.new_uow, current_auth(), request.keep_id, request.merge_id, request.reason
        )
        return customer_message(profile)

    async def ExportCustomer(
        self, request: customers_pb2.ExportCustomerRequest, context: Context
    ) -> customers_pb2.ExportCustomerReply:
        document = await handlers.export_customer(
            self.new_uow, current_auth(), request.customer_id, request.reason
        )
        return customers_pb2.ExportCustomerReply(json=document)

    async def EraseCustomer(
        self, request: customers_pb2.EraseCustomerRequest, context: Context
    ) -> customers_pb2.Customer:
        profile = await handlers.erase_customer(
            self.new_uow, current_auth(), request.customer_id, request.reason, self.personal_keys
        )
        return customer_message(profile)

    async def ListPrivacyAudit(
        self, request: customers_pb2.ListPrivacyAuditRequest, context: Context
    ) -> customers_pb2.ListPrivacyAuditReply:
        entries, token = await handlers.list_privacy_audit(
            self.new_uow, current_auth(), request.customer_id, request.page_size, request.page_token
        )
        return customers_pb2.ListPrivacyAuditReply(
            entries=[
                customers_pb2.PrivacyAuditEntry(
                    id=e.id,
                    customer_id=e.customer_id,
                    action=e.action,
                    actor_user_id=e.actor_user_id,
                    actor_role=e.actor_role,
                    at=to_timestamp(e.at),
                    reason=e.reason,
                    detail=e.detail,
                )
                for e in entries
            ],
            next_page_token=token,
        )

    async def ListFollowUps(
        self, request: customers_pb2.ListFollowUpsRequest, context: Context
    ) -> customers_pb2.ListFollowUpsReply:
        views, token = await handlers.list_follow_ups(
            self.new_uow,
            current_auth(),
            request.state,
            request.overdue,
            request.page_size,
            request.page_token,
        )
        return customers_pb2.ListFollowUpsReply(
            follow_ups=[follow_up_message(v) for v in views], next_page_token=token
        )

    async def GetFollowUp(
        self, request: customers_pb2.GetFollowUpRequest, context: Context
    ) -> customers_pb2.FollowUp:
        view = await handlers.get_follow_up(self.new_uow, current_auth(), request.follow_up_id)
        return follow_up_message(view)

    async def TakeFollowUp(
        self, request: customers_pb2.TakeFollowUpRequest, context: Context
    ) -> customers_pb2.FollowUp:
        view = await handlers.take_follow_up(self.new_uow, current_auth(), request.follow_up_id)
        return follow_up_message(view)

    async def RecordFollowUpAttempt(
        self, request: customers_pb2.RecordFollowUpAttemptRequest, context: Context
    ) -> customers_pb2.FollowUp:
        view = await handlers.record_follow_up_attempt(
            self.new_uow,
            current_auth(),
            request.follow_up_id,
            request.reached,
            request.score or None,
            request.comments or None,
        )
        return follow_up_message(view)

    async def ListComplaints(
        self, request: customers_pb2.ListComplaintsRequest, context: Context
    ) -> customers_pb2.ListComplaintsReply:
        views, token = await handlers.list_complaints(
            self.new_uow,
            current_auth(),
            request.state,
            request.overdue,
            request.page_size,
            request.page_token,
        )
        return customers_pb2.ListComplaintsReply(
            complaints=[complaint_message(v) for v in views], next_page_token=token
        )

    async def GetComplaint(
        self, request: customers_pb2.GetComplaintRequest, context: Context
    ) -> customers_pb2.Complaint:
        view = await handlers.get_complaint(self.new_uow, current_auth(), request.complaint_id)
        return complaint_message(view)

    async def AddComplaintNote(
        self, request: customers_pb2.AddComplaintNoteRequest, context: Context
    ) -> customers_pb2.Complaint:
        view = await handlers.add_complaint_note(
            self.new_uow, current_auth(), request.complaint_id, request.note, request.owner_id
        )
        return complaint_message(view)

    async def CloseComplaint(
        self, request: customers_pb2.CloseComplaintRequest, context: Context
    ) -> customers_pb2.Complaint:
        view = await handlers.close_complaint(
            self.new_uow, current_auth(), request.complaint_id, request.outcome
        )
        return complaint_message(view)


def register(server: grpc.aio.Server, new_uow: handlers.NewUow, personal_keys: DataKeys) -> None:
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(
        CustomersService(new_uow, personal_keys), server
    )
