"""The org tree and its users, kept by hq_admin (基础数据: 组织机构, 用户): a new branch or store, a
store's franchise flag, users added, moved, given another role, deactivated, their password
reset. A branch manager may keep the store staff of their own branch's stores. Every change is
audited. A change of role, unit, password or active flag refuses the user's older tokens at
once on every gateway replica (services/gateway/identities.py): they sign in again as they now
are. hq_admin reads the audit at /admin/changes."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from servicekit import paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, invalid
from servicekit.timeutil import SHANGHAI, as_utc, utc_now
from services.gateway import schemas, schemas_admin, schemas_rules
from services.gateway.deps import Auth, Gateway, Gw, IdempotencyKey
from services.gateway.idempotency import run_once
from services.gateway.identities import identity_changed
from services.gateway.orm import admin_changes, org_units, users
from services.gateway.pagination import Cursor, page
from services.gateway.render import DocumentedRoute, json_response
from services.gateway.scope import OrgTree
from services.gateway.security import hash_password

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=DocumentedRoute)

UNIT_ADMINS = ("hq_admin",)
AUDITORS = ("hq_admin",)
USER_ADMINS = ("hq_admin", "branch_manager")
STORE_STAFF = ("clerk", "technician", "warehouse_keeper", "followup_agent")
"""The roles a branch manager may give, to users of their own branch's stores."""

ROLE_LEVELS = {
    "hq_admin": ("hq",),
    "hq_analyst": ("hq",),
    "branch_manager": ("branch",),
    "warehouse_keeper": ("branch", "store"),
    "followup_agent": ("branch", "store"),
    "clerk": ("store",),
    "technician": ("store",),
}
"""Which kind of unit each role works at (SPEC §1)."""

UnitId = Annotated[
    str, Path(pattern=schemas_rules.UNIT_ID, description="1 to 32 of A-Z, 0-9 and -")
]
Username = Annotated[
    str,
    Path(pattern=schemas_rules.USERNAME, description="3 to 64 of a-z, 0-9, '.', '_' and '-'"),
]
ChangesLimit = Annotated[int, Query(ge=1, le=200, description="page size, 1 to 200")]
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": schemas.Problem, "description": "role may not keep this"},
    404: {"model": schemas.Problem, "description": "user or unit outside your scope"},
    409: {"model": schemas.Problem, "description": "a unit's kind or parent cannot change"},
    422: {"model": schemas.Problem, "description": "invalid input, by field"},
}


async def _audit(
    conn: AsyncConnection, auth: AuthContext, what: str, key: str, value: dict[str, Any]
) -> None:
    await conn.execute(
        insert(admin_changes).values(
            at=utc_now(),
            user_id=auth.user_id,
            what=what,
            key=key,
            value=json.dumps(value, ensure_ascii=False, sort_keys=True),
        )
    )


def unit_json(unit_id: str, body: schemas_admin.OrgUnitIn) -> dict[str, Any]:
    return {"id": unit_id, **body.model_dump()}


@router.put("/org-units/{unit_id}", response_model=schemas_admin.OrgUnit, responses=WRITE_RESPONSES)
async def put_org_unit(
    unit_id: UnitId, body: schemas_admin.OrgUnitIn, auth: Auth, gw: Gw
) -> Response:
    """Add a branch (under HQ) or a store (under a branch), or rename one or change its
    franchise flag. A unit never changes kind or parent: its orders and stock stay where they
    are."""
    require_role(auth, UNIT_ADMINS)
    errors: list[FieldError] = []
    parent = gw.tree.get(body.parent_id)
    wanted_parent = "hq" if body.kind == "branch" else "branch"
    if parent is None or parent.kind != wanted_parent:
        errors.append(FieldError("parent_id", f"must be a unit of kind {wanted_parent}"))
    if body.kind == "branch" and body.franchised:
        errors.append(FieldError("franchised", "only a store may be franchised"))
    if errors:
        raise InvalidInput("the org unit has errors", errors)
    existing = gw.tree.get(unit_id)
    if existing and (existing.kind, existing.parent_id) != (body.kind, body.parent_id):
        raise Conflict(
            f"{unit_id} is a {existing.kind} under {existing.parent_id}: that cannot change"
        )
    try:
        await _save_unit(gw, auth, unit_id, body, existing is not None)
    except IntegrityError as error:
        gw.tree = await OrgTree.load(gw.db)
        raise Conflict(f"{unit_id} was added meanwhile: read it and try again") from error
    # This gateway sees the unit at once; every request after this one reads the new tree.
    gw.tree = await OrgTree.load(gw.db)
    return json_response(unit_json(unit_id, body))


