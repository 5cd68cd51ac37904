"""Mutual TLS on gRPC with certificates made here (a CA, a server certificate for
127.0.0.1/localhost, client certificates): a client with a certificate from our CA gets
through, a plaintext client or one without a certificate of ours does not. A server checks the
process the caller's certificate names against the token it brings, and serves a renewed
certificate without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from prometheus_client import REGISTRY

from servicekit.auth import AuthContext, current_auth, service_identity
from servicekit.caller_token import CALLS_ON, METADATA_KEY, load_signer
from servicekit.grpc_client import call, is_serving, open_channel
from servicekit.grpc_server import SERVING, listen, new_server
from servicekit.settings import TrustSettings, tls_from_env
from servicekit.testing import (
    CertificateAuthority,
    acting_as,
    certificate_authority,
    gateway_signer,
    issue_certificate,
    refused_code,
    session_keys,
    session_trust,
)
from servicekit.tls import (
    NOBODY,
    TlsFiles,
    certificate_process,
    identity_uri,
    issue_process_certificate,
    peer_process,
    service_dns_names,
)


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


# --- the peer's name against the caller it claims; certificates re-read -----------------------


def process_certificate(folder: Path, process: str, ca: CertificateAuthority) -> TlsFiles:
    return issue_process_certificate(folder, process, ca.name, ca.key, ca.file)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return certificate_authority(tmp_path_factory.mktemp("processes"), "ca")


@pytest.fixture
async def inventory(
    ca: CertificateAuthority, tmp_path: Path
) -> AsyncIterator[tuple[str, TlsFiles]]:
    """An inventory server on mutual TLS, checking the caller's certificate; its files are
    the test's to replace."""
    files = process_certificate(tmp_path, "inventory", ca)
    server, health = new_server("inventory", TrustSettings(session_keys(), files))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "aftersales.inventory.v1.Test", {"Who": grpc.unary_unary_rpc_method_handler(who)}
            )
        ]
    )
    port = listen(server, "127.0.0.1:0", files)
    assert port
    await server.start()
    await health.set("", SERVING)
    yield f"127.0.0.1:{port}", files
    await server.stop(None)


async def who_as(address: str, files: TlsFiles, token: str) -> str:
    """The caller inventory sees on a call with `token` over a connection made with `files`;
    the status code's name when it refuses."""
    channel = grpc.aio.secure_channel(address, files.channel_credentials())
    try:
        answer = await channel.unary_unary("/aftersales.inventory.v1.Test/Who")(
            b"", metadata=((METADATA_KEY, token),), timeout=5
        )
        return bytes(answer).decode()
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    finally:
        await channel.close()


CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")


async def test_the_callers_certificate_must_name_a_process_that_may_bring_the_token(
    inventory: tuple[str, TlsFiles], ca: CertificateAuthority, tmp_path: Path
) -> None:
    address, _ = inventory
    folder = tmp_path / "clients"
    folder.mkdir()
    cert = {name: process_certificate(folder, name, ca) for name in ("gateway", *CALLS_ON)}
    gateway = gateway_signer()
    orders = load_signer(session_keys(), "orders")
    for_inventory = gateway.token_for(CLERK, "inventory")
    for_orders = gateway.token_for(CLERK, "orders")
    of_orders = orders.token_for(service_identity("orders"), "inventory")

    assert await who_as(address, cert["gateway"], for_inventory) == "u-clerk"
    # Orders passes on the token it was called with, and signs for its own work.
    assert await who_as(address, cert["orders"], for_orders) == "u-clerk"
    assert await who_as(address, cert["orders"], of_orders) == "service:orders"
    # A process bringing a token it did not sign and may not pass on is refused.
    assert await who_as(address, cert["reporting"], for_inventory) == "UNAUTHENTICATED"
    assert await who_as(address, cert["reporting"], for_orders) == "UNAUTHENTICATED"
    assert await who_as(address, cert["customers"], of_orders) == "UNAUTHENTICATED"
    assert await who_as(address, cert["gateway"], of_orders) == "UNAUTHENTICATED"
    # A certificate of our CA that names no process of ours brings nothing.
    nameless = issue_certificate(folder, "nameless", ca, client=True)
    assert await who_as(address, nameless, for_inventory) == "UNAUTHENTICATED"


async def test_a_renewed_certificate_is_served_without_a_restart(
    inventory: tuple[str, TlsFiles], tmp_path: Path
) -> None:
    """The server's files replaced by a certificate of a new CA (as cert-manager writes a
    renewed one): the next connection gets it, and its expiry is published."""
    address, files = inventory
    expiry = "aftersales_certificate_expiry_timestamp_seconds"
    before = REGISTRY.get_sample_value(expiry, {"service": "inventory", "certificate": "grpc"})
    folder = tmp_path / "renewed"
    folder.mkdir()
    new_ca = certificate_authority(folder, "new-ca")
    client = process_certificate(folder, "gateway", new_ca)
    token = gateway_signer().token_for(CLERK, "inventory")
    assert await who_as(address, client, token) == "UNAVAILABLE", "the old CA's still"

    renewed = issue_process_certificate(
        folder, "inventory", new_ca.name, new_ca.key, new_ca.file, timedelta(days=2)
    )
    for old, new in ((files.key, renewed.key), (files.cert, renewed.cert), (files.ca, new_ca.file)):
        old.write_bytes(new.read_bytes())
    assert await who_as(address, client, token) == "u-clerk"
    after = REGISTRY.get_sample_value(expiry, {"service": "inventory", "certificate": "grpc"})
    assert before is not None and after is not None
    assert after - before > 23 * 3600


def test_a_certificate_names_the_process_it_belongs_to(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = process_certificate(tmp_path, "orders", ca)
    certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert certificate_process(certificate) == "orders"
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [identity_uri("orders")]
    assert set(service_dns_names("orders")) <= set(names.get_values_for_type(x509.DNSName))
    assert peer_process({"transport_security_type": [b"ssl"]}) == NOBODY
    assert peer_process({}) is None
