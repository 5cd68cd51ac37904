"""A stand-in SMS gateway for tests: a tiny HTTP server on a free local port answering each
request with the next scripted status (the last one repeats), recording what it was sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SmsGateway:
    """A tiny HTTP server answering each request with the next scripted status (the last one
    repeats), recording what it was sent."""

    statuses: list[int]
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append(json.loads(body))
        self.headers.append(headers)
        status = self.statuses[min(len(self.received), len(self.statuses)) - 1]
        answer = b'{"ok": true}' if status < 300 else b'{"error": "gateway busy"}'
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def sms_gateway(statuses: list[int]) -> AsyncIterator[tuple[SmsGateway, str]]:
    gateway = SmsGateway(statuses)
    server = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield gateway, f"http://127.0.0.1:{port}/sms"
    finally:
        server.close()
        await server.wait_closed()
