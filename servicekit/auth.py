"""Who is asking, and which part of the org tree (HQ → branch → store) they may see.

The gateway authenticates the user and passes this context to services in a signed caller token
(servicekit.caller_token); the server interceptor verifies it, and every service reads it from
`current_auth()` and scopes its queries with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from servicekit.errors import Forbidden, NotFound, Unauthenticated

ROLES = (
    "hq_admin",
    "hq_analyst",
    "branch_manager",
    "warehouse_keeper",
    "clerk",
    "technician",
    "followup_agent",
)

# Not a user's role: the identity of a service's own background work (consumers, relay, demo
# loading), allowed only what that work needs.
SERVICE_ROLE = "service"

# Not a user either: someone of the public on the gateway's routes without login (the tracking
# link, 进度查询). Every RPC refuses them except those that ask for `caller_or_public()`.
PUBLIC_ROLE = "public"


@dataclass(frozen=True)
class AuthContext:
    user_id: str
    role: str
    branch_id: str | None = None  # None: HQ
    store_id: str | None = None  # None: HQ or branch level

    @property
    def level(self) -> str:
        if self.store_id:
            return "store"
        return "branch" if self.branch_id else "hq"

    def covers(self, branch_id: str, store_id: str | None = None) -> bool:
        """Whether data of this branch (and store) lies within the caller's unit or below it."""
        if self.role == PUBLIC_ROLE:
            return False
        if self.branch_id and self.branch_id != branch_id:
            return False
        return not (self.store_id and self.store_id != store_id)

    def narrow(self, branch_id: str | None, store_id: str | None) -> tuple[str | None, str | None]:
        """The (branch, store) filter for a query: the caller's own unit unless they asked for a
        unit below it. Asking for a unit outside their scope is NotFound, never another's data."""
        branch = branch_id or self.branch_id
        store = store_id or self.store_id
        if self.branch_id and branch != self.branch_id:
            raise NotFound("no such branch in your scope")
        if self.store_id and store != self.store_id:
            raise NotFound("no such store in your scope")
        return branch, store


PUBLIC_CALLER = AuthContext(user_id="public", role=PUBLIC_ROLE)


def service_identity(service: str) -> AuthContext:
    """Who a service is when it acts on its own rather than for a caller."""
    return AuthContext(user_id=f"service:{service}", role=SERVICE_ROLE)


_current: ContextVar[AuthContext | None] = ContextVar("auth_context", default=None)


def current_auth() -> AuthContext:
    """The caller's context; RPCs without one, or called for the public, are refused."""
    context = caller_or_public()
    if context.role == PUBLIC_ROLE:
        raise Forbidden("this needs a signed-in user")
    return context


def caller_or_public() -> AuthContext:
    """The caller's context, which may be the public's (PUBLIC_ROLE): only for RPCs whose
    answer holds nothing beyond what the request's own secret opens."""
    context = _current.get()
    if context is None:
        raise Unauthenticated("no auth context on the call")
    return context


def maybe_auth() -> AuthContext | None:
    return _current.get()


def set_auth(context: AuthContext | None) -> object:
    return _current.set(context)


def reset_auth(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def require_role(context: AuthContext, allowed: Sequence[str]) -> None:
    if context.role not in allowed:
        raise Forbidden(f"role {context.role} may not do this")
