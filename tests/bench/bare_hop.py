"""The bare hop `make bench` measures the gateway against: a minimal FastAPI app answering
`GET /api/v1/ping` by one call to a grpc.aio echo server, each its own process, served as the
gateway is (uvicorn on uvloop with httptools) and with none of the platform's work (no auth,
no middleware, no caller tokens, no telemetry). What is left is the cost of the frameworks.

    python -m tests.bench.bare_hop echo <grpc port>
    python -m tests.bench.bare_hop http <http port> <grpc port>
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import httpx
import psutil
import uvicorn
import uvloop
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from servicekit.testing import free_port

ECHO_METHOD = "/bench.Echo/Echo"
PING_PATH = "/api/v1/ping"


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def serve_echo(port: int) -> None:
    server = grpc.aio.server()
    # No serializers: the messages stay bytes, the servicer is the echo alone.
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def create_app(grpc_port: int) -> FastAPI:
    channel: grpc.aio.Channel | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal channel
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
        yield
        await channel.close()

    app = FastAPI(lifespan=lifespan)

    @app.get(PING_PATH)
    async def ping() -> JSONResponse:
        assert channel is not None
        await channel.unary_unary(ECHO_METHOD)(b"ping")
        return JSONResponse({"ok": True})

    return app


def serve_http(port: int, grpc_port: int) -> None:
    # The gateway's uvicorn settings (services/gateway/__main__.py), so only the work differs.
    uvicorn.run(
        create_app(grpc_port),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        proxy_headers=False,
        access_log=False,
        log_config=None,
        timeout_keep_alive=75,
    )


class BareHop:
    """The two processes on free ports, started by the bench beside the system."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.http_port, self.echo_port = free_port(), free_port()
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self, timeout: float = 30.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("bare echo", "echo", str(self.echo_port))
        self._spawn("bare http", "http", str(self.http_port), str(self.echo_port))
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(PING_PATH)).status_code == 200:
                        return
                for name, process in self.started.items():
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited; see {self.log_dir}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the bare hop did not answer; see {self.log_dir}")
                await asyncio.sleep(0.1)

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.log_dir / f"{name.replace(' ', '-')}.log").open("ab")
        self.started[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bare_hop", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def processes(self) -> dict[str, psutil.Process]:
        return {name: psutil.Process(process.pid) for name, process in self.started.items()}

    def stop(self) -> None:
        for process in self.started.values():
            process.terminate()
        for process in self.started.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main(argv: list[str]) -> None:
    match argv:
        case ["echo", port]:
            uvloop.run(serve_echo(int(port)))
        case ["http", port, grpc_port]:
            serve_http(int(port), int(grpc_port))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
