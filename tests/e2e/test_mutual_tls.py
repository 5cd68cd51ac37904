"""Mutual TLS on the real processes: with GRPC_TLS_* set, every process has a certificate of
its own naming it (as cert-manager issues them in prod), every service serves only TLS with a
client certificate of our CA, the gateway's channels speak it, and intake works end to end
(orders calling inventory with the caller's token, under its own name). A plaintext client gets
nowhere, and a process of ours bringing a token it may not bring is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from devtools.system import SERVICES, LocalSystem, SystemConfig
from servicekit.auth import AuthContext
from servicekit.caller_token import GATEWAY, METADATA_KEY, load_signer
from servicekit.testing import CertificateAuthority, certificate_authority, refused_code
from servicekit.tls import TlsFiles, issue_process_certificate
from tests.e2e.conftest import Api, repair_order


def tls_env(files: TlsFiles) -> dict[str, str]:
    return {
        "GRPC_TLS_CERT": str(files.cert),
        "GRPC_TLS_KEY": str(files.key),
        "GRPC_TLS_CA": str(files.ca),
    }


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return certificate_authority(tmp_path, "ca")


def certificate(ca: CertificateAuthority, folder: Path, process: str) -> TlsFiles:
    return issue_process_certificate(folder, process, ca.name, ca.key, ca.file)


@pytest.fixture
async def tls_system(
    ca: CertificateAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LocalSystem]:
    """Each process with its own certificate; the launcher's readiness checks with one of
    their own (health checks need no token)."""
    for name, value in tls_env(certificate(ca, tmp_path, "launcher")).items():
        monkeypatch.setenv(name, value)
    own = {name: tls_env(certificate(ca, tmp_path, name)) for name in (GATEWAY, *SERVICES)}
    local = LocalSystem(SystemConfig.for_tests(tmp_path / "system", service_env=own))
    try:
        await local.start()
        yield local
    finally:
        local.stop()
        await local.drop_schemas()


async def test_the_system_runs_on_mutual_tls_and_refuses_plaintext(
    tls_system: LocalSystem,
) -> None:
    async with httpx.AsyncClient(base_url=tls_system.gateway_url, timeout=10) as client:
        api = Api(client)
        created = await api.post("sh001.clerk", "/api/v1/repair-orders", repair_order())
        assert created.status_code == 201, created.text
        status = await api.services_state()
        assert set(status.values()) == {"serving"}

    for port in tls_system.config.grpc_ports.values():
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            assert await refused_code(channel) == grpc.StatusCode.UNAVAILABLE
        finally:
            await channel.close()


async def test_a_process_bringing_a_token_it_may_not_bring_is_refused(
    tls_system: LocalSystem, ca: CertificateAuthority, tmp_path: Path
) -> None:
    """The gateway's token, brought by a process whose certificate says it is reporting:
    refused. The same token over the gateway's own certificate gets through."""
    token = load_signer(tls_system.keys_dir, GATEWAY).token_for(
        AuthContext("u-hq-admin", "hq_admin"), "orders"
    )
    address = f"127.0.0.1:{tls_system.config.grpc_ports['orders']}"

    async def answer(process: str) -> grpc.StatusCode:
        files = certificate(ca, tmp_path, process)
        async with grpc.aio.secure_channel(address, files.channel_credentials()) as channel:
            try:
                await orders_pb2_grpc.OrdersServiceStub(channel).ListRepairOrders(
                    orders_pb2.ListRepairOrdersRequest(),
                    metadata=((METADATA_KEY, token),),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    assert await answer("reporting") == grpc.StatusCode.UNAUTHENTICATED
    assert await answer(GATEWAY) == grpc.StatusCode.OK
