"""Our client channels spread calls over every address their target resolves to (round robin),
which is what lets a gateway use all replicas of a service behind a headless Service."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc

from servicekit.auth import AuthContext
from servicekit.grpc_client import call, open_channel
from servicekit.grpc_server import new_server
from servicekit.testing import acting_as, gateway_signer, session_trust


async def test_calls_are_spread_over_every_resolved_address() -> None:
    servers = []
    ports = []
    for name in ("first", "second"):
        server, _health = new_server("test", session_trust())

        async def answer(request: bytes, _: grpc.aio.ServicerContext, name: str = name) -> bytes:
            return name.encode()

        handler = grpc.unary_unary_rpc_method_handler(answer)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("aftersales.test.v1.Who", {"Am": handler})]
        )
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        servers.append(server)
    # One target naming two addresses, as a headless Service's DNS name resolves to its pods.
    channel = open_channel(
        "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports), "test", gateway_signer()
    )
    try:
        with acting_as(AuthContext("u-1", "hq_admin")):
            answers = Counter(
                [
                    await call(channel.unary_unary("/aftersales.test.v1.Who/Am"), b"")
                    for _ in range(20)
                ]
            )
    finally:
        await channel.close()
        for server in servers:
            await server.stop(None)
    # Both take calls (the very first ones may all reach whichever connected first).
    assert set(answers) == {b"first", b"second"}
    assert min(answers.values()) >= 5


async def test_a_connection_past_its_maximum_age_is_replaced_without_failing_a_call() -> None:
    """The server asks the client to go (GOAWAY) once the connection is older than its maximum
    age: the client opens another (resolving the name again: how new pods get their share) and
    no call fails, not even one in flight."""
    server, _health = new_server(
        "test",
        session_trust(),
        max_connection_age_seconds=0.3,
        max_connection_age_grace_seconds=5,
    )
    peers: list[str] = []

    async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        peers.append(context.peer())
        await asyncio.sleep(0.05)
        return request

    handler = grpc.unary_unary_rpc_method_handler(answer)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("aftersales.test.v1.Echo", {"Say": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", "test", gateway_signer())
    say = channel.unary_unary("/aftersales.test.v1.Echo/Say")
    try:
        with acting_as(AuthContext("u-1", "hq_admin")):
            deadline = time.monotonic() + 2
            answers = []
            while time.monotonic() < deadline:
                answers.append(await call(say, b"hello"))
    finally:
        await channel.close()
        await server.stop(None)
    assert set(answers) == {b"hello"}
    # Each connection a new client port: the first one was replaced, again and again.
    assert len(set(peers)) >= 3, set(peers)
