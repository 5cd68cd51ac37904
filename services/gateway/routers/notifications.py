"""Customer notices (通知), served by the customers service: HQ keeps the templates; staff read
the delivery log and an order's tracking link within their scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.customers.v1 import notifications_pb2
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_notifications, schemas_rules
from services.gateway.deps import Auth, Gw
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, iso_utc, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["notifications"], route_class=DocumentedRoute)

Filter = Annotated[str | None, Query(max_length=50)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "role may not do this"},
    404: {"model": schemas.Problem, "description": "outside your scope"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


def template_json(t: notifications_pb2.Template) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "language": t.language,
        "body": t.body,
        "placeholders": list(t.placeholders),
        "is_default": t.is_default,
        "updated_at": iso_utc(t.updated_at),
        "updated_by": or_none(t.updated_by),
    }


def delivery_json(d: notifications_pb2.Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "order_id": d.order_id,
        "order_number": d.order_number,
        "event_id": d.event_id,
        "kind": d.kind,
        "customer_id": or_none(d.customer_id),
        "language": or_none(d.language),
        "provider": or_none(d.provider),
        "status": d.status,
        "attempts": d.attempts,
        "last_error": or_none(d.last_error),
        "text": or_none(d.text),
        "branch_id": d.branch_id,
        "store_id": d.store_id,
        "created_at": iso_utc(d.created_at),
        "next_attempt_at": iso_utc(d.next_attempt_at),
        "sent_at": iso_utc(d.sent_at),
        "updated_at": iso_utc(d.updated_at),
    }


@router.get(
    "/notification-templates",
    response_model=schemas_notifications.NotificationTemplateList,
    responses=ERRORS,
)
async def list_templates(auth: Auth, gw: Gw) -> Response:
    """Every notice kind in zh-CN and en: HQ's text, or the built-in one (hq_admin)."""
    reply = await call(
        gw.clients.notifications.ListTemplates, notifications_pb2.ListTemplatesRequest()
    )
    return json_response({"items": [template_json(t) for t in reply.templates]})


@router.put(
    "/notification-templates/{kind}/{language}",
    response_model=schemas_notifications.NotificationTemplate,
    responses=ERRORS,
)
async def put_template(
    kind: schemas_rules.TemplateKind,
    language: schemas_rules.Language,
    body: schemas_notifications.NotificationTemplateIn,
    auth: Auth,
    gw: Gw,
) -> Response:
    """HQ's text for a notice (hq_admin); putting the same text again is the same."""
    request = notifications_pb2.PutTemplateRequest(kind=kind, language=language, body=body.body)
    return json_response(template_json(await call(gw.clients.notifications.PutTemplate, request)))


@router.get("/notifications", response_model=schemas_notifications.DeliveryPage, responses=ERRORS)
async def list_deliveries(
    auth: Auth,
    gw: Gw,
    order_id: Filter = None,
    status: schemas_rules.DeliveryStatus | None = None,
    branch_id: Filter = None,
    store_id: Filter = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """The delivery log within your scope, newest first: each notice, its status and tries."""
    request = notifications_pb2.ListDeliveriesRequest(
        order_id=order_id or "",
        status=status or "",
        branch_id=branch_id or "",
        store_id=store_id or "",
        page_size=limit,
        page_token=cursor or "",
    )
    reply = await call(gw.clients.notifications.ListDeliveries, request)
    return json_response(page([delivery_json(d) for d in reply.deliveries], reply.next_page_token))


@router.get(
    "/repair-orders/{order_id}/tracking-link",
    response_model=schemas_notifications.TrackingLink,
    responses=ERRORS,
)
async def tracking_link(order_id: str, auth: Auth, gw: Gw) -> Response:
    """The order's tracking link (进度查询), to give the customer; staff of its store and above."""
    request = notifications_pb2.GetTrackingLinkRequest(order_id=order_id)
    link = await call(gw.clients.notifications.GetTrackingLink, request)
    return json_response(
        {
            "order_id": link.order_id,
            "token": link.token,
            "url": link.url,
            "expires_at": iso_utc(link.expires_at),
        }
    )
