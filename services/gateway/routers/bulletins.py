"""Bulletins (内部通知 / 技术公告 / 培训), served by the customers service: HQ or a branch manager
publishes to the chain, a branch or chosen stores; staff list theirs (unread first) and mark
them read; the publishing unit and HQ see who has read and who has not.

Users live here, in the gateway's database, not in customers': for the receipts the gateway
names the scope's active users (one query on its own tables) and customers, which keeps the
reads, says which of them have read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from aftersales.customers.v1 import bulletins_pb2 as pb
from servicekit.auth import AuthContext
from servicekit.errors import FieldError, InvalidInput
from servicekit.grpc_client import call
from servicekit.timeutil import to_timestamp
from services.gateway import schemas, schemas_bulletins
from services.gateway.deps import Auth, Gw, IdempotencyKey
from services.gateway.idempotency import run_once
from services.gateway.orm import users
from services.gateway.pagination import Cursor, Limit, page
from services.gateway.render import DocumentedRoute, iso_utc, json_response, or_none
from services.gateway.scope import OrgTree

router = APIRouter(prefix="/api/v1", tags=["bulletins"], route_class=DocumentedRoute)

BulletinId = Annotated[str, Path(max_length=64)]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "your role may not do this"},
    404: {"model": schemas.Problem, "description": "not found in your scope"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


def _hq_id(tree: OrgTree) -> str:
    root = tree.scope_root(AuthContext("", "hq_admin"))
    return root.id if root else "HQ"


def bulletin_json(tree: OrgTree, b: pb.Bulletin) -> dict[str, Any]:
    return {
        "id": b.id,
        "kind": b.kind,
        "title": b.title,
        "body": b.body,
        "attachments": [{"title": a.title, "url": a.url} for a in b.attachments],
        "publisher_id": b.publisher_id,
        "publisher_unit": b.publisher_branch_id or _hq_id(tree),
        "scope": {
            "kind": b.scope.kind,
            "branch_id": or_none(b.scope.branch_id),
            "store_ids": [s.store_id for s in b.scope.stores],
        },
        "published_at": iso_utc(b.published_at),
        "expires_at": iso_utc(b.expires_at),
        "read": b.read,
        "read_at": iso_utc(b.read_at),
    }


def scope_message(tree: OrgTree, scope: schemas_bulletins.ScopeIn) -> pb.BulletinScope:
    """The scope with each store's branch, from the org tree; a unit the tree does not know is
    refused by field. Whether the caller may publish there is the customers service's rule."""
    errors: list[FieldError] = []
    message = pb.BulletinScope(kind=scope.kind, branch_id=scope.branch_id or "")
    if scope.branch_id:
        unit = tree.get(scope.branch_id)
        if unit is None or unit.kind != "branch":
            errors.append(FieldError("scope.branch_id", "no such branch"))
    for index, store_id in enumerate(scope.store_ids or []):
        unit = tree.get(store_id)
        if unit is None or unit.kind != "store" or unit.parent_id is None:
            errors.append(FieldError(f"scope.store_ids[{index}]", "no such store"))
            continue
        message.stores.append(pb.ScopeStore(branch_id=unit.parent_id, store_id=unit.id))
    if errors:
        raise InvalidInput("invalid scope", errors)
    return message


