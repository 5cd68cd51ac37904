"""A service's gRPC health says whether it can do its work now, not that it once started: every
few seconds it asks its database for `SELECT 1` (with a short timeout) and looks at its NATS
connection, and reports NOT_SERVING while either does not answer, SERVING again once both do.
Readiness probes and clients (`grpc_client.is_serving`) read the overall status ("").

Liveness is another question: a database that is down is not cured by restarting the pods
that use it, so the `liveness` service of the same health API stays SERVING while the process
runs, and the livenessProbe asks for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from grpc_health.v1 import health, health_pb2

from servicekit.db import Database

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# The health service name the livenessProbe asks for: SERVING while the process runs.
LIVENESS = "liveness"
OVERALL = ""


class Connection(Protocol):
    """What the watch needs of the NATS client."""

    @property
    def is_connected(self) -> bool: ...


class HealthWatch:
    """Keeps the overall health status true to the database and NATS."""

    def __init__(
        self,
        service: str,
        health_servicer: health.aio.HealthServicer,
        db: Database,
        nc: Connection,
        interval_seconds: float = 5.0,
        timeout_seconds: float = 2.0,
    ) -> None:
        self.service = service
        self.health = health_servicer
        self.db = db
        self.nc = nc
        self.interval = interval_seconds
        self.timeout = timeout_seconds
        self.down: list[str] | None = None

    async def what_is_down(self) -> list[str]:
        """What the service needs and does not answer: `database`, `nats`."""
        down = []
        try:
            await asyncio.wait_for(self.db.ping(), self.timeout)
        except Exception:
            down.append("database")
        if not self.nc.is_connected:
            down.append("nats")
        return down

    async def check(self) -> list[str]:
        """Look once and report what is seen; what is down."""
        down = await self.what_is_down()
        if down != self.down:
            await self.health.set(OVERALL, NOT_SERVING if down else SERVING)
            if down:
                log.error("%s not serving: %s does not answer", self.service, " and ".join(down))
            elif self.down is not None:
                log.info("%s serving again", self.service)
            self.down = down
        return down

    async def start(self) -> list[str]:
        """Report the process alive, and what the first look sees."""
        await self.health.set(LIVENESS, SERVING)
        return await self.check()

    async def run(self, stopping: asyncio.Event) -> None:
        """Look every `interval` seconds until `stopping` is set. Setting the overall status
        NOT_SERVING for the shutdown is the caller's (health.enter_graceful_shutdown, after
        which this watch's reports are ignored)."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            if stopping.is_set():
                return
            try:
                await self.check()
            except Exception:
                # Reporting must not die with one bad look: the next one tries again.
                log.exception("health check failed")
