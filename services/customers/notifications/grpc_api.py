"""The notifications gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from aftersales.customers.v1 import notifications_pb2, notifications_pb2_grpc
from servicekit.auth import caller_or_public, current_auth
from servicekit.timeutil import as_utc, to_timestamp
from services.customers.notifications import handlers
from services.customers.notifications.settings import NotificationSettings
from services.customers.notifications.templates import PLACEHOLDERS


def stamp(moment: datetime | None) -> Timestamp | None:
    return to_timestamp(as_utc(moment)) if moment is not None else None


def template_message(kept: handlers.KeptTemplate) -> notifications_pb2.Template:
    t = kept.template
    return notifications_pb2.Template(
        kind=t.kind,
        language=t.language,
        body=t.body,
        placeholders=list(PLACEHOLDERS[t.kind]),
        is_default=t.is_default,
        updated_at=stamp(kept.updated_at),
        updated_by=kept.updated_by,
    )


def delivery_message(row: Any) -> notifications_pb2.Delivery:
    return notifications_pb2.Delivery(
        id=row.id,
        order_id=row.order_id,
        order_number=row.order_number,
        event_id=row.event_id,
        kind=row.kind,
        customer_id=row.customer_id or "",
        language=row.language or "",
        provider=row.provider or "",
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error or "",
        text=row.text or "",
        branch_id=row.branch_id,
        store_id=row.store_id,
        created_at=stamp(row.created_at),
        next_attempt_at=stamp(row.next_attempt_at if row.status == "queued" else None),
        sent_at=stamp(row.sent_at),
        updated_at=stamp(row.updated_at),
    )


class NotificationsService(notifications_pb2_grpc.NotificationsServiceServicer):
    def __init__(self, new_uow: handlers.NewUow, settings: NotificationSettings) -> None:
        self.new_uow = new_uow
        self.settings = settings

    async def ListTemplates(
        self, request: notifications_pb2.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.ListTemplatesResponse:
        kept = await handlers.list_templates(self.new_uow, current_auth())
        return notifications_pb2.ListTemplatesResponse(
            templates=[template_message(t) for t in kept]
        )

    async def PutTemplate(
        self, request: notifications_pb2.PutTemplateRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.Template:
        kept = await handlers.put_template(
            self.new_uow, current_auth(), request.kind, request.language, request.body
        )
        return template_message(kept)

    async def ListDeliveries(
        self, request: notifications_pb2.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.ListDeliveriesResponse:
        found = await handlers.list_deliveries(
            self.new_uow,
            current_auth(),
            request.branch_id,
            request.store_id,
            request.order_id,
            request.status,
            request.page_size,
            request.page_token,
        )
        return notifications_pb2.ListDeliveriesResponse(
            deliveries=[delivery_message(row) for row in found.rows],
            next_page_token=found.next_token,
        )

    async def GetTracking(
        self, request: notifications_pb2.GetTrackingRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.Tracking:
        # The token is the credential: any verified caller, the public too (through the
        # gateway), may read what it opens, and what it opens holds nothing personal.
        caller_or_public()
        view = await handlers.tracking(self.new_uow, request.token)
        row = view.row
        return notifications_pb2.Tracking(
            number=row.number,
            status=row.status,
            service_type=row.service_type,
            branch_id=row.branch_id,
            store_id=row.store_id,
            promised_date=row.promised_date,
            received_at=stamp(row.received_at),
            steps=[
                notifications_pb2.TrackingStep(status=s.status, at=stamp(s.at)) for s in view.steps
            ],
            updated_at=stamp(row.updated_at),
            expires_at=stamp(row.expires_at),
        )

    async def GetTrackingLink(
        self, request: notifications_pb2.GetTrackingLinkRequest, context: grpc.aio.ServicerContext
    ) -> notifications_pb2.TrackingLink:
        row, url = await handlers.tracking_link(
            self.new_uow, current_auth(), self.settings, request.order_id
        )
        return notifications_pb2.TrackingLink(
            order_id=row.order_id, token=row.token, url=url, expires_at=stamp(row.expires_at)
        )
