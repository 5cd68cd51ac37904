"""Manufacturer settlement (劳务费结算), served by orders' SettlementService: monthly claims per
manufacturer and branch, built, submitted, decided by the manufacturer's CSV file and paid.

Who: branch managers (their branch) and hq_admin write; hq_analyst reads too (orders decides).
The steps after the build take the claim's ETag in If-Match (missing 428, stale 412) and an
optional Idempotency-Key, as the repair orders' steps do.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

from aftersales.orders.v1 import orders_pb2
from servicekit.errors import invalid
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_rules, schemas_settlement
from services.gateway.deps import Auth, Gw, IdempotencyKey
from services.gateway.idempotency import run_once
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, iso_utc, json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["settlement"], route_class=DocumentedRoute)

PATH = "/api/v1/settlement/claims"
Filter = Annotated[str | None, Query(max_length=50)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=schemas_rules.VERSION_ETAG,
        description='the ETag of the claim as read, e.g. "3"',
    ),
]
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
MULTIPART = "multipart/form-data"
STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "your role may not do this"},
    404: {"model": schemas.Problem, "description": "no such claim in your scope"},
    409: {"model": schemas.Problem, "description": "not possible from the claim's status"},
    412: {"model": schemas.Problem, "description": "If-Match is not the claim's current ETag"},
    422: {"model": schemas.Problem, "description": "invalid input, by field (or row)"},
    428: {"model": schemas.Problem, "description": "If-Match is missing"},
}


def claim_json(claim: orders_pb2.Claim, with_lines: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": claim.id,
        "manufacturer": claim.manufacturer,
        "branch_id": claim.branch_id,
        "month": claim.month,
        "supplement": claim.supplement,
        "status": claim.status,
        "version": claim.version,
        "claimed_fen": claim.claimed_fen,
        "accepted_fen": claim.accepted_fen,
        "paid_fen": claim.paid_fen,
        "payable_fen": claim.payable_fen,
        "held_fen": claim.held_fen,
        "built_at": iso_utc(claim.built_at),
        "built_by": claim.built_by,
        "submitted_at": iso_utc(claim.submitted_at),
        "decided_at": iso_utc(claim.decided_at),
        "paid_at": iso_utc(claim.paid_at),
        "payments": [
            {
                "amount_fen": p.amount_fen,
                "paid_on": p.paid_on,
                "recorded_by": p.recorded_by,
                "recorded_at": iso_utc(p.recorded_at),
            }
            for p in claim.payments
        ],
        "lines": None,
    }
    if with_lines:
        body["lines"] = [
            {
                "order_id": x.order_id,
                "number": x.number,
                "store_id": x.store_id,
                "repair_level": x.repair_level,
                "labour_fen": x.labour_fen,
                "parts_fen": x.parts_fen,
                "claimed_fen": x.claimed_fen,
                "state": x.state,
                "old_parts_owed": x.old_parts_owed,
                "decision": or_none(x.decision),
                "reason_code": or_none(x.reason_code),
                "accepted_fen": x.accepted_fen,
                "closed_at": iso_utc(x.closed_at),
            }
            for x in claim.lines
        ]
    return body


def _answer(claim: orders_pb2.Claim) -> Response:
    return json_response(
        claim_json(claim),
        headers={"ETag": f'"{claim.version}"', "Location": f"{PATH}/{claim.id}"},
    )


def expected_version(if_match: str | None) -> int:
    if if_match is None:
        raise HTTPException(428, "send If-Match with the ETag of the claim as you read it")
    text = if_match.strip()
    if text.startswith("W/"):
        text = text[2:]
    digits = text.strip('"')
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise invalid("If-Match", 'must be an ETag of this claim, e.g. "3"')
    return int(digits)


@router.get("/settlement/claims", response_model=schemas_settlement.Claims)
async def list_claims(
    auth: Auth,
    gw: Gw,
    branch_id: Filter = None,
    manufacturer: Filter = None,
    month: schemas_rules.MonthQuery = None,
    status: schemas_rules.ClaimStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """The claims in your scope (a branch manager's branch, HQ all), newest month first, then
    by branch and manufacturer, without their lines; a page at a time."""
    reply = await call(
        gw.clients.settlement.ListClaims,
        orders_pb2.ListClaimsRequest(
            branch_id=branch_id or "",
            manufacturer=manufacturer or "",
            month=month or "",
            status=status or "",
            page_size=limit,
            page_token=cursor or "",
        ),
    )
    return json_response(page([claim_json(c, False) for c in reply.claims], reply.next_page_token))


@router.post(
    "/settlement/claims",
    response_model=schemas_settlement.Claim,
    responses={
        403: {"model": schemas.Problem, "description": "your role may not build claims"},
        404: {"model": schemas.Problem, "description": "branch outside your scope"},
        422: {"model": schemas.Problem, "description": "invalid input, by field"},
    },
)
async def build_claim(
    body: schemas_settlement.BuildClaimIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Build the month's claim from the branch's closed in-warranty repairs of the brand at
    authorised stores: the labour fee of each repair's level from the manufacturer's price
    list, and its warranty parts at their catalog price. Building it again answers the same
    claim, with the repairs closed since while it is still `built`. Once it is submitted, the
    month's repairs closed after make a supplementary claim (补充索赔, `supplement` 1, 2...)."""

    async def handle() -> Response:
        claim = await call(
            gw.clients.settlement.BuildClaim,
            orders_pb2.BuildClaimRequest(
                manufacturer=body.manufacturer, branch_id=body.branch_id or "", month=body.month
            ),
        )
        return _answer(claim)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get(
    "/settlement/claims/{claim_id}",
    response_model=schemas_settlement.Claim,
    responses={404: {"model": schemas.Problem}},
)
async def get_claim(claim_id: str, auth: Auth, gw: Gw) -> Response:
    """A claim with its lines; its ETag is what the steps take in If-Match."""
    request = orders_pb2.GetClaimRequest(id=claim_id)
    return _answer(await call(gw.clients.settlement.GetClaim, request))


@router.post(
    "/settlement/claims/{claim_id}/submit",
    response_model=schemas_settlement.Claim,
    responses=STEP_RESPONSES,
)
async def submit_claim(
    claim_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """built -> submitted: sent to the manufacturer with the month's repairs closed so far
    (those closed since the build join it first); later ones make a supplementary claim."""

    async def handle() -> Response:
        message = orders_pb2.SubmitClaimRequest(
            id=claim_id, expected_version=expected_version(if_match)
        )
        return _answer(await call(gw.clients.settlement.SubmitClaim, message))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


DECISIONS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string", "minLength": 1, "pattern": schemas_rules.NOT_BLANK},
                "example": "order_number,decision,reason_code,amount_fen\n"
                "SH-001-260310-0001,accepted,,86000\n"
                "SH-001-260311-0002,rejected,NO-OLD-PART,\n",
            },
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


async def decision_file(request: Request) -> bytes:
    """The file as a text/csv body, or as the `file` part of a multipart form."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(MULTIPART):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid("file", "send the manufacturer's CSV file as the form's `file` part")
        return await upload.read()
    if content_type.split(";")[0].strip() in CSV_TYPES:
        return await request.body()
    raise HTTPException(415, "send the decisions as text/csv, or as a multipart form's file")


@router.post(
    "/settlement/claims/{claim_id}/decisions",
    response_model=schemas_settlement.Claim,
    responses={**STEP_RESPONSES, 415: {"model": schemas.Problem}},
    openapi_extra=DECISIONS_BODY,
)
async def decide_claim(
    claim_id: str,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """submitted -> decided: the manufacturer's decision file, UTF-8 CSV with the header
    `order_number,decision,reason_code,amount_fen` (any column order): one row per line of the
    claim, `accepted` (amount_fen what it pays, empty for the amount claimed) or `rejected`
    (with its reason code). All rows or nothing: a bad file is a 422 naming each bad row as
    `rows[N].<column>` (N the file's line, the header being 1) and changes nothing. The same
    file again changes nothing and answers the claim as it is."""

    async def handle() -> Response:
        content = await decision_file(request)
        if not content.strip():
            raise invalid("file", "is empty")
        message = orders_pb2.DecideClaimRequest(
            id=claim_id, expected_version=expected_version(if_match), csv=content
        )
        return _answer(await call(gw.clients.settlement.DecideClaim, message))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.post(
    "/settlement/claims/{claim_id}/payments",
    response_model=schemas_settlement.Claim,
    responses=STEP_RESPONSES,
)
async def record_payment(
    claim_id: str,
    body: schemas_settlement.PaymentIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A payment received: at most what is payable now (accepted lines whose old parts are
    back, less what was paid). Paid in full, the claim is `paid`."""

    async def handle() -> Response:
        message = orders_pb2.RecordClaimPaymentRequest(
            id=claim_id,
            expected_version=expected_version(if_match),
            amount_fen=body.amount_fen,
            paid_on=body.paid_on,
            request_id=f"{auth.user_id}:{idempotency_key}" if idempotency_key else "",
        )
        return _answer(await call(gw.clients.settlement.RecordClaimPayment, message))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)
