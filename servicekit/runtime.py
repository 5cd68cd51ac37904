"""How every service process starts, serves and stops.

Start: logs and tracing, database (migrated to head), NATS and the streams, demo data when
asked, the gRPC server with health checking, the outbox relay, the consumers and the inbox
pruning, /metrics.
Stop (SIGTERM or Ctrl-C): report NOT_SERVING, drain in-flight RPCs, let consumers finish the
message in hand, let the relay finish its round, drain NATS, close the database.

Operator commands (same environment as the service): `migrate`, `dead-letters list|show
<seq>|replay <seq>|--all`, `outbox parked|unpark <seq>|--all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import grpc
import uvloop
from google.protobuf import descriptor_pool, message_factory, text_format
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import MetaData, Table

from servicekit import bus, bus_permissions, dead_letters, idempotency, inbox, migrations, outbox
from servicekit.auth import reset_auth, service_identity, set_auth
from servicekit.db import Database
from servicekit.grpc_server import NOT_SERVING, SERVING, listen, new_server
from servicekit.inbox import EventConsumer, Former, Handlers
from servicekit.logs import configure_logging
from servicekit.metrics import serve_metrics
from servicekit.outbox import EVENT_TYPE_HEADER, OutboxRelay
from servicekit.settings import Settings
from servicekit.telemetry import configure_tracing, shutdown_tracing
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)

INBOX_PRUNE_INTERVAL = timedelta(hours=1)


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

    @property
    def handled_requests(self) -> Table | None:
        """The handled-requests log, in services that dedupe keyed requests by it."""
        return self.metadata.tables.get("handled_requests")

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.outbox, self.relay.notify, self.handled_requests)

    def consumer(
        self,
        name: str,
        stream: str,
        subjects: list[str],
        handlers: Handlers,
        formers: list[Former] | None = None,
        finish_batch: Callable[[UnitOfWork], Awaitable[None]] | None = None,
    ) -> EventConsumer:
        """`formers`: the durables this one takes over; `finish_batch`: runs after a batch's
        handlers in its unit of work (servicekit.inbox)."""
        return EventConsumer(
            service=self.settings.service,
            name=name,
            stream=stream,
            subjects=subjects,
            handlers=handlers,
            new_uow=self.uow,
            inbox=self.inbox,
            js=self.js,
            formers=formers or [],
            finish_batch=finish_batch,
        )


class BackgroundWork(Protocol):
    """Work a service does on its own besides consuming events (a sender, a scheduler): it runs
    in every replica until `stopping` is set, so it must share its rows with the others."""

    name: str

    async def run(self, stopping: asyncio.Event) -> None: ...


@dataclass
class ServiceSpec:
    name: str
    metadata: MetaData
    migrations_dir: Path
    register: Callable[[grpc.aio.Server, Runtime], None]
    consumers: Callable[[Runtime], list[EventConsumer]] = field(default=lambda _runtime: [])
    background: Callable[[Runtime], list[BackgroundWork]] = field(default=lambda _runtime: [])
    seed_demo: Callable[[Runtime], Awaitable[None]] | None = None
    # Operator commands of this service alone: `python -m services.<name> <command> [args]`
    # runs the coroutine with the arguments and exits with the code it returns.
    commands: dict[str, Callable[[list[str]], Coroutine[Any, Any, int]]] = field(
        default_factory=dict
    )


async def connect_bus(settings: Settings) -> tuple[NATS, JetStreamContext]:
    """Connect to NATS, waiting for it at start (it may come up after us)."""
    delay = 0.2
    for attempt in range(60):
        try:
            nc = await bus.connect(settings.nats_url, settings.service, settings.nats_auth)
            break
        except Exception as error:
            if attempt == 59:
                raise
            log.warning("waiting for NATS at %s: %s", settings.nats_url, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    js = nc.jetstream()
    # The streams this service publishes to, and those it reads (made if missing).
    bus_user = bus_permissions.user(settings.service)
    await bus.ensure_streams(
        js, settings.stream_replicas, bus_user.streams_made(), bus_user.streams_read()
    )
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
        token = set_auth(service_identity(spec.name))
        try:
            await spec.seed_demo(runtime)
        finally:
            reset_auth(token)
    return runtime


async def close_runtime(runtime: Runtime) -> None:
    with contextlib.suppress(Exception):
        await runtime.nc.drain()
    await runtime.db.dispose()


async def serve(spec: ServiceSpec) -> None:
    settings = Settings.from_env(spec.name)
    configure_logging(spec.name, settings.log_level)
    configure_tracing(spec.name, settings.otlp_endpoint, settings.trace_sample_ratio)
    runtime = await open_runtime(spec, settings)
    relay, js = runtime.relay, runtime.js

    server, health = new_server(spec.name)
    spec.register(server, runtime)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if listen(server, address, settings.trust.tls) == 0:
        raise SystemExit(f"{spec.name}: cannot listen on {address}")
    await server.start()
    serve_metrics(settings.metrics_port, settings.grpc_host)

    consumers = spec.consumers(runtime)
    housekeeping_done = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(), name="outbox-relay")]
    tasks += [asyncio.create_task(c.run(js), name=c.name) for c in consumers]
    tasks.append(asyncio.create_task(prune_inbox(runtime, housekeeping_done), name="inbox-prune"))
    tasks += [
        asyncio.create_task(work.run(housekeeping_done), name=work.name)
        for work in spec.background(runtime)
    ]
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
    housekeeping_done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    await close_runtime(runtime)
    shutdown_tracing()
    log.info("%s stopped", spec.name)


async def prune_inbox(runtime: Runtime, done: asyncio.Event) -> None:
    """Every hour, forget event ids handled longer ago than anything can bring them back (the
    longer of the stream's and the dead letters' retention, plus a week: inbox.INBOX_KEPT);
    and requests handled longer ago than a key is honoured. A failed round waits for the next
    one."""
    while not done.is_set():
        try:
            removed = await inbox.prune(runtime.db, runtime.inbox, utc_now() - inbox.INBOX_KEPT)
            if removed:
                log.info("inbox pruned", extra={"fields": {"removed": removed}})
            if runtime.handled_requests is not None:
                async with runtime.db.session() as session:
                    forgotten = await idempotency.prune(
                        session, runtime.handled_requests, utc_now() - idempotency.KEY_LIFETIME
                    )
                    await session.commit()
                if forgotten:
                    log.info("handled requests pruned", extra={"fields": {"removed": forgotten}})
        except Exception:
            log.exception("pruning the inbox failed; trying again next round")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), INBOX_PRUNE_INTERVAL.total_seconds())


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


USAGE = """usage: python -m services.{name} [command]
  serve                          run the service (the default)
  migrate                        bring the database to the newest schema, then exit
  dead-letters list              the messages this service's consumers gave up on
  dead-letters show <seq>        one of them: why, where from, headers and payload
  dead-letters replay <seq>|--all
                                 deliver again to the consumer that gave up (after a fix)
  outbox parked                  events the broker refused again and again
  outbox unpark <seq>|--all      put them back in line for the relay"""


def _describe_payload(event_type: str, payload: bytes) -> str:
    """The payload as protobuf text when it decodes as its event type, else its bytes."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(event_type)
        message = message_factory.GetMessageClass(descriptor).FromString(payload)
        return text_format.MessageToString(message, as_utf8=True)
    except Exception:
        return repr(payload[:1000])


