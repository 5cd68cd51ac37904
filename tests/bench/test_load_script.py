"""The benchmark's load: what wrk sends with load.lua is what the gateway accepts (valid IMEIs and
phones, a key and an IMEI of its own per request, the token), and what it reports is read back
right. Against a stub HTTP server, so it needs only wrk (skipped without it)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from servicekit.identifiers import imei_problem, mobile_problem
from servicekit.testing import free_port
from tests.bench import run_bench

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")


class Stub(ThreadingHTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Recorder)
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """wrk drops its connections when its time is up: nothing to report."""


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway
    server: Stub

    def handle_request(self, status: int) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.seen.append((self.command, self.path, dict(self.headers), body))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self.handle_request(200)

    def do_POST(self) -> None:
        self.handle_request(201)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: Stub) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def test_create_requests_are_valid_and_unique(stub: Stub) -> None:
    sample = await run_bench.drive(url(stub), "create", "the-token", 1)
    assert sample.errors == 0
    assert sum(sample.histogram.values()) > 0
    # wrk counts the responses it read; the stub may have seen a last few more.
    assert sum(sample.histogram.values()) <= len(stub.seen)
    keys, imeis = set(), set()
    for method, path, headers, body in stub.seen:
        assert (method, path) == ("POST", "/api/v1/repair-orders")
        assert headers["Authorization"] == "Bearer the-token"
        assert headers["Content-Type"] == "application/json"
        order = json.loads(body)
        assert imei_problem(order["device"]["imei"]) is None
        assert mobile_problem(order["customer"]["phone"]) is None
        keys.add(headers["Idempotency-Key"])
        imeis.add(order["device"]["imei"])
    assert len(keys) == len(imeis) == len(stub.seen)


async def test_ping_requests(stub: Stub) -> None:
    sample = await run_bench.drive(url(stub), "ping", "the-token", 1)
    assert sample.errors == 0
    assert sample.cpu_seconds >= 0
    assert {(method, path) for method, path, _, _ in stub.seen} == {("GET", "/api/v1/ping")}
    assert {headers["Authorization"] for _, _, headers, _ in stub.seen} == {"Bearer the-token"}


def test_read_sample_and_percentiles(tmp_path: Path) -> None:
    out = tmp_path / "wrk.txt"
    # duration 2 s, 1 status error, 0 socket errors; then µs → count.
    out.write_text("2000000 1 0\n1000 50\n2000 45\n9000 5\n")
    sample = run_bench.read_sample(out, 0.25)
    assert sample.seconds == 2.0
    assert sample.errors == 1
    assert sample.histogram == {1000: 50, 2000: 45, 9000: 5}
    assert run_bench.percentile(sample.histogram, 0.50) == 2.0
    assert run_bench.percentile(sample.histogram, 0.95) == 9.0
    found = run_bench.figures("x", [sample, sample])
    assert (found.requests, found.errors, found.seconds) == (198, 2, 4.0)
