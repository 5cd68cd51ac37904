"""The FastAPI application: routers, problem details, the per-request layer, and a lifespan that
migrates the database, loads the org tree and opens the gRPC channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import TypeAdapter
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from servicekit import migrations
from servicekit.db import Database
from services.gateway import console, problems, schemas
from services.gateway.clients import ServiceClients
from services.gateway.demo import load_demo_data
from services.gateway.deps import Gateway
from services.gateway.draining import Draining, DrainingMiddleware
from services.gateway.hygiene import refuse_unstorable_input
from services.gateway.idempotency import IdempotencyStore
from services.gateway.identities import Identities
from services.gateway.login import LoginThrottle, PasswordChecks
from services.gateway.middleware import BodyLimitMiddleware, RequestMiddleware
from services.gateway.ratelimit import RateLimiter
from services.gateway.render import FastJSONResponse
from services.gateway.routers import (
    admin,
    auth,
    base_data,
    brands,
    bulletins,
    customers,
    exports,
    inventory,
    inventory_lists,
    notifications,
    repair_orders,
    reports,
    settlement,
    stock_reports,
    system,
    tracking,
)
from services.gateway.scope import OrgTree
from services.gateway.security import TokenCodec
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

PROBLEM_SCHEMAS: dict[str, Any] = TypeAdapter(schemas.Problem).json_schema(
    ref_template="#/components/schemas/{model}"
)
PROBLEM_SCHEMAS = {**PROBLEM_SCHEMAS.pop("$defs"), "Problem": PROBLEM_SCHEMAS}

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
PRUNE_EVERY_SECONDS = 3600.0
TREE_REFRESH_SECONDS = 60.0

DESCRIPTION = """\
The public REST API of the after-sales platform of a chain of phone-repair stores.

Sign in at `POST /api/v1/auth/token` (OAuth2 password flow) and send the token as
`Authorization: Bearer`. Every answer is scoped to the caller's org unit and those below it.
Errors are RFC 9457 problem details (`application/problem+json`) naming the fields at fault.
Text anywhere (path, query, body) may not contain NUL or unpaired surrogates: no database
stores them, so they are refused as invalid input.
POST requests accept an `Idempotency-Key` header: a retry with the same key and body replays the
first answer instead of acting twice.
"""


async def start(settings: GatewaySettings) -> Gateway:
    """Migrate, load demo data when asked, read the org tree, open the channels."""
    if settings.jwt_secret_generated:
        log.warning("JWT_SECRET is not set: using a random secret, tokens die with this process")
    db = Database(settings.database_url, settings.db_schema)
    await migrations.upgrade(db, MIGRATIONS_DIR)
    if settings.demo_data:
        await load_demo_data(db)
    tree = await OrgTree.load(db)
    limiter = (
        RateLimiter(settings.rate_limit_per_second) if settings.rate_limit_per_second > 0 else None
    )
    return Gateway(
        settings=settings,
        db=db,
        tree=tree,
        clients=ServiceClients(settings.service_addresses),
        tokens=TokenCodec(settings.jwt_secret, settings.jwt_ttl_seconds),
        limiter=limiter,
        idempotency=IdempotencyStore(db),
        identities=Identities(db, settings.identity_fresh_seconds),
        login_throttle=LoginThrottle(
            db, settings.login_failures_per_user, settings.login_failures_per_address
        ),
        password_checks=PasswordChecks(settings.password_checks_at_once),
        public_limiter=RateLimiter(settings.tracking_rate_per_second),
    )


async def prune_forever(gw: Gateway) -> None:
    """Forget idempotency keys past their lifetime and failed sign-ins that have aged out."""
    while True:
        try:
            keys = await gw.idempotency.prune()
            failures = await gw.login_throttle.prune()
            if keys or failures:
                log.info("pruned %d idempotency keys, %d failed sign-in counts", keys, failures)
        except Exception:
            log.exception("pruning failed; trying again later")
        await asyncio.sleep(PRUNE_EVERY_SECONDS)


async def refresh_tree_forever(gw: Gateway) -> None:
    """Read the org tree again now and then: units another gateway replica added or renamed
    reach this one within a minute (sign-in reads it at once for a unit it does not know)."""
    while True:
        await asyncio.sleep(TREE_REFRESH_SECONDS)
        try:
            gw.tree = await OrgTree.load(gw.db)
        except Exception:
            log.exception("reading the org tree failed; keeping the last one")


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter left out is absent, never null (a header or query value cannot be): FastAPI's
    `str | None` is the string alone, or a client would send "null"."""
    kinds = schema.get("anyOf", [])
    if len(kinds) == 2 and {"type": "null"} in kinds:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**next(kind for kind in kinds if kind != {"type": "null"}), **rest}
    return schema


def document_answers(app: FastAPI) -> None:
    """The OpenAPI with every error documented as the problem details it is."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        # FastAPI keeps what it generates as app.openapi_schema: amended there, once.
        spec = generate()
        spec.setdefault("components", {}).setdefault("schemas", {}).update(PROBLEM_SCHEMAS)
        for item in spec.get("paths", {}).values():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = without_null(parameter["schema"])
        return problems.document_problems(spec)

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: GatewaySettings, draining: Draining | None = None) -> FastAPI:
    """`draining`: set when the server is told to stop (services/gateway/draining)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = await start(settings)
        app.state.gateway = gw
        pruner = asyncio.create_task(prune_forever(gw), name="prune")
        refresher = asyncio.create_task(refresh_tree_forever(gw), name="org-tree")
        log.info("gateway ready", extra={"fields": {"services": settings.service_addresses}})
        try:
            yield
        finally:
            for task in (pruner, refresher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gw.clients.close()
            gw.password_checks.close()
            await gw.db.dispose()

    app = FastAPI(
        title="After-sales gateway",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        # console.install serves /docs from local files, not a CDN.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_unstorable_input)],
        default_response_class=FastJSONResponse,
        # RequestMiddleware makes the request's span (when spans are exported); FastAPI's own
        # per-request telemetry would make a second one, and its metrics, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    # The last added is the outermost: the request layer sees (and counts) the 413s too.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMiddleware)
    # Outermost: the client every layer sees is the one a trusted proxy names (here, not in the
    # server's options, so that what the gateway trusts is part of the app and tested with it).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    app.add_middleware(DrainingMiddleware, draining=draining or Draining())
    # Routes are matched in order, one by one: the busiest first. The system routes (the
    # probes, the ping) are fixed paths no other route matches, so going first changes no match.
    for module in (
        system,
        repair_orders,
        auth,
        brands,
        customers,
        notifications,
        bulletins,
        tracking,
        inventory,
        inventory_lists,
        reports,
        exports,
        stock_reports,
        admin,
        base_data,
        settlement,
    ):
        app.include_router(module.router)
    document_answers(app)
    # Last: the console's deep links are what no route above answers.
    console.install(app, Path(settings.console_dist) if settings.console_dist else None)
    return app