@router.post(
    "/bulletins", status_code=201, response_model=schemas_bulletins.Bulletin, responses=PROBLEMS
)
async def publish_bulletin(
    body: schemas_bulletins.BulletinIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Publish (hq_admin, hq_analyst: anywhere; branch_manager: its branch or its stores).
    Attachments are links (https). With an Idempotency-Key a retry publishes nothing more."""

    async def handle() -> Response:
        message = pb.PublishBulletinRequest(
            kind=body.kind,
            title=body.title,
            body=body.body,
            attachments=[pb.Attachment(title=a.title, url=a.url) for a in body.attachments],
            scope=scope_message(gw.tree, body.scope),
        )
        if body.expires_at is not None:
            message.expires_at.CopyFrom(to_timestamp(body.expires_at))
        reply = await call(gw.clients.bulletins.PublishBulletin, message)
        return json_response(bulletin_json(gw.tree, reply), 201)

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


@router.get("/bulletins", response_model=schemas_bulletins.BulletinPage, responses=PROBLEMS)
async def list_bulletins(
    auth: Auth,
    gw: Gw,
    unread: Annotated[bool, Query(description="only those you have not read")] = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Your bulletins: to the chain, your branch or your store, and (for branch and HQ users)
    to the units below you; unread first, then newest first; expired ones left out."""
    reply = await call(
        gw.clients.bulletins.ListBulletins,
        pb.ListBulletinsRequest(unread_only=unread, page_size=limit, page_token=cursor or ""),
    )
    body = page([bulletin_json(gw.tree, b) for b in reply.bulletins], reply.next_page_token)
    body["unread_count"] = reply.unread_count
    return json_response(body)


@router.get(
    "/bulletins/{bulletin_id}", response_model=schemas_bulletins.Bulletin, responses=PROBLEMS
)
async def get_bulletin(bulletin_id: BulletinId, auth: Auth, gw: Gw) -> Response:
    """One of your bulletins (expired ones too), with whether you have read it."""
    reply = await call(
        gw.clients.bulletins.GetBulletin, pb.GetBulletinRequest(bulletin_id=bulletin_id)
    )
    return json_response(bulletin_json(gw.tree, reply))


@router.post(
    "/bulletins/{bulletin_id}/read", response_model=schemas_bulletins.Bulletin, responses=PROBLEMS
)
async def mark_read(
    bulletin_id: BulletinId,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Mark it read; again changes nothing (the first read time is kept)."""

    async def handle() -> Response:
        reply = await call(
            gw.clients.bulletins.MarkBulletinRead,
            pb.MarkBulletinReadRequest(bulletin_id=bulletin_id),
        )
        return json_response(bulletin_json(gw.tree, reply))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


def _units_of(tree: OrgTree, scope: pb.BulletinScope) -> list[str] | None:
    """The org units whose users the scope covers; None: every unit."""
    if scope.kind == "chain":
        return None
    if scope.kind == "branch":
        return [scope.branch_id, *tree.children.get(scope.branch_id, [])]
    return [s.store_id for s in scope.stores]


async def _members(gw: Gw, scope: pb.BulletinScope) -> list[Any]:
    """The scope's active users, by unit then user name."""
    query = select(
        users.c.id, users.c.username, users.c.display_name, users.c.role, users.c.org_unit_id
    ).where(users.c.active.is_(True))
    units = _units_of(gw.tree, scope)
    if units is not None:
        query = query.where(users.c.org_unit_id.in_(units))
    async with gw.db.session() as session:
        rows = (await session.execute(query)).all()
    return sorted(rows, key=lambda r: (r.org_unit_id, r.username))


def _member_message(tree: OrgTree, row: Any) -> pb.ScopeMember:
    branch_id, store_id = tree.path(row.org_unit_id) if tree.get(row.org_unit_id) else (None, None)
    return pb.ScopeMember(user_id=row.id, branch_id=branch_id or "", store_id=store_id or "")


def _reader(row: Any, read_at: str | None) -> dict[str, Any]:
    return {
        "user_id": row.id,
        "username": row.username,
        "display_name": row.display_name,
        "role": row.role,
        "unit_id": row.org_unit_id,
        "read_at": read_at,
    }


@router.get(
    "/bulletins/{bulletin_id}/receipts",
    response_model=schemas_bulletins.Receipts,
    responses=PROBLEMS,
)
async def list_receipts(bulletin_id: BulletinId, auth: Auth, gw: Gw) -> Response:
    """Who of the scope's users has read it and when, and who has not (the publishing unit
    and HQ; the publisher is left out)."""
    bulletin = await call(
        gw.clients.bulletins.GetBulletin, pb.GetBulletinRequest(bulletin_id=bulletin_id)
    )
    rows = await _members(gw, bulletin.scope)
    reply = await call(
        gw.clients.bulletins.ListBulletinReceipts,
        pb.ListBulletinReceiptsRequest(
            bulletin_id=bulletin.id, members=[_member_message(gw.tree, r) for r in rows]
        ),
    )
    by_id = {r.id: r for r in rows}
    read = [_reader(by_id[r.user_id], iso_utc(r.read_at)) for r in reply.read]
    not_read = [_reader(by_id[user_id], None) for user_id in reply.not_read]
    return json_response(
        {
            "bulletin_id": reply.bulletin_id,
            "audience": reply.audience,
            "read_count": len(read),
            "not_read_count": len(not_read),
            "read": read,
            "not_read": not_read,
        }
    )