async def dead_letters_command(spec: ServiceSpec, args: list[str]) -> int:
    settings = Settings.from_env(spec.name)
    try:
        nc = await bus.connect_once(
            settings.nats_url, f"{spec.name}-dead-letters", settings.nats_auth
        )
    except ConnectionError as error:
        print(error, file=sys.stderr)
        return 1
    js = nc.jetstream()
    try:
        if args == ["list"]:
            async for letter in dead_letters.letters(js, spec.name):
                print(
                    f"{letter.seq}\t{letter.at.isoformat() if letter.at else '-'}"
                    f"\t{letter.consumer}\t{letter.kind}\t{letter.subject}"
                    f"\t{letter.event_id or '-'}\t{letter.reason}"
                )
            return 0
        if len(args) == 2 and args[0] == "show" and args[1].isdigit():
            letter = await dead_letters.letter(js, spec.name, int(args[1]))
            print(f"dead letter {letter.seq} of {letter.consumer}: {letter.kind}")
            print(f"reason: {letter.reason}")
            print(f"from: {letter.stream} #{letter.stream_sequence} {letter.subject}")
            print(f"at: {letter.at.isoformat() if letter.at else '-'}")
            for key, value in letter.original_headers.items():
                print(f"header {key}: {value}")
            event_type = letter.original_headers.get(EVENT_TYPE_HEADER, "")
            print(_describe_payload(event_type, letter.payload))
            return 0
        if len(args) == 2 and args[0] == "replay":
            if args[1] == "--all":
                chosen = [letter async for letter in dead_letters.letters(js, spec.name)]
            elif args[1].isdigit():
                chosen = [await dead_letters.letter(js, spec.name, int(args[1]))]
            else:
                raise SystemExit(USAGE.format(name=spec.name))
            for letter in chosen:
                await dead_letters.replay(js, letter)
                print(f"replayed {letter.seq} to {letter.consumer} on {letter.subject}")
            return 0
        raise SystemExit(USAGE.format(name=spec.name))
    except LookupError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        await nc.close()


async def outbox_command(spec: ServiceSpec, args: list[str]) -> int:
    settings = Settings.from_env(spec.name)
    db = Database(settings.database_url, settings.db_schema)
    table = spec.metadata.tables["outbox"]
    try:
        if args == ["parked"]:
            for event in await outbox.parked_events(db, table):
                print(
                    f"{event.seq}\t{event.parked_at.isoformat()}\t{event.subject}"
                    f"\t{event.event_id}\t{event.attempts} tries\t{event.last_error}"
                )
            return 0
        if len(args) == 2 and args[0] == "unpark" and (args[1] == "--all" or args[1].isdigit()):
            count = await outbox.unpark(db, table, None if args[1] == "--all" else int(args[1]))
            print(f"unparked {count}")
            return 0 if count else 1
        raise SystemExit(USAGE.format(name=spec.name))
    finally:
        await db.dispose()


def main(spec: ServiceSpec) -> None:
    """`python -m services.<name>` serves; other commands are in USAGE."""
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("serve", [])
    if command == "migrate":
        uvloop.run(migrate_only(spec))
    elif command == "serve":
        uvloop.run(serve(spec))
    elif command == "dead-letters":
        raise SystemExit(uvloop.run(dead_letters_command(spec, args)))
    elif command == "outbox":
        raise SystemExit(uvloop.run(outbox_command(spec, args)))
    elif command in spec.commands:
        raise SystemExit(uvloop.run(spec.commands[command](args)))
    else:
        own = "".join(f"\n  {name}" for name in sorted(spec.commands))
        raise SystemExit(USAGE.format(name=spec.name) + own)
