"""How every service process starts, serves and stops.

Start: logs and tracing, database (migrated to head), NATS and the streams, demo data when
asked, the gRPC server with health checking, the outbox relay and the consumers, /metrics.
Stop (SIGTERM or Ctrl-C): report NOT_SERVING, drain in-flight RPCs, let consumers finish the
message in hand, let the relay finish its round, drain NATS, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import uvloop
from google.protobuf.message import Message
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import MetaData, Table

from servicekit import bus, migrations
from servicekit.db import Database
from servicekit.grpc_server import NOT_SERVING, SERVING, new_server
from servicekit.inbox import EventConsumer, Handler
from servicekit.logs import configure_logging
from servicekit.metrics import serve_metrics
from servicekit.outbox import OutboxRelay
from servicekit.settings import Settings
from servicekit.telemetry import configure_tracing, shutdown_tracing
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a running service hands its handlers: settings, database, bus, unit of work."""

    settings: Settings
    db: Database
    metadata: MetaData
    nc: NATS
    js: JetStreamContext
    relay: OutboxRelay

    @property
    def outbox(self) -> Table:
        return self.metadata.tables["outbox"]

    @property
    def inbox(self) -> Table:
        return self.metadata.tables["inbox"]

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.outbox, self.relay.notify)

    def consumer(
        self,
        name: str,
        stream: str,
        subjects: list[str],
        handlers: dict[str, tuple[type[Message], Handler]],
    ) -> EventConsumer:
        return EventConsumer(
            service=self.settings.service,
            name=name,
            stream=stream,
            subjects=subjects,
            handlers=handlers,
            new_uow=self.uow,
            inbox=self.inbox,
        )


@dataclass
class ServiceSpec:
    name: str
    metadata: MetaData
    migrations_dir: Path
    register: Callable[[grpc.aio.Server, Runtime], None]
    consumers: Callable[[Runtime], list[EventConsumer]] = field(default=lambda _runtime: [])
    seed_demo: Callable[[Runtime], Awaitable[None]] | None = None


async def connect_bus(settings: Settings) -> tuple[NATS, JetStreamContext]:
    """Connect to NATS, waiting for it at start (it may come up after us)."""
    delay = 0.2
    for attempt in range(60):
        try:
            nc = await bus.connect(settings.nats_url, settings.service)
            break
        except Exception as error:
            if attempt == 59:
                raise
            log.warning("waiting for NATS at %s: %s", settings.nats_url, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    js = nc.jetstream()
    await bus.ensure_streams(js)
    return nc, js


async def open_runtime(spec: ServiceSpec, settings: Settings) -> Runtime:
    """Database migrated to head, bus connected with its streams, outbox relay ready (not yet
    running). The service process and the integration tests start a service the same way."""
    db = Database(settings.database_url, settings.db_schema)
    await migrations.upgrade(db, spec.migrations_dir)
    nc, js = await connect_bus(settings)
    relay = OutboxRelay(
        spec.name,
        db,
        spec.metadata.tables["outbox"],
        js,
        publish_delay=settings.outbox_publish_delay_seconds,
    )
    runtime = Runtime(settings, db, spec.metadata, nc, js, relay)
    if settings.demo_data and spec.seed_demo is not None:
        await spec.seed_demo(runtime)
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    with contextlib.suppress(Exception):
        await runtime.nc.drain()
    await runtime.db.dispose()


async def serve(spec: ServiceSpec) -> None:
    settings = Settings.from_env(spec.name)
    configure_logging(spec.name, settings.log_level)
    configure_tracing(spec.name, settings.otlp_endpoint)
    runtime = await open_runtime(spec, settings)
    relay, js = runtime.relay, runtime.js

    server, health = new_server(spec.name)
    spec.register(server, runtime)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"{spec.name}: cannot listen on {address}")
    await server.start()
    serve_metrics(settings.metrics_port, settings.grpc_host)

    consumers = spec.consumers(runtime)
    tasks = [asyncio.create_task(relay.run(), name="outbox-relay")]
    tasks += [asyncio.create_task(c.run(js), name=c.name) for c in consumers]
    await health.set("", SERVING)
    log.info(
        "%s serving",
        spec.name,
        extra={"fields": {"grpc": address, "metrics_port": settings.metrics_port}},
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _until_stopped(stop, tasks)

    log.info("%s stopping", spec.name)
    await health.set("", NOT_SERVING)
    await server.stop(settings.shutdown_grace_seconds)
    for consumer in consumers:
        consumer.stop()
    relay.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    await close_runtime(runtime)
    shutdown_tracing()
    log.info("%s stopped", spec.name)


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a stop signal; a background task that dies takes the process down with it, so
    the supervisor restarts it rather than leaving a half-working service."""
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())
            raise SystemExit(1)
    waiter.cancel()


async def migrate_only(spec: ServiceSpec) -> None:
    settings = Settings.from_env(spec.name)
    configure_logging(spec.name, settings.log_level)
    db = Database(settings.database_url, settings.db_schema)
    await migrations.upgrade(db, spec.migrations_dir)
    await db.dispose()
    log.info("%s migrated", spec.name)


def main(spec: ServiceSpec) -> None:
    """`python -m services.<name>` serves; `python -m services.<name> migrate` only migrates."""
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "migrate":
        uvloop.run(migrate_only(spec))
    elif command == "serve":
        uvloop.run(serve(spec))
    else:
        raise SystemExit(f"usage: python -m services.{spec.name} [serve|migrate]")
