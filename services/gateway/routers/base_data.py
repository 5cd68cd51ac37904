"""HQ base data (基础数据), served by orders: the manufacturers' fault codes, labour prices and
warranty policies, the authorisation matrix and the branches' approval thresholds. Staff read
what lies in their scope; hq_admin writes. A PUT sets a row by its natural key (the same PUT
twice is the same); `If-Match` with the `ETag` of a list (the base data version) is optional
and makes a change made meanwhile a 412. Every change is obeyed by the next order step, and
audited: hq_admin reads the audit at /base-data/changes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from starlette.responses import Response

from aftersales.orders.v1 import base_data_pb2 as pb
from servicekit.auth import require_role
from servicekit.errors import invalid
from servicekit.grpc_client import call
from services.gateway import schemas, schemas_admin, schemas_rules
from services.gateway.deps import Auth, Gw
from services.gateway.pagination import Cursor, page
from services.gateway.render import DocumentedRoute, iso_shanghai, iso_utc, json_response

router = APIRouter(prefix="/api/v1", tags=["base data"], route_class=DocumentedRoute)

WRITERS = ("hq_admin",)
Filter = Annotated[str | None, Query(max_length=50)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=schemas_rules.BASE_DATA_ETAG,
        description='optional: the ETag of the base data as read, e.g. "7"',
    ),
]
BrandCode = Annotated[
    str, Path(pattern=schemas_rules.BRAND_CODE, description="1 to 30 of a-z, 0-9 and -")
]
ModelCode = BrandCode
FaultCodeKey = Annotated[
    str,
    Path(pattern=schemas_rules.FAULT_CODE, description="1 to 30 of A-Z, a-z, 0-9, _, . and -"),
]
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "only hq_admin keeps base data"},
    412: {"model": schemas.Problem, "description": "the base data changed since If-Match"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


ChangesLimit = Annotated[int, Query(ge=1, le=200, description="page size, 1 to 200")]
AUDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "only hq_admin reads the audit"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


def expected_version(if_match: str | None) -> int:
    """0 when no If-Match is sent: the change is made on whatever is there."""
    if if_match is None:
        return 0
    digits = if_match.strip().removeprefix("W/").strip('"')
    if not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise invalid("If-Match", 'must be an ETag of the base data, e.g. "7"')
    return int(digits)


def versioned(body: dict[str, Any], version: int) -> Response:
    return json_response(body, headers={"ETag": f'"{version}"'})


@router.put("/brands/{code}", response_model=schemas_admin.BrandEntry, responses=WRITE_RESPONSES)
async def put_brand(
    code: BrandCode, body: schemas_admin.NameIn, auth: Auth, gw: Gw, if_match: IfMatch = None
) -> Response:
    """Add a manufacturer (with the national warranty defaults) or rename one."""
    require_role(auth, WRITERS)
    reply = await call(
        gw.clients.base_data.PutBrand,
        pb.PutBrandRequest(
            brand=pb.BrandEntry(code=code, name=body.name),
            expected_version=expected_version(if_match),
        ),
    )
    return versioned({"code": reply.code, "name": reply.name}, reply.version)


@router.put(
    "/brands/{brand}/models/{code}",
    response_model=schemas_admin.ModelEntry,
    responses=WRITE_RESPONSES,
)
async def put_model(
    brand: str,
    code: ModelCode,
    body: schemas_admin.NameIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    """Add a model of a manufacturer, or rename one; intake accepts it from the next order."""
    require_role(auth, WRITERS)
    reply = await call(
        gw.clients.base_data.PutModel,
        pb.PutModelRequest(
            model=pb.ModelEntry(brand=brand, code=code, name=body.name),
            expected_version=expected_version(if_match),
        ),
    )
    return versioned({"brand": reply.brand, "code": reply.code, "name": reply.name}, reply.version)


@router.get("/fault-codes", response_model=schemas_admin.FaultCodes)
async def list_fault_codes(
    auth: Auth, gw: Gw, brand: Filter = None, kind: Filter = None, active_only: bool = False
) -> Response:
    """The manufacturers' symptom, fault and cause codes (现象/故障/原因代码)."""
    reply = await call(
        gw.clients.base_data.ListFaultCodes,
        pb.ListFaultCodesRequest(brand=brand or "", kind=kind or "", active_only=active_only),
    )
    items = [
        {
            "brand": c.brand,
            "kind": c.kind,
            "code": c.code,
            "description_zh": c.description_zh,
            "description_en": c.description_en,
            "active": c.active,
        }
        for c in reply.codes
    ]
    return versioned({"items": items, "version": reply.version}, reply.version)


