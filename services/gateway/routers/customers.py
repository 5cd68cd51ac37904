"""Customers, shared chain-wide: any store finds a returning customer by exact phone or IMEI;
lists stay scoped and phones masked (PIPL). Follow-up calls (回访) and complaints (投诉), and
personal-data requests (export, erasure), all served by the customers service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from aftersales.customers.v1 import customers_pb2
from servicekit.auth import AuthContext
from servicekit.errors import FieldError, InvalidInput, invalid
from servicekit.grpc_client import call
from servicekit.identifiers import normalise_digits
from services.gateway import schemas, schemas_customers, schemas_rules
from services.gateway.deps import Auth, Gw, IdempotencyKey
from services.gateway.idempotency import run_once
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.privacy import customer_phone, phone_for_caller
from services.gateway.render import DocumentedRoute, iso_utc, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["customers"], route_class=DocumentedRoute)

Phone = Annotated[
    str | None, Query(pattern=schemas_rules.MOBILE, description="a mainland mobile number")
]
Imei = Annotated[str | None, Query(pattern=schemas_rules.IMEI, description="15 digits")]
Filter = Annotated[str | None, Query(max_length=50)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=schemas_rules.VERSION_ETAG,
        description='the ETag of the customer as read, e.g. "3"; optional',
    ),
]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "your role may not do this"},
    404: {"model": schemas.Problem, "description": "not found in your scope"},
    409: {"model": schemas.Problem, "description": "not possible in the current state"},
    412: {"model": schemas.Problem, "description": "If-Match is not the current ETag"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


def customer_json(auth: AuthContext, customer: customers_pb2.Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "phone": customer_phone(auth, customer.open_store_ids, customer.phone),
        "email": or_none(customer.email),
        "message_consent": customer.message_consent,
        "language": customer.language,
        "devices": [
            {
                "imei": d.imei,
                "brand": d.brand,
                "model": d.model,
                "first_seen_at": iso_utc(d.first_seen_at),
            }
            for d in customer.devices
        ],
        "order_count": customer.order_count,
        "first_seen_at": iso_utc(customer.first_seen_at),
        "last_seen_at": iso_utc(customer.last_seen_at),
        "last_store_id": or_none(customer.last_store_id),
        "version": customer.version,
        "merged_into": or_none(customer.merged_into),
        "erased": customer.erased,
    }


def etag(customer: customers_pb2.Customer) -> dict[str, str]:
    return {"ETag": f'"{customer.version}"'}


async def look_up(auth: AuthContext, gw: Gw, phone: str | None, imei: str | None) -> Response:
    if (phone is None) == (imei is None):
        reason = "give exactly one of phone or imei"
        raise InvalidInput(reason, [FieldError("phone", reason), FieldError("imei", reason)])
    # As typed: a full-width number finds the customer its ASCII twin names.
    phone = normalise_digits(phone) if phone is not None else None
    imei = normalise_digits(imei) if imei is not None else None
    request = (
        customers_pb2.FindCustomerRequest(phone=phone)
        if phone is not None
        else customers_pb2.FindCustomerRequest(imei=imei or "")
    )
    customer = await call(gw.clients.customers.FindCustomer, request)
    body = customer_json(auth, customer)
    # Found by exact phone, the caller knew the number already.
    if phone is not None:
        body["phone"] = customer.phone
    return json_response(body, headers=etag(customer))


@router.get(
    "/customers",
    response_model=schemas_customers.CustomerPage | schemas_customers.CustomerOut,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def list_customers(
    auth: Auth,
    gw: Gw,
    phone: Phone = None,
    imei: Imei = None,
    branch_id: Filter = None,
    store_id: Filter = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """With `phone` or `imei`: the chain-wide look-up (as `/customers/lookup`). Without: the
    customers with an order in your unit (narrow with `branch_id`, `store_id`), latest seen
    first, phones masked except where your store holds an open order of theirs."""
    if phone is not None or imei is not None:
        return await look_up(auth, gw, phone, imei)
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = customers_pb2.ListCustomersRequest(
        branch_id=branch, store_id=store, page_size=limit, page_token=cursor or ""
    )
    reply = await call(gw.clients.customers.ListCustomers, request)
    items = [customer_json(auth, c) for c in reply.customers]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/customers/lookup",
    response_model=schemas_customers.CustomerOut,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def find_customer(auth: Auth, gw: Gw, phone: Phone = None, imei: Imei = None) -> Response:
    """A returning customer, chain-wide, by exact phone or by the IMEI of a device they own."""
    return await look_up(auth, gw, phone, imei)


def record_json(record: customers_pb2.ServiceRecord) -> dict[str, Any]:
    return {
        "order_id": record.order_id,
        "number": record.number,
        "branch_id": record.branch_id,
        "store_id": record.store_id,
        "imei": or_none(record.imei),
        "status": record.status,
        "service_type": or_none(record.service_type),
        "paid_fen": record.paid_fen,
        "received_at": iso_utc(record.received_at),
        "updated_at": iso_utc(record.updated_at),
        "closed_at": iso_utc(record.closed_at),
    }


@router.get(
    "/customers/{customer_id}",
    response_model=schemas_customers.CustomerDetail,
    responses=PROBLEMS,
)
async def get_customer(customer_id: str, auth: Auth, gw: Gw) -> Response:
    """The record with the service history across all stores (the record is chain-wide)."""
    detail = await call(
        gw.clients.customers.GetCustomer, customers_pb2.GetCustomerRequest(customer_id=customer_id)
    )
    body = customer_json(auth, detail.customer)
    body["history"] = [record_json(r) for r in detail.history]
    return json_response(body, headers=etag(detail.customer))


def expected_version(if_match: str | None) -> int:
    if if_match is None:
        return 0
    digits = if_match.strip().removeprefix("W/").strip('"')
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9 or digits == "0":
        raise invalid("If-Match", 'must be an ETag of this customer, e.g. "3"')
    return int(digits)


@router.put(
    "/customers/{customer_id}",
    response_model=schemas_customers.CustomerOut,
    responses=PROBLEMS,
)
async def update_customer(
    customer_id: str,
    body: schemas_customers.CustomerUpdateIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    """Correct the record at the customer's word (name, phone, email, message consent,
    language). With If-Match, refused (412) when someone changed it since you read it. A PUT
    is idempotent by itself: sending it again changes nothing more."""
    request = customers_pb2.UpdateCustomerRequest(
        customer_id=customer_id, expected_version=expected_version(if_match)
    )
    for name in ("name", "phone", "email", "message_consent", "language"):
        value = getattr(body, name)
        if value is not None:
            setattr(request, name, value)
    customer = await call(gw.clients.customers.UpdateCustomer, request)
    return json_response(customer_json(auth, customer), headers=etag(customer))


@router.post(
    "/customers/{customer_id}/merge",
    response_model=schemas_customers.CustomerOut,
    responses=PROBLEMS,
)
async def merge_customers(
    customer_id: str,
    body: schemas_customers.MergeIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Merge `merge_id` into this customer (hq_admin, branch_manager): its devices, history
    and follow-ups move here, it is marked merged. Audited."""

    async def handle() -> Response:
        message = customers_pb2.MergeCustomersRequest(
            keep_id=customer_id, merge_id=body.merge_id, reason=body.reason
        )
        customer = await call(gw.clients.customers.MergeCustomers, message)
        return json_response(customer_json(auth, customer), headers=etag(customer))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/customers/{customer_id}/export",
    response_model=dict[str, Any],
    responses={**PROBLEMS, 200: {"description": "the customer's data, as customers keeps it"}},
)
async def export_customer(
    customer_id: str,
    auth: Auth,
    gw: Gw,
    reason: Annotated[
        str,
        Query(
            max_length=500,
            pattern=schemas_rules.NOT_BLANK,
            description="why (the request's reference)",
        ),
    ],
) -> Response:
    """PIPL: everything held about the customer (record, devices, history, follow-ups,
    complaints, consents) as JSON, in clear (hq_admin, branch_manager). Audited."""
    reply = await call(
        gw.clients.customers.ExportCustomer,
        customers_pb2.ExportCustomerRequest(customer_id=customer_id, reason=reason),
    )
    return Response(
        reply.json,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'},
    )


