"""Sign-in (OAuth2 password flow), the caller, and the org units in their scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from starlette.responses import Response

from servicekit.auth import AuthContext
from servicekit.errors import Unauthenticated
from services.gateway import schemas
from services.gateway.deps import Auth, Gw
from services.gateway.orm import users
from services.gateway.render import DocumentedRoute, json_response
from services.gateway.scope import OrgTree, OrgUnit

router = APIRouter(prefix="/api/v1", tags=["auth"], route_class=DocumentedRoute)

# The same answer for an unknown user and a wrong password: it must not tell which.
_BAD_LOGIN = "wrong username or password"


@router.post(
    "/auth/token",
    response_model=schemas.Token,
    responses={429: {"model": schemas.Problem, "description": "too many failed sign-ins"}},
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, gw: Gw
) -> Response:
    address = request.client.host if request.client else "unknown"
    throttle = gw.login_throttle
    await throttle.refuse_if_locked(form.username, address)
    await throttle.slow_down(form.username)
    async with gw.password_checks.turn():
        # Again: failures of sign-ins that waited alongside this one may have locked it.
        await throttle.refuse_if_locked(form.username, address)
        async with gw.db.session() as session:
            user = (
                await session.execute(select(users).where(users.c.username == form.username))
            ).first()
        if user is not None and not user.active:
            user = None
        right = await gw.password_checks.verify(
            user.password_hash if user is not None else None, form.password
        )
    if user is None or not right:
        await throttle.failed(form.username, address)
        raise Unauthenticated(_BAD_LOGIN)
    await throttle.succeeded(form.username, address)
    if gw.tree.get(user.org_unit_id) is None:
        # A unit another gateway added since this one last read the tree.
        gw.tree = await OrgTree.load(gw.db)
        if gw.tree.get(user.org_unit_id) is None:
            raise Unauthenticated(_BAD_LOGIN)
    branch_id, store_id = gw.tree.path(user.org_unit_id)
    issued = gw.tokens.issue(
        AuthContext(user.id, user.role, branch_id, store_id), user.token_version
    )
    return json_response(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
        },
        headers={"Cache-Control": "no-store"},
    )


def unit_json(unit: OrgUnit) -> dict[str, Any]:
    return {
        "id": unit.id,
        "kind": unit.kind,
        "name": unit.name,
        "parent_id": unit.parent_id,
        "franchised": unit.franchised,
    }


@router.get("/me", response_model=schemas.Me)
async def me(auth: Auth, gw: Gw) -> Response:
    async with gw.db.session() as session:
        user = (await session.execute(select(users).where(users.c.id == auth.user_id))).first()
    unit = gw.tree.get(user.org_unit_id) if user is not None else None
    if user is None or unit is None:
        raise Unauthenticated("this user no longer exists")
    return json_response(
        {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": auth.role,
            "branch_id": auth.branch_id,
            "store_id": auth.store_id,
            "org_unit": unit_json(unit),
        }
    )


@router.get("/org-units", response_model=schemas.OrgUnits)
async def org_units_in_scope(auth: Auth, gw: Gw) -> Response:
    return json_response({"items": [unit_json(u) for u in gw.tree.units_in_scope(auth)]})
