"""`python -m services.gateway` migrates and serves; `python -m services.gateway migrate` only
migrates."""

from __future__ import annotations

import logging
import sys

import uvicorn
import uvloop

from servicekit import migrations
from servicekit.db import Database
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_tracing, shutdown_tracing
from services.gateway.app import MIGRATIONS_DIR, create_app
from services.gateway.draining import Draining, DrainingServer
from services.gateway.settings import GatewaySettings

log = logging.getLogger("services.gateway")


async def migrate(settings: GatewaySettings) -> None:
    db = Database(settings.database_url, settings.db_schema)
    try:
        await migrations.upgrade(db, MIGRATIONS_DIR)
    finally:
        await db.dispose()
    log.info("gateway migrated")


def serve(settings: GatewaySettings) -> None:
    configure_tracing("gateway", settings.otlp_endpoint, settings.trace_sample_ratio)
    draining = Draining()
    try:
        # The lifespan migrates before the port takes requests.
        config = uvicorn.Config(
            create_app(settings, draining),
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",  # the C parser; h11 costs noticeably more per request
            lifespan="on",
            # The app itself takes the client from trusted proxies (create_app); twice would
            # peel one hop too many.
            proxy_headers=False,
            access_log=False,
            log_config=None,  # keep our JSON logs; uvicorn's own config would replace them
            # On SIGTERM, after the drain pause: the requests in flight get this long.
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
            # Longer than any client's or proxy's idle keep-alive (nginx upstreams keep 60 s):
            # whoever closes an idle connection must be the side that would send on it next,
            # or a request sent as the gateway hangs up is lost to a reset.
            timeout_keep_alive=75,
        )
        DrainingServer(config, draining, settings.drain_pause_seconds).run()
    finally:
        shutdown_tracing()


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    settings = GatewaySettings.from_env()
    configure_logging("gateway", settings.log_level)
    if command == "migrate":
        uvloop.run(migrate(settings))
    elif command == "serve":
        serve(settings)
    else:
        raise SystemExit("usage: python -m services.gateway [serve|migrate]")


if __name__ == "__main__":
    main()
