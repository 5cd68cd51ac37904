"""Mutual TLS on the real processes: with GRPC_TLS_* set, every service serves only TLS with a
client certificate of our CA, the gateway's channels speak it, and intake works end to end;
a plaintext client gets nowhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from devtools.system import LocalSystem, SystemConfig
from servicekit.testing import certificate_authority, issue_certificate, refused_code
from tests.e2e.conftest import Api, repair_order


@pytest.fixture
def tls_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One certificate for every process (server and client usage), in this test's environment
    so that the launcher's readiness checks speak TLS too."""
    files = issue_certificate(
        tmp_path, "process", certificate_authority(tmp_path, "ca"), server=True, client=True
    )
    monkeypatch.setenv("GRPC_TLS_CERT", str(files.cert))
    monkeypatch.setenv("GRPC_TLS_KEY", str(files.key))
    monkeypatch.setenv("GRPC_TLS_CA", str(files.ca))
    yield


@pytest.fixture
async def tls_system(tls_env: None, tmp_path: Path) -> AsyncIterator[LocalSystem]:
    local = LocalSystem(SystemConfig.for_tests(tmp_path / "system"))
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
