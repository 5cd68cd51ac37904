"""Use cases of notifications and tracking: order events become notices in the delivery log
and steps of the tracking read model (in the consumer's transaction, beside its inbox entry;
sending happens later, in the sender); HQ keeps the templates; staff read the log and an
order's link; anyone holding a link reads its order's progress."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aftersales.events.v1 import events_pb2, order_events_pb2
from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound, invalid
from servicekit.paging import decode_page_token, encode_page_token, page_size
from servicekit.timeutil import as_utc, from_timestamp, utc_now
from servicekit.uow import UnitOfWork
from services.customers.notifications import store
from services.customers.notifications.delivery import STATUSES
from services.customers.notifications.settings import NotificationSettings
from services.customers.notifications.templates import (
    PLACEHOLDERS,
    Template,
    amount_yuan,
    check_template,
    effective_templates,
    notice_of_change,
)
from services.customers.notifications.tracking import expired, expiry, newer

NewUow = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]

TEMPLATE_ROLES = ("hq_admin",)
STAFF_ROLES = (
    "hq_admin",
    "hq_analyst",
    "branch_manager",
    "clerk",
    "technician",
    "warehouse_keeper",
    "followup_agent",
)
# What a token looks like (secrets.token_urlsafe(24)); anything longer is no token of ours.
TOKEN_BYTES = 24
MAX_TOKEN_LENGTH = 64


def new_token() -> str:
    """Unguessable: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def link(settings: NotificationSettings, token: str) -> str:
    return settings.tracking_base_url + token


# --- order events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTracking:
    """A tracking row this transaction made: what was written, without reading it back."""

    order_id: str
    token: str
    number: str
    branch_id: str
    store_id: str
    service_type: str
    status: str
    version: int
    promised_date: str
    received_at: datetime | None
    updated_at: datetime
    expires_at: datetime | None


async def _tracking_for(
    uow: UnitOfWork,
    order_id: str,
    number: str,
    branch_id: str,
    store_id: str,
    service_type: str,
    now: datetime,
    promised_date: str = "",
    received_at: datetime | None = None,
) -> tuple[Any, bool]:
    """The order's tracking row, made (with its token) by whichever of its events comes first,
    and whether this one made it."""
    session = uow.session
    row = await store.tracking_of_order(session, order_id, for_update=True)
    if row is not None:
        return row, False
    made = NewTracking(
        order_id=order_id,
        token=new_token(),
        number=number,
        branch_id=branch_id,
        store_id=store_id,
        service_type=service_type,
        status="received",
        version=0,
        promised_date=promised_date,
        received_at=received_at,
        updated_at=now,
        expires_at=None,
    )
    await store.add_tracking(session, asdict(made))
    return made, True


async def _queue(
    uow: UnitOfWork,
    settings: NotificationSettings,
    row: Any,
    kind: str,
    event_id: str,
    values: dict[str, str],
    now: datetime,
) -> None:
    values = {"number": row.number, "store": row.store_id, "link": link(settings, row.token)} | (
        values
    )
    await store.queue_notice(
        uow.session,
        id=str(uuid.uuid4()),
        order_id=row.order_id,
        order_number=row.number,
        event_id=event_id,
        kind=kind,
        branch_id=row.branch_id,
        store_id=row.store_id,
        values={k: v for k, v in values.items() if k in PLACEHOLDERS[kind]},
        at=now,
    )


async def order_received(
    uow: UnitOfWork, event: events_pb2.OrderReceived, settings: NotificationSettings
) -> None:
    """An order was taken in: its tracking link is made and the customer gets it."""
    now = utc_now()
    meta = event.meta
    received = from_timestamp(
        event.received_at if event.HasField("received_at") else meta.occurred_at
    )
    row, made = await _tracking_for(
        uow,
        event.order_id,
        event.number,
        meta.branch_id,
        meta.store_id,
        event.service_type,
        now,
        event.promised_date,
        received,
    )
    if not made:
        await store.update_tracking(
            uow.session,
            event.order_id,
            number=event.number,
            service_type=event.service_type,
            promised_date=event.promised_date,
            received_at=received,
        )
    await store.add_step(uow.session, meta.event_id, event.order_id, "received", received)
    # The same order announced again under another event id gets no second notice; a row
    # made just now has none (notices are queued only beside their order's row).
    if made or not await store.notice_of_kind(uow.session, event.order_id, "order_received"):
        values = {"promised_date": event.promised_date}
        await _queue(uow, settings, row, "order_received", meta.event_id, values, now)