async def _save_unit(
    gw: Gateway, auth: AuthContext, unit_id: str, body: schemas_admin.OrgUnitIn, existing: bool
) -> None:
    values = {"name": body.name.strip(), "franchised": body.franchised}
    async with gw.db.begin() as conn:
        if existing:
            await conn.execute(update(org_units).where(org_units.c.id == unit_id).values(values))
        else:
            await conn.execute(
                insert(org_units).values(
                    id=unit_id, kind=body.kind, parent_id=body.parent_id, **values
                )
            )
        await _audit(conn, auth, "org_unit", unit_id, unit_json(unit_id, body))


def user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "display_name": row.display_name,
        "role": row.role,
        "org_unit_id": row.org_unit_id,
        "active": row.active,
    }


def _may_keep(gw: Gateway, auth: AuthContext, role: str, unit_id: str) -> bool:
    """HQ keeps everyone; a branch manager, store staff of their own branch's stores."""
    if auth.role == "hq_admin":
        return True
    unit = gw.tree.get(unit_id)
    return (
        role in STORE_STAFF
        and unit is not None
        and unit.kind == "store"
        and unit.parent_id == auth.branch_id
    )


def _check_keeper(gw: Gateway, auth: AuthContext, role: str, unit_id: str) -> None:
    """A unit outside the caller's scope is 404, a role or level they may not give 403."""
    if _may_keep(gw, auth, role, unit_id):
        return
    branch, store = gw.tree.path(unit_id) if gw.tree.get(unit_id) else (None, None)
    if branch is None or not auth.covers(branch, store):
        raise NotFound(f"no unit {unit_id} in your scope")
    raise Forbidden(f"role {auth.role} may not keep a {role} of {unit_id}")


