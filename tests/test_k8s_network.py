"""The prod network policies, read as Kubernetes reads them: a small evaluator decides, for a
connection from one pod to another's port, whether the source's egress and the target's
ingress policies both let it through. The matrix it gives is checked against the code:
who calls whom on gRPC (servicekit.caller_token.CALLS_ON, the gateway calling every service),
who holds a NATS credential (servicekit.bus_permissions), each process's own database.
Nothing else gets through: default deny, both ways."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from servicekit.bus_permissions import SERVICES as BUS_USERS
from servicekit.caller_token import CALLS_ON
from tests.test_k8s_crds import render

Doc = dict[str, Any]
NAMESPACE = "aftersales"
SERVICES = tuple(CALLS_ON)
PROCESSES = (*SERVICES, "gateway")


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    ip: str = "10.244.1.1"


def namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
    return True


def peer_matches(peer: Doc, pod: Pod) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(pod.ip)
        block = peer["ipBlock"]
        excluded = any(address in ipaddress.ip_network(c) for c in block.get("except", []))
        return address in ipaddress.ip_network(block["cidr"]) and not excluded
    if pod.namespace is None:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], namespace_labels(pod.namespace))
    else:
        in_namespace = pod.namespace == NAMESPACE
    return in_namespace and selects(peer.get("podSelector", {}), pod.labels)


def port_matches(ports: list[Doc] | None, target: Pod, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        wanted = item.get("port")
        number = target.ports.get(wanted) if isinstance(wanted, str) else wanted
        if wanted is None or number == port:
            return True
    return False


def allowed(
    policies: list[Doc], source: Pod, target: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """Whether `source` may open a connection to `target`'s `port`: a policy of the
    namespace that selects a pod for a direction takes over that direction, and then only
    its rules let anything through (other namespaces have no policies here)."""

    def through(pod: Pod, kind: str, peers: str, other: Pod) -> bool:
        selecting = [
            policy["spec"]
            for policy in policies
            if kind in policy["spec"]["policyTypes"]
            and selects(policy["spec"]["podSelector"], pod.labels)
        ]
        if pod.namespace != NAMESPACE or not selecting:
            return True
        return any(
            (not rule.get(peers) or any(peer_matches(peer, other) for peer in rule[peers]))
            and port_matches(rule.get("ports"), target, port, protocol)
            for spec in selecting
            for rule in spec.get(kind.lower(), [])
        )

    return through(source, "Egress", "to", target) and through(target, "Ingress", "from", source)


def workload_pod(doc: Doc, index: int) -> Pod:
    template = doc["spec"]["template"]
    ports = {
        p["name"]: p["containerPort"]
        for c in template["spec"]["containers"]
        for p in c.get("ports", [])
        if "name" in p
    }
    return Pod(
        doc["metadata"]["name"],
        NAMESPACE,
        template["metadata"]["labels"],
        ports,
        f"10.244.2.{index}",
    )


@pytest.fixture(scope="module")
def prod() -> tuple[list[Doc], dict[str, Pod]]:
    docs = list(render("prod"))
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    pods: dict[str, Pod] = {}
    workloads = [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "Job"}]
    for index, doc in enumerate(workloads):
        pods[doc["metadata"]["name"]] = workload_pod(doc, index + 1)
    for index, cluster in enumerate(d for d in docs if d["kind"] == "Cluster"):
        name = cluster["metadata"]["name"]
        pods[name] = Pod(name, NAMESPACE, {"cnpg.io/cluster": name}, ip=f"10.244.3.{index + 1}")
    for index, pooler in enumerate(d for d in docs if d["kind"] == "Pooler"):
        name = pooler["metadata"]["name"]
        pods[name] = Pod(name, NAMESPACE, {"cnpg.io/poolerName": name}, ip=f"10.244.4.{index + 1}")
    controller = {
        "app.kubernetes.io/name": "ingress-nginx",
        "app.kubernetes.io/component": "controller",
    }
    pods["ingress-controller"] = Pod(
        "ingress-controller", "ingress-nginx", controller, ip="10.244.9.1"
    )
    pods["prometheus"] = Pod("prometheus", "monitoring", {"app": "prometheus"}, ip="10.244.9.2")
    pods["tempo"] = Pod("tempo", "monitoring", {"app": "tempo"}, ip="10.244.9.3")
    pods["cnpg-operator"] = Pod("cnpg-operator", "cnpg-system", {"app": "cnpg"}, ip="10.244.9.4")
    pods["kube-dns"] = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, ip="10.96.0.10")
    pods["intruder"] = Pod(
        "intruder", "other", {"app.kubernetes.io/name": "gateway"}, ip="10.244.9.9"
    )
    pods["stray"] = Pod("stray", NAMESPACE, {"app": "debug"}, ip="10.244.9.10")
    pods["internet"] = Pod("internet", None, ip="203.0.113.7")
    return policies, pods


def test_every_policy_denies_by_default_both_ways(prod: tuple[list[Doc], dict[str, Pod]]) -> None:
    policies, _ = prod
    (deny,) = [p for p in policies if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for policy in policies:
        assert set(policy["spec"]["policyTypes"]) <= {"Ingress", "Egress"}


def test_one_policy_per_process_names_who_may_call_it(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, _ = prod
    names = {p["metadata"]["name"] for p in policies}
    assert set(PROCESSES) <= names
    assert {f"{p}-db-pooler" for p in PROCESSES} <= names


def test_grpc_flows_exactly_as_the_code_calls(prod: tuple[list[Doc], dict[str, Pod]]) -> None:
    policies, pods = prod
    callers = [*PROCESSES, "streams", "nats", "stray", "intruder", "ingress-controller"]
    for callee in SERVICES:
        for caller in callers:
            expected = caller == "gateway" or callee in CALLS_ON.get(caller, ())
            got = allowed(policies, pods[caller], pods[callee], pods[callee].ports["grpc"])
            assert got == expected, f"{caller} -> {callee} gRPC: {got}, the code says {expected}"


def test_the_gateway_takes_http_from_the_ingress_controller_and_the_scraper_only(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, pods = prod
    gateway = pods["gateway"]
    http = gateway.ports["http"]
    assert allowed(policies, pods["ingress-controller"], gateway, http)
    assert allowed(policies, pods["prometheus"], gateway, http)
    for other in ("intruder", "stray", "orders", "internet"):
        assert not allowed(policies, pods[other], gateway, http), other


def test_nats_takes_the_holders_of_a_credential_and_its_own_routes(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, pods = prod
    nats = pods["nats"]
    holders = {*BUS_USERS, "streams"}
    for name in [*PROCESSES, "streams", "stray", "intruder", "prometheus"]:
        got = allowed(policies, pods[name], nats, nats.ports["client"])
        assert got == (name in holders), f"{name} -> NATS: {got}"
    assert allowed(policies, nats, nats, nats.ports["cluster"]), "routes between the servers"
    assert not allowed(policies, pods["orders"], nats, nats.ports["cluster"])
    assert allowed(policies, pods["prometheus"], nats, nats.ports["monitor"])


def test_each_process_reaches_its_own_database_only_and_only_through_its_pooler(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, pods = prod
    for process in PROCESSES:
        for owner in PROCESSES:
            pooler, cluster = pods[f"{owner}-db-pooler"], pods[f"{owner}-db"]
            assert allowed(policies, pods[process], pooler, 5432) == (process == owner)
            assert not allowed(policies, pods[process], cluster, 5432), "never past the pooler"
            own_pooler = pods[f"{process}-db-pooler"]
            assert allowed(policies, own_pooler, cluster, 5432) == (process == owner)
        cluster = pods[f"{process}-db"]
        assert allowed(policies, cluster, cluster, 5432), "replication between instances"
        assert allowed(policies, pods["cnpg-operator"], cluster, 8000)
        assert not allowed(policies, pods["stray"], pods[f"{process}-db-pooler"], 5432)


def test_metrics_ports_only_from_the_monitoring_namespace(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, pods = prod
    for service in SERVICES:
        metrics = pods[service].ports["metrics"]
        assert allowed(policies, pods["prometheus"], pods[service], metrics)
        for other in ("gateway", "intruder", "stray", *[s for s in SERVICES if s != service]):
            assert not allowed(policies, pods[other], pods[service], metrics), other


def test_every_pod_resolves_names_and_only_customers_goes_out(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, pods = prod
    for name in [*PROCESSES, "streams", "nats", "stray"]:
        assert allowed(policies, pods[name], pods["kube-dns"], 53, "UDP"), name
        assert allowed(policies, pods[name], pods["kube-dns"], 53, "TCP"), name
        assert not allowed(policies, pods[name], pods["kube-dns"], 80), name
        assert allowed(policies, pods[name], pods["internet"], 443) == (name == "customers")
    assert not allowed(policies, pods["stray"], pods["orders"], 50051)
    assert not allowed(policies, pods["internet"], pods["orders"], 50051)


def test_spans_go_to_the_collector_and_from_it_to_the_monitoring_namespace_only(
    prod: tuple[list[Doc], dict[str, Pod]],
) -> None:
    policies, pods = prod
    collector = pods["otel-collector"]
    otlp = collector.ports["otlp-grpc"]
    for name in [*PROCESSES, "stray", "nats", "intruder"]:
        assert allowed(policies, pods[name], collector, otlp) == (name in PROCESSES), name
    assert allowed(policies, collector, pods["tempo"], 4317)
    assert not allowed(policies, collector, pods["internet"], 443)
    assert not allowed(policies, collector, pods["orders"], pods["orders"].ports["grpc"])
