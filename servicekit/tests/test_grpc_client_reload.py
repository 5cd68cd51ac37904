"""A client's certificate renewed under a running channel: the channel's calls use it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from servicekit.auth import AuthContext, current_auth
from servicekit.grpc_client import call, open_channel
from servicekit.grpc_server import SERVING, listen, new_server
from servicekit.settings import TrustSettings
from servicekit.testing import acting_as, certificate_authority, gateway_signer, session_keys
from servicekit.tls import issue_process_certificate


async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return current_auth().user_id.encode()


async def test_a_renewed_client_certificate_is_used_by_the_open_channel(tmp_path: Path) -> None:
    ca = certificate_authority(tmp_path, "ca")
    other = certificate_authority(tmp_path, "other")
    server_files = issue_process_certificate(tmp_path, "inventory", ca.name, ca.key, ca.file)
    server, health = new_server("inventory", TrustSettings(session_keys(), server_files))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "aftersales.inventory.v1.Test", {"Who": grpc.unary_unary_rpc_method_handler(who)}
            )
        ]
    )
    port = listen(server, "127.0.0.1:0", server_files)
    await server.start()
    await health.set("", SERVING)
    folder = tmp_path / "client"
    folder.mkdir()
    # The gateway's certificate of a CA the server does not trust (as if about to be renewed).
    wrong = issue_process_certificate(folder, "gateway", other.name, other.key, ca.file)
    channel = open_channel(f"127.0.0.1:{port}", "inventory", gateway_signer(), wrong)
    method = channel.unary_unary("/aftersales.inventory.v1.Test/Who")
    try:
        with acting_as(AuthContext("u-clerk", "clerk", "SH", "SH-001")):
            try:
                await call(method, b"")
                raise AssertionError("got through with a certificate of another CA")
            except Exception as error:
                assert "unavailable" in str(error).lower() or "Unavailable" in type(error).__name__
            renewed = tmp_path / "renewed"
            renewed.mkdir()
            good = issue_process_certificate(renewed, "gateway", ca.name, ca.key, ca.file)
            wrong.cert.write_bytes(good.cert.read_bytes())
            wrong.key.write_bytes(good.key.read_bytes())
            await asyncio.sleep(1.1)
            assert await call(method, b"") == b"u-clerk"
    finally:
        await channel.close()
        await server.stop(None)
