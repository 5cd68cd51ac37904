"""How the gateway stops without failing a request (排空): on SIGTERM it starts draining —
readiness (/readyz) answers 503 and every answer says `Connection: close`, so balancers and
clients move to the other replicas — keeps taking requests for the drain pause, then closes its
port and gives the requests in flight up to the shutdown grace to finish (uvicorn's graceful
shutdown) before the lifespan closes the channels and the database.

In Kubernetes the pod's preStop sleep comes first (the endpoints stop naming the pod while it
still serves everything); the pause is for balancers that watch /readyz instead."""

from __future__ import annotations

import signal
import time
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.render import json_response

READINESS_PATH = "/readyz"


class Draining:
    """Whether the gateway has been told to stop, and since when (monotonic seconds)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def started(self) -> bool:
        return self.since is not None

    def begin(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def seconds(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since


class DrainingMiddleware:
    """While draining: /readyz answers 503, and every other answer closes its connection."""

    def __init__(self, app: ASGIApp, draining: Draining) -> None:
        self.app = app
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.draining.started:
            await self.app(scope, receive, send)
            return
        if scope["path"] == READINESS_PATH:
            answer = json_response(
                {"status": "draining", "down": ["draining"]}, 503, {"connection": "close"}
            )
            await answer(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive, closing)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which on the first SIGTERM drains for `pause_seconds` before its own
    graceful shutdown (limited by the config's timeout_graceful_shutdown). A second signal, or
    Ctrl-C, stops at once."""

    def __init__(self, config: uvicorn.Config, draining: Draining, pause_seconds: float) -> None:
        super().__init__(config)
        self.draining = draining
        self.pause_seconds = pause_seconds
        self._held: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self.draining.started
        self.draining.begin()
        if first and sig == signal.SIGTERM and self.pause_seconds > 0:
            # Acted on after the pause, by on_tick: a signal handler should only set flags.
            self._held = sig
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._held is not None and self.draining.seconds() >= self.pause_seconds:
            held, self._held = self._held, None
            super().handle_exit(held, None)
        return await super().on_tick(counter)