@router.post(
    "/customers/{customer_id}/erasure",
    response_model=schemas_customers.CustomerOut,
    responses=PROBLEMS,
)
async def erase_customer(
    customer_id: str,
    body: schemas_customers.ErasureIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """PIPL erasure (hq_admin, branch_manager, with a reason): the person is anonymised (name
    已删除, phone and email gone), their orders stay for accounting. Audited."""

    async def handle() -> Response:
        before = await call(
            gw.clients.customers.GetCustomer,
            customers_pb2.GetCustomerRequest(customer_id=customer_id),
        )
        message = customers_pb2.EraseCustomerRequest(customer_id=customer_id, reason=body.reason)
        customer = await call(gw.clients.customers.EraseCustomer, message)
        # The replies kept for retries (24 h) hold what they answered: an intake's, the person.
        await gw.idempotency.forget_replies_naming(
            [before.customer.phone, *(record.order_id for record in before.history)]
        )
        return json_response(customer_json(auth, customer), headers=etag(customer))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/privacy-audit",
    response_model=schemas_customers.PrivacyAuditPage,
    responses=PROBLEMS,
)
async def list_privacy_audit(
    auth: Auth,
    gw: Gw,
    customer_id: Filter = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """hq_admin: who exported, erased or merged whose data, when and why; newest first."""
    reply = await call(
        gw.clients.customers.ListPrivacyAudit,
        customers_pb2.ListPrivacyAuditRequest(
            customer_id=customer_id or "", page_size=limit, page_token=cursor or ""
        ),
    )
    items = [
        {
            "id": e.id,
            "customer_id": e.customer_id,
            "action": e.action,
            "actor_user_id": e.actor_user_id,
            "actor_role": e.actor_role,
            "at": iso_utc(e.at),
            "reason": e.reason,
            "detail": e.detail,
        }
        for e in reply.entries
    ]
    return json_response(page(items, reply.next_page_token))


# Follow-ups -----------------------------------------------------------------------------------


def follow_up_json(auth: AuthContext, f: customers_pb2.FollowUp) -> dict[str, Any]:
    return {
        "id": f.id,
        "order_id": f.order_id,
        "order_number": f.order_number,
        "branch_id": f.branch_id,
        "store_id": f.store_id,
        "customer_id": or_none(f.customer_id),
        "customer_name": or_none(f.customer_name),
        "customer_phone": phone_for_caller(auth, f.assigned_to, f.customer_phone),
        "picked_up_at": iso_utc(f.picked_up_at),
        "due_at": iso_utc(f.due_at),
        "state": f.state,
        "assigned_to": or_none(f.assigned_to),
        "attempts": f.attempts,
        "score": f.score or None,
        "comments": or_none(f.comments),
        "history": [
            {
                "number": a.number,
                "reached": a.reached,
                "score": a.score or None,
                "comments": or_none(a.comments),
                "agent_id": a.agent_id,
                "at": iso_utc(a.at),
            }
            for a in f.history
        ],
        "complaint_id": or_none(f.complaint_id),
        "overdue": f.overdue,
    }


@router.get("/follow-ups", response_model=schemas_customers.FollowUpPage, responses=PROBLEMS)
async def list_follow_ups(
    auth: Auth,
    gw: Gw,
    state: schemas_rules.FollowUpState | None = None,
    overdue: bool = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """The follow-up queue of your store or branch (HQ: all), earliest due first. `state`:
    open | done | unreachable; `overdue=true`: open ones due before now."""
    reply = await call(
        gw.clients.customers.ListFollowUps,
        customers_pb2.ListFollowUpsRequest(
            state=state or "", overdue=overdue, page_size=limit, page_token=cursor or ""
        ),
    )
    items = [follow_up_json(auth, f) for f in reply.follow_ups]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/follow-ups/{follow_up_id}", response_model=schemas_customers.FollowUp, responses=PROBLEMS
)
async def get_follow_up(follow_up_id: str, auth: Auth, gw: Gw) -> Response:
    reply = await call(
        gw.clients.customers.GetFollowUp,
        customers_pb2.GetFollowUpRequest(follow_up_id=follow_up_id),
    )
    return json_response(follow_up_json(auth, reply))


@router.post(
    "/follow-ups/{follow_up_id}/take",
    response_model=schemas_customers.FollowUp,
    responses=PROBLEMS,
)
async def take_follow_up(
    follow_up_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An agent takes the task from the queue: it is theirs to call (they see the phone)."""

    async def handle() -> Response:
        reply = await call(
            gw.clients.customers.TakeFollowUp,
            customers_pb2.TakeFollowUpRequest(follow_up_id=follow_up_id),
        )
        return json_response(follow_up_json(auth, reply))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.post(
    "/follow-ups/{follow_up_id}/attempts",
    status_code=201,
    response_model=schemas_customers.FollowUp,
    responses=PROBLEMS,
)
async def record_attempt(
    follow_up_id: str,
    body: schemas_customers.AttemptIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """One call: reached with a score 1-5 (1 or 2 opens a complaint for the branch) and
    comments, or not reached (tried again the next day; the third miss closes it)."""

    async def handle() -> Response:
        message = customers_pb2.RecordFollowUpAttemptRequest(
            follow_up_id=follow_up_id,
            reached=body.reached,
            score=body.score or 0,
            comments=body.comments or "",
        )
        reply = await call(gw.clients.customers.RecordFollowUpAttempt, message)
        return json_response(follow_up_json(auth, reply), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


# Complaints -----------------------------------------------------------------------------------


def complaint_json(auth: AuthContext, c: customers_pb2.Complaint) -> dict[str, Any]:
    return {
        "id": c.id,
        "follow_up_id": c.follow_up_id,
        "order_id": c.order_id,
        "branch_id": c.branch_id,
        "store_id": c.store_id,
        "customer_id": or_none(c.customer_id),
        "customer_name": or_none(c.customer_name),
        "customer_phone": phone_for_caller(auth, c.owner_id, c.customer_phone),
        "score": c.score,
        "owner_id": c.owner_id,
        "state": c.state,
        "outcome": or_none(c.outcome),
        "comments": or_none(c.comments),
        "opened_at": iso_utc(c.opened_at),
        "due_at": iso_utc(c.due_at),
        "closed_at": iso_utc(c.closed_at),
        "notes": [{"author_id": n.author_id, "note": n.note, "at": iso_utc(n.at)} for n in c.notes],
        "overdue": c.overdue,
    }


@router.get("/complaints", response_model=schemas_customers.ComplaintPage, responses=PROBLEMS)
async def list_complaints(
    auth: Auth,
    gw: Gw,
    state: schemas_rules.ComplaintState | None = None,
    overdue: bool = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """HQ sees all complaints, a branch manager their branch's, anyone else those they own.
    `state`: open | closed; `overdue=true`: open ones past their answer-by time."""
    reply = await call(
        gw.clients.customers.ListComplaints,
        customers_pb2.ListComplaintsRequest(
            state=state or "", overdue=overdue, page_size=limit, page_token=cursor or ""
        ),
    )
    items = [complaint_json(auth, c) for c in reply.complaints]
    return json_response(page(items, reply.next_page_token))


@router.get(
    "/complaints/{complaint_id}", response_model=schemas_customers.Complaint, responses=PROBLEMS
)
async def get_complaint(complaint_id: str, auth: Auth, gw: Gw) -> Response:
    reply = await call(
        gw.clients.customers.GetComplaint,
        customers_pb2.GetComplaintRequest(complaint_id=complaint_id),
    )
    return json_response(complaint_json(auth, reply))


@router.post(
    "/complaints/{complaint_id}/notes",
    status_code=201,
    response_model=schemas_customers.Complaint,
    responses=PROBLEMS,
)
async def add_complaint_note(
    complaint_id: str,
    body: schemas_customers.NoteIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A note on the case; the branch manager or HQ may hand it on with `owner_id`."""

    async def handle() -> Response:
        message = customers_pb2.AddComplaintNoteRequest(
            complaint_id=complaint_id, note=body.note, owner_id=body.owner_id or ""
        )
        reply = await call(gw.clients.customers.AddComplaintNote, message)
        return json_response(complaint_json(auth, reply), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.post(
    "/complaints/{complaint_id}/close",
    response_model=schemas_customers.Complaint,
    responses=PROBLEMS,
)
async def close_complaint(
    complaint_id: str,
    body: schemas_customers.CloseIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Closed with the outcome (what was done for the customer)."""

    async def handle() -> Response:
        message = customers_pb2.CloseComplaintRequest(
            complaint_id=complaint_id, outcome=body.outcome
        )
        reply = await call(gw.clients.customers.CloseComplaint, message)
        return json_response(complaint_json(auth, reply))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)
