"""A service's gRPC health follows its database and its NATS connection (servicekit.health):
read through the health RPC a probe or a client uses, it turns NOT_SERVING when either stops
answering and SERVING again when both answer; the liveness service stays SERVING meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from servicekit import bus
from servicekit.db import Database
from servicekit.grpc_client import is_serving, open_channel
from servicekit.grpc_server import new_server
from servicekit.health import LIVENESS, SERVING, HealthWatch
from servicekit.testing import DatabaseTarget, NatsServer, eventually, free_port, session_trust


@dataclass
class Connection:
    is_connected: bool = True


class SlowDatabase(Database):
    """A database whose answer to SELECT 1 takes longer than the watch waits."""

    async def ping(self) -> None:
        await asyncio.sleep(10)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    database = Database(db_target.url, db_target.schema)
    await database.prepare()
    yield database
    await database.dispose()


@contextlib.asynccontextmanager
async def health_api() -> AsyncIterator[tuple[health.aio.HealthServicer, grpc.aio.Channel]]:
    """A gRPC server with its health service, and a channel to it."""
    grpc_server, servicer = new_server("test", session_trust())
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, channel
    finally:
        await channel.close()
        await grpc_server.stop(None)


async def liveness(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=LIVENESS), timeout=1
    )
    return int(reply.status)


async def test_the_health_rpc_follows_the_database_and_a_nats_server_that_stops(
    db: Database, tmp_path: Path
) -> None:
    nats_server = NatsServer(tmp_path / "nats").start()
    nc = await bus.connect(nats_server.url, "test", nats_server.auth())
    stopping = asyncio.Event()
    try:
        async with health_api() as (servicer, channel):
            watch = HealthWatch("test", servicer, db, nc, interval_seconds=0.1, timeout_seconds=1)
            assert await watch.start() == []
            watching = asyncio.create_task(watch.run(stopping))
            assert await is_serving(channel)
            assert await liveness(channel) == SERVING

            nats_server.stop()

            async def not_serving() -> bool:
                return not await is_serving(channel)

            await eventually(not_serving)
            assert watch.down == ["nats"]
            assert await liveness(channel) == SERVING

            nats_server.start()  # same port and store: the client reconnects

            async def serving() -> bool:
                return await is_serving(channel)

            await eventually(serving)
            assert watch.down == []
            stopping.set()
            await watching
    finally:
        await nc.close()
        nats_server.stop()


async def test_a_database_that_does_not_answer_makes_it_not_serving(db: Database) -> None:
    """Down (nothing listens where it should be), or too slow to answer SELECT 1 within the
    watch's timeout: NOT_SERVING either way; SERVING when it answers again."""
    refused = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    slow = SlowDatabase(db.url, db.schema)
    connection = Connection()
    try:
        async with health_api() as (servicer, channel):
            watch = HealthWatch("test", servicer, refused, connection, timeout_seconds=0.5)
            assert await watch.start() == ["database"]
            assert not await is_serving(channel)
            assert await liveness(channel) == SERVING

            watch.db = db
            assert await watch.check() == []
            assert await is_serving(channel)

            watch.db = slow
            started = time.monotonic()
            assert await watch.check() == ["database"]
            assert time.monotonic() - started < 5, "the watch waits no longer than its timeout"
            assert not await is_serving(channel)

            watch.db = db
            connection.is_connected = False
            assert await watch.check() == ["nats"]
            watch.db = refused
            assert await watch.check() == ["database", "nats"]
            assert not await is_serving(channel)
    finally:
        await refused.dispose()
        await slow.dispose()


async def test_shutting_down_stays_not_serving_whatever_the_watch_sees(db: Database) -> None:
    async with health_api() as (servicer, channel):
        watch = HealthWatch("test", servicer, db, Connection())
        await watch.start()
        assert await is_serving(channel)
        await servicer.enter_graceful_shutdown()
        watch.down = None  # as though it had seen a change: it reports again
        assert await watch.check() == []
        assert not await is_serving(channel)
