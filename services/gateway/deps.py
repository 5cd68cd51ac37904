"""What every request handler gets: the gateway's parts and the authenticated caller."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from servicekit.auth import AuthContext, set_auth
from servicekit.db import Database
from servicekit.errors import TooManyRequests, Unauthenticated
from services.gateway.clients import ServiceClients
from services.gateway.idempotency import HEADER, IdempotencyStore
from services.gateway.identities import Identities
from services.gateway.login import LoginThrottle, PasswordChecks
from services.gateway.ratelimit import RateLimiter
from services.gateway.schemas_rules import IDEMPOTENCY_KEY
from services.gateway.scope import OrgTree
from services.gateway.security import TokenCodec
from services.gateway.settings import GatewaySettings

TOKEN_URL = "/api/v1/auth/token"

# What the handlers check, declared: a form built from the OpenAPI refuses what they refuse.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=IDEMPOTENCY_KEY,
        description="1 to 200 printable ASCII characters, new for each action; a retry sends "
        "the same key and body",
    ),
]


@dataclass
class Gateway:
    settings: GatewaySettings
    db: Database
    tree: OrgTree
    clients: ServiceClients
    tokens: TokenCodec
    limiter: RateLimiter | None
    idempotency: IdempotencyStore
    identities: Identities
    login_throttle: LoginThrottle
    password_checks: PasswordChecks
    # Per client address on the routes without login (the tracking link).
    public_limiter: RateLimiter


# Dependencies are async on purpose: sync ones run in a worker thread, which costs time and
# would leave the auth context set there, out of the endpoint's sight.
async def gateway(request: Request) -> Gateway:
    state: Gateway = request.app.state.gateway
    return state


_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def authenticated(
    gw: Annotated[Gateway, Depends(gateway)],
    token: Annotated[str | None, Depends(_bearer)],
) -> AuthContext:
    """The caller from their bearer token, made the current auth context, so that this
    request's gRPC calls carry it. It is set in the request's own context (an async, non-yield
    dependency runs in the endpoint's task), and RequestMiddleware clears it afterwards."""
    if not token:
        raise Unauthenticated("a bearer token is required")
    auth, version = gw.tokens.verify_versioned(token)
    if not await gw.identities.is_current(auth.user_id, version):
        # Deactivated, or given another role, unit or password since: sign in again.
        raise Unauthenticated("this token is no longer valid for this user: sign in again")
    if gw.limiter is not None:
        wait = gw.limiter.acquire(auth.user_id)
        if wait:
            error = TooManyRequests("too many requests, slow down")
            error.retry_after_seconds = math.ceil(wait)
            raise error
    set_auth(auth)
    return auth


Gw = Annotated[Gateway, Depends(gateway)]
Auth = Annotated[AuthContext, Depends(authenticated)]