@router.get("/users", response_model=schemas_admin.Users)
async def list_users(
    auth: Auth,
    gw: Gw,
    org_unit_id: Annotated[str | None, Query(max_length=32)] = None,
    role: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The users the caller may keep: all for HQ, a branch's store staff for its manager."""
    require_role(auth, USER_ADMINS)
    statement = select(users).order_by(users.c.username)
    if org_unit_id:
        statement = statement.where(users.c.org_unit_id == org_unit_id)
    if role:
        statement = statement.where(users.c.role == role)
    async with gw.db.session() as session:
        rows = (await session.execute(statement)).all()
    items = [user_json(r) for r in rows if _may_keep(gw, auth, r.role, r.org_unit_id)]
    return json_response({"items": items})


async def _user(conn: AsyncConnection, username: str) -> Any:
    return (await conn.execute(select(users).where(users.c.username == username))).first()


@router.put("/users/{username}", response_model=schemas_admin.User, responses=WRITE_RESPONSES)
async def put_user(username: Username, body: schemas_admin.UserIn, auth: Auth, gw: Gw) -> Response:
    """Add a user (a password is needed), or change their name, role, unit or whether they are
    active. Setting the same again changes nothing; the password is kept unless given."""
    require_role(auth, USER_ADMINS)
    errors: list[FieldError] = []
    unit = gw.tree.get(body.org_unit_id)
    if unit is None:
        errors.append(FieldError("org_unit_id", f"no unit {body.org_unit_id}"))
    elif unit.kind not in ROLE_LEVELS[body.role]:
        where = " or ".join(ROLE_LEVELS[body.role])
        errors.append(FieldError("org_unit_id", f"a {body.role} works at a {where}"))
    if errors:
        raise InvalidInput("the user has errors", errors)
    _check_keeper(gw, auth, body.role, body.org_unit_id)
    password_hash = await asyncio.to_thread(hash_password, body.password) if body.password else None
    values: dict[str, Any] = {
        "display_name": body.display_name.strip(),
        "role": body.role,
        "org_unit_id": body.org_unit_id,
        "active": body.active,
    }
    try:
        row = await _save_user(gw, auth, username, values, password_hash)
    except IntegrityError as error:
        raise Conflict(f"{username} was added meanwhile: read it and try again") from error
    return json_response(user_json(row))


_IDENTITY = ("role", "org_unit_id", "active")


def _identity_moved(existing: Any, values: dict[str, Any]) -> bool:
    """Whether the change gives the user another role, unit or active flag: their tokens then
    speak for someone they no longer are. A new display name changes nothing of that."""
    return any(
        values[name] != getattr(existing, name) for name in ("role", "org_unit_id", "active")
    )


async def _save_user(
    gw: Gateway,
    auth: AuthContext,
    username: str,
    values: dict[str, Any],
    password_hash: str | None,
) -> Any:
    async with gw.db.begin() as conn:
        existing = await _user(conn, username)
        if existing is None:
            if password_hash is None:
                raise invalid("password", "is required for a new user")
            await conn.execute(
                insert(users).values(
                    id=str(uuid.uuid4()), username=username, password_hash=password_hash, **values
                )
            )
        else:
            if not _may_keep(gw, auth, existing.role, existing.org_unit_id):
                raise NotFound(f"no user {username} in your scope")
            if password_hash is not None:
                values["password_hash"] = password_hash
            await conn.execute(update(users).where(users.c.id == existing.id).values(values))
            if password_hash is not None or _identity_moved(existing, values):
                await identity_changed(conn, existing.id)
        row = await _user(conn, username)
        await _audit(conn, auth, "user", username, user_json(row))
    # Committed: if their identity moved, this replica refuses their older tokens from now on.
    gw.identities.changed()
    return row


@router.post(
    "/users/{username}/password",
    response_model=schemas_admin.User,
    responses=WRITE_RESPONSES,
)
async def reset_password(
    username: str,
    body: schemas_admin.PasswordIn,
    request: Request,
    auth: Auth,
    gw: Gw,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Set a new password for a user the caller keeps (they sign in with it from now on)."""
    require_role(auth, USER_ADMINS)

    async def handle() -> Response:
        password_hash = await asyncio.to_thread(hash_password, body.password)
        async with gw.db.begin() as conn:
            row = await _user(conn, username)
            if row is None or not _may_keep(gw, auth, row.role, row.org_unit_id):
                raise NotFound(f"no user {username} in your scope")
            await conn.execute(
                update(users).where(users.c.id == row.id).values(password_hash=password_hash)
            )
            await identity_changed(conn, row.id)
            await _audit(conn, auth, "password", username, {"reset": True})
        gw.identities.changed()
        return json_response(user_json(row))

    return await run_once(gw.idempotency, auth.user_id, idempotency_key, request, handle)


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_local(moment: datetime) -> str:
    return as_utc(moment).astimezone(SHANGHAI).isoformat(timespec="milliseconds")


@router.get(
    "/changes",
    response_model=schemas_admin.AdminChangePage,
    responses={
        403: {"model": schemas.Problem, "description": "only hq_admin reads the audit"},
        422: {"model": schemas.Problem, "description": "invalid input, by field"},
    },
)
async def list_changes(
    auth: Auth,
    gw: Gw,
    what: schemas_admin.AdminChangeKind | None = None,
    key: Annotated[
        str | None, Query(max_length=64, description="a unit's id or a username")
    ] = None,
    limit: ChangesLimit = 50,
    cursor: Cursor = None,
) -> Response:
    """The audit of the org tree and the users (hq_admin), newest first: who changed which
    unit or user, when, to what (a password reset says only that it was reset)."""
    require_role(auth, AUDITORS)
    c = admin_changes.c
    statement = select(admin_changes).order_by(c.seq.desc()).limit(limit + 1)
    if what:
        statement = statement.where(c.what == what)
    if key:
        statement = statement.where(c.key == key)
    if cursor:
        (last_seq,) = paging.decode_page_token(cursor, 1)
        if not (last_seq.isascii() and last_seq.isdigit() and len(last_seq) <= 18):
            raise invalid("cursor", "is not a cursor this service issued")
        statement = statement.where(c.seq < int(last_seq))
    async with gw.db.session() as session:
        rows = (await session.execute(statement)).all()
    items = [
        {
            "seq": r.seq,
            "at": _iso(r.at),
            "at_local": _iso_local(r.at),
            "user_id": r.user_id,
            "what": r.what,
            "key": r.key,
            "value": json.loads(r.value),
        }
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return json_response(
        page(items, paging.encode_page_token(str(rows[limit - 1].seq)) if more else "")
    )