async def status_changed(
    uow: UnitOfWork, event: order_events_pb2.OrderStatusChanged, settings: NotificationSettings
) -> None:
    """An order moved: a step on its tracking page, and the notice its new status brings, once
    per real change (`notice_of_change`). An event older than what is shown (a late
    redelivery) adds its step but changes nothing else."""
    now = utc_now()
    meta = event.meta
    at = from_timestamp(meta.occurred_at)
    row, _ = await _tracking_for(
        uow, event.order_id, event.number, meta.branch_id, meta.store_id, event.service_type, now
    )
    await store.add_step(uow.session, meta.event_id, event.order_id, event.to_status, at)
    if not newer(event.version, row.version):
        return
    kind = notice_of_change(row.status, event.from_status, event.to_status)
    await store.update_tracking(
        uow.session,
        event.order_id,
        status=event.to_status,
        version=event.version,
        updated_at=at,
        expires_at=expiry(event.to_status, at, settings.tracking_days_after_pickup),
    )
    if kind is not None:
        values = {"amount_yuan": amount_yuan(event.quote_total_fen)}
        await _queue(uow, settings, row, kind, meta.event_id, values, now)


# --- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptTemplate:
    template: Template
    updated_at: datetime | None
    updated_by: str


async def list_templates(new_uow: NewUow, auth: AuthContext) -> list[KeptTemplate]:
    require_role(auth, TEMPLATE_ROLES)
    async with new_uow() as uow:
        kept = await store.kept_templates(uow.session)
    bodies = {key: row.body for key, row in kept.items()}
    return [
        KeptTemplate(
            t,
            None if t.is_default else kept[(t.kind, t.language)].updated_at,
            "" if t.is_default else kept[(t.kind, t.language)].updated_by,
        )
        for t in effective_templates(bodies)
    ]


async def put_template(
    new_uow: NewUow, auth: AuthContext, kind: str, language: str, body: str
) -> KeptTemplate:
    require_role(auth, TEMPLATE_ROLES)
    check_template(kind, language, body)
    now = utc_now()
    async with new_uow() as uow:
        await store.put_template(uow.session, kind, language, body, auth.user_id, now)
        await uow.commit()
    return KeptTemplate(Template(kind, language, body, False), now, auth.user_id)


# --- the delivery log --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[Any]
    next_token: str


async def list_deliveries(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    order_id: str,
    status: str,
    requested_size: int,
    token: str,
) -> DeliveryPage:
    require_role(auth, STAFF_ROLES)
    if status and status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    branch, unit = auth.narrow(branch_id or None, store_id or None)
    size = page_size(requested_size, 20, 100)
    after = None
    if token:
        at_text, last_id = decode_page_token(token, 2)
        try:
            after = (datetime.fromisoformat(at_text), last_id)
        except ValueError:
            raise invalid("cursor", "is not a cursor this service issued") from None
    wanted = store.DeliveryFilter(branch, unit, order_id, status, after, size + 1)
    async with new_uow() as uow:
        rows = await store.deliveries(uow.session, wanted)
    more = len(rows) > size
    rows = rows[:size]
    next_token = encode_page_token(rows[-1].created_at.isoformat(), rows[-1].id) if more else ""
    return DeliveryPage(rows, next_token)


# --- tracking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingView:
    """What the link shows: no name, phone or IMEI is ever in here."""

    row: Any
    steps: list[Any]


_GONE = "no such tracking link, or it has expired"


async def tracking(new_uow: NewUow, token: str, now: datetime | None = None) -> TrackingView:
    """The progress of the order a token belongs to. Unknown and expired tokens alike are
    NotFound, with one message: the answer tells a guesser nothing."""
    if not token:
        raise invalid("token", "must not be empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise NotFound(_GONE)
    async with new_uow() as uow:
        row = await store.tracking_by_token(uow.session, token)
        ends = as_utc(row.expires_at) if row is not None and row.expires_at else None
        if row is None or expired(ends, now or utc_now()):
            raise NotFound(_GONE)
        steps = await store.steps_of(uow.session, row.order_id)
    return TrackingView(row, steps)


async def tracking_link(
    new_uow: NewUow, auth: AuthContext, settings: NotificationSettings, order_id: str
) -> tuple[Any, str]:
    """An order's link, for staff of its store and above; outside the scope, NotFound."""
    require_role(auth, STAFF_ROLES)
    if not order_id:
        raise invalid("order_id", "must not be empty")
    async with new_uow() as uow:
        row = await store.tracking_of_order(uow.session, order_id)
    if row is None or not auth.covers(row.branch_id, row.store_id):
        raise NotFound("no such order in your scope, or not yet known here")
    return row, link(settings, row.token)