@router.put(
    "/fault-codes/{brand}/{kind}/{code}",
    response_model=schemas_admin.FaultCode,
    responses=WRITE_RESPONSES,
)
async def put_fault_code(
    brand: str,
    kind: schemas_rules.FaultCodeKind,
    code: FaultCodeKey,
    body: schemas_admin.FaultCodeIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    """Add or change a code; `active: false` retires it (orders that name it keep it)."""
    require_role(auth, WRITERS)
    message = pb.FaultCode(
        brand=brand,
        kind=kind,
        code=code,
        description_zh=body.description_zh,
        description_en=body.description_en,
        active=body.active,
    )
    reply = await call(
        gw.clients.base_data.PutFaultCode,
        pb.PutFaultCodeRequest(code=message, expected_version=expected_version(if_match)),
    )
    return versioned(
        {
            "brand": reply.brand,
            "kind": reply.kind,
            "code": reply.code,
            "description_zh": reply.description_zh,
            "description_en": reply.description_en,
            "active": reply.active,
        },
        reply.version,
    )


@router.get("/labour-prices", response_model=schemas_admin.LabourPrices)
async def list_labour_prices(auth: Auth, gw: Gw, brand: Filter = None) -> Response:
    """劳务费 per manufacturer and repair level, in fen."""
    reply = await call(
        gw.clients.base_data.ListLabourPrices, pb.ListLabourPricesRequest(brand=brand or "")
    )
    items = [
        {"brand": p.brand, "repair_level": p.repair_level, "amount_fen": p.amount_fen}
        for p in reply.prices
    ]
    return versioned({"items": items, "version": reply.version}, reply.version)


@router.put(
    "/labour-prices/{brand}/{repair_level}",
    response_model=schemas_admin.LabourPrice,
    responses=WRITE_RESPONSES,
)
async def put_labour_price(
    brand: str,
    repair_level: schemas_rules.RepairLevel,
    body: schemas_admin.LabourPriceIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    require_role(auth, WRITERS)
    price = pb.LabourPrice(brand=brand, repair_level=repair_level, amount_fen=body.amount_fen)
    reply = await call(
        gw.clients.base_data.PutLabourPrice,
        pb.PutLabourPriceRequest(price=price, expected_version=expected_version(if_match)),
    )
    return versioned(
        {"brand": reply.brand, "repair_level": reply.repair_level, "amount_fen": reply.amount_fen},
        reply.version,
    )


POLICY_FIELDS = tuple(schemas_admin.WarrantyPolicyIn.model_fields)


def policy_json(policy: pb.WarrantyPolicy) -> dict[str, Any]:
    return {"brand": policy.brand, **{name: getattr(policy, name) for name in POLICY_FIELDS}}


@router.get("/warranty-policies", response_model=schemas_admin.WarrantyPolicies)
async def list_warranty_policies(auth: Auth, gw: Gw) -> Response:
    """Each manufacturer's 三包 policy, which the intake warranty decision reads."""
    reply = await call(gw.clients.base_data.ListWarrantyPolicies, pb.ListWarrantyPoliciesRequest())
    items = [policy_json(p) for p in reply.policies]
    return versioned({"items": items, "version": reply.version}, reply.version)


@router.put(
    "/warranty-policies/{brand}",
    response_model=schemas_admin.WarrantyPolicy,
    responses=WRITE_RESPONSES,
)
async def put_warranty_policy(
    brand: str,
    body: schemas_admin.WarrantyPolicyIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    """Set the whole policy; a field left out takes the national default."""
    require_role(auth, WRITERS)
    policy = pb.WarrantyPolicy(brand=brand, **body.model_dump())
    reply = await call(
        gw.clients.base_data.PutWarrantyPolicy,
        pb.PutWarrantyPolicyRequest(policy=policy, expected_version=expected_version(if_match)),
    )
    return versioned(policy_json(reply), reply.version)


@router.get("/authorisations", response_model=schemas_admin.Authorisations)
async def list_authorisations(
    auth: Auth, gw: Gw, store_id: Filter = None, brand: Filter = None
) -> Response:
    """The authorised cells of store × manufacturer × service type, for the stores in scope."""
    if store_id:
        gw.tree.store_in_scope(auth, store_id)
    reply = await call(
        gw.clients.base_data.ListAuthorisations,
        pb.ListAuthorisationsRequest(store_id=store_id or "", brand=brand or ""),
    )
    in_scope = {u.id for u in gw.tree.units_in_scope(auth) if u.kind == "store"}
    items = [
        {
            "store_id": a.store_id,
            "brand": a.brand,
            "service_type": a.service_type,
            "authorised": True,
        }
        for a in reply.authorisations
        if a.store_id in in_scope
    ]
    return versioned({"items": items, "version": reply.version}, reply.version)


@router.put(
    "/authorisations/{store_id}/{brand}/{service_type}",
    response_model=schemas_admin.Authorisation,
    responses=WRITE_RESPONSES,
)
async def put_authorisation(
    store_id: str,
    brand: str,
    service_type: str,
    body: schemas_admin.AuthorisationIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    """Authorise a store for a manufacturer's service type, or withdraw it."""
    require_role(auth, WRITERS)
    unit = gw.tree.get(store_id)
    if unit is None or unit.kind != "store":
        raise invalid("store_id", f"no store {store_id}")
    cell = pb.Authorisation(
        store_id=store_id, brand=brand, service_type=service_type, authorised=body.authorised
    )
    reply = await call(
        gw.clients.base_data.PutAuthorisation,
        pb.PutAuthorisationRequest(authorisation=cell, expected_version=expected_version(if_match)),
    )
    return versioned(
        {
            "store_id": reply.store_id,
            "brand": reply.brand,
            "service_type": reply.service_type,
            "authorised": reply.authorised,
        },
        reply.version,
    )


@router.get("/approval-thresholds", response_model=schemas_admin.ApprovalThresholds)
async def list_approval_thresholds(auth: Auth, gw: Gw) -> Response:
    """Above its branch's amount a quote needs the branch manager too; branch and store staff
    see their branch's."""
    reply = await call(
        gw.clients.base_data.ListApprovalThresholds, pb.ListApprovalThresholdsRequest()
    )
    items = [{"branch_id": t.branch_id, "amount_fen": t.amount_fen} for t in reply.thresholds]
    return versioned(
        {"items": items, "default_fen": reply.default_fen, "version": reply.version},
        reply.version,
    )


@router.put(
    "/approval-thresholds/{branch_id}",
    response_model=schemas_admin.ApprovalThreshold,
    responses=WRITE_RESPONSES,
)
async def put_approval_threshold(
    branch_id: str,
    body: schemas_admin.ApprovalThresholdIn,
    auth: Auth,
    gw: Gw,
    if_match: IfMatch = None,
) -> Response:
    require_role(auth, WRITERS)
    unit = gw.tree.get(branch_id)
    if unit is None or unit.kind != "branch":
        raise invalid("branch_id", f"no branch {branch_id}")
    threshold = pb.ApprovalThreshold(branch_id=branch_id, amount_fen=body.amount_fen)
    reply = await call(
        gw.clients.base_data.PutApprovalThreshold,
        pb.PutApprovalThresholdRequest(
            threshold=threshold, expected_version=expected_version(if_match)
        ),
    )
    return versioned({"branch_id": reply.branch_id, "amount_fen": reply.amount_fen}, reply.version)


@router.get(
    "/base-data/changes",
    response_model=schemas_admin.BaseDataChangePage,
    responses=AUDIT_RESPONSES,
)
async def list_base_data_changes(
    auth: Auth,
    gw: Gw,
    what: schemas_admin.BaseDataChangeKind | None = None,
    key: Annotated[str | None, Query(max_length=120, description="e.g. huawei/L2")] = None,
    limit: ChangesLimit = 50,
    cursor: Cursor = None,
) -> Response:
    """The audit of HQ's base data (hq_admin), newest first: who changed which row, when, to
    what, and the base data version it made."""
    require_role(auth, WRITERS)
    reply = await call(
        gw.clients.base_data.ListBaseDataChanges,
        pb.ListBaseDataChangesRequest(
            what=what or "", key=key or "", page_size=limit, page_token=cursor or ""
        ),
    )
    items = [
        {
            "seq": c.seq,
            "at": iso_utc(c.at),
            "at_local": iso_shanghai(c.at),
            "user_id": c.user_id,
            "what": c.what,
            "key": c.key,
            "value": json.loads(c.value_json),
            "version": c.version,
        }
        for c in reply.changes
    ]
    return json_response(page(items, reply.next_page_token))
