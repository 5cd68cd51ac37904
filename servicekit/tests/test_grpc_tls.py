"""Mutual TLS on gRPC with certificates made here (a CA, a server certificate for
127.0.0.1/localhost, client certificates): a client with a certificate from our CA gets
through, a plaintext client or one without a certificate of ours does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from servicekit.auth import AuthContext, current_auth
from servicekit.grpc_client import call, is_serving, open_channel
from servicekit.grpc_server import SERVING, listen, new_server
from servicekit.settings import tls_from_env
from servicekit.testing import (
    acting_as,
    certificate_authority,
    gateway_signer,
    issue_certificate,
    refused_code,
    session_trust,
)
from servicekit.tls import TlsFiles


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsFiles]:
    folder = tmp_path_factory.mktemp("tls")
    ours = certificate_authority(folder, "ca")
    theirs = certificate_authority(folder, "other-ca")
    other_file = folder / "other-ca.pem"
    return {
        "server": issue_certificate(folder, "server", ours, server=True),
        "client": issue_certificate(folder, "client", ours, client=True),
        "stranger": issue_certificate(folder, "stranger", theirs, client=True),
        "other-ca": TlsFiles(cert=folder / "client.pem", key=folder / "client.key", ca=other_file),
    }


async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return current_auth().user_id.encode()


@pytest.fixture
async def address(certs: dict[str, TlsFiles]) -> AsyncIterator[str]:
    server, health = new_server("test", session_trust())
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "aftersales.test.v1.Test", {"Who": grpc.unary_unary_rpc_method_handler(who)}
            )
        ]
    )
    port = listen(server, "127.0.0.1:0", certs["server"])
    assert port
    await server.start()
    await health.set("", SERVING)
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_a_client_with_our_certificate_gets_through(
    address: str, certs: dict[str, TlsFiles]
) -> None:
    channel = open_channel(address, "test", gateway_signer(), certs["client"])
    try:
        with acting_as(AuthContext("u-clerk", "clerk", "SH", "SH-001")):
            assert (
                await call(channel.unary_unary("/aftersales.test.v1.Test/Who"), b"") == b"u-clerk"
            )
        assert await is_serving(channel)
    finally:
        await channel.close()


async def test_a_plaintext_client_is_refused(address: str) -> None:
    channel = grpc.aio.insecure_channel(address)
    try:
        assert await refused_code(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()


@pytest.mark.parametrize("client", ["stranger", "other-ca"])
async def test_a_certificate_not_of_our_ca_on_either_side_is_refused(
    address: str, certs: dict[str, TlsFiles], client: str
) -> None:
    """A client certificate from another CA, or a client that trusts another CA than the
    server's: no connection."""
    channel = open_channel(address, tls=certs[client])
    try:
        assert not await is_serving(channel, deadline=5)
    finally:
        await channel.close()


async def test_a_client_without_a_certificate_is_refused(
    address: str, certs: dict[str, TlsFiles]
) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["client"].ca.read_bytes())
    channel = grpc.aio.secure_channel(address, credentials)
    try:
        assert await refused_code(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()


def test_tls_settings_go_together(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    assert tls_from_env() is None, "off when unset"
    monkeypatch.setenv("GRPC_TLS_CERT", str(tmp_path / "cert.pem"))
    with pytest.raises(SystemExit, match="set all three or none"):
        tls_from_env()
    monkeypatch.setenv("GRPC_TLS_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("GRPC_TLS_CA", str(tmp_path / "ca.pem"))
    assert tls_from_env() == TlsFiles(
        tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    )
