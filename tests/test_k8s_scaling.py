"""The prod overlay scales and keeps its data: an autoscaler per process (CPU, and the backlog
of each durable consumer the process reads with), pods spread over zones and nodes with a
priority class, PostgreSQL per process through CloudNativePG (three instances, continuous
backup) behind PgBouncer poolers sized against each pod's pool (servicekit.db) at the
autoscaler's maximum, DATABASE_URL wired from the operator's Secret, and the streams Job."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from servicekit import metrics
from servicekit.bus_permissions import SERVICES as BUS_USERS
from servicekit.caller_token import CALLS_ON
from servicekit.db import Database
from tests.test_k8s_crds import render
from tests.test_k8s_streams import ORDER

Doc = dict[str, Any]
PROCESSES = (*CALLS_ON, "gateway")
# The consumers' backlog metric prometheus-adapter serves (hpa.yaml says how).
BACKLOG = "aftersales_consumer_pending_messages"
# Connections for one-off commands beside the pods (migrate, replays), and PostgreSQL's own
# (the operator, replication, a superuser).
COMMANDS = 10
RESERVED = 20


def of_kind(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def prod() -> tuple[Doc, ...]:
    return render("prod")


def connections_per_pod() -> int:
    """The most connections one process opens: its pool and the pool's overflow."""
    pool = Database("postgresql://user:secret@host/db").engine.pool
    assert isinstance(pool, QueuePool)
    return pool.size() + pool._max_overflow


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(NAME) substitution of variables set earlier in the container's env."""
    return re.sub(r"\$\(([A-Z_]+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_autoscales_on_cpu_and_its_consumers_backlog(
    process: str, prod: tuple[Doc, ...]
) -> None:
    autoscaler = of_kind(prod, "HorizontalPodAutoscaler")[process]["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": process,
    }
    assert 2 <= autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    kinds = [m["type"] for m in autoscaler["metrics"]]
    (cpu,) = [m["resource"] for m in autoscaler["metrics"] if m["type"] == "Resource"]
    assert cpu["name"] == "cpu" and cpu["target"]["type"] == "Utilization"
    backlog = {
        m["external"]["metric"]["selector"]["matchLabels"]["consumer"]
        for m in autoscaler["metrics"]
        if m["type"] == "External" and m["external"]["metric"]["name"] == BACKLOG
    }
    assert set(kinds) <= {"Resource", "External"}
    if process in {"inventory", "customers", "reporting"}:
        durables = {d for c in BUS_USERS[process].consumes for d in c.durables}
        assert backlog == durables, "one backlog metric per durable consumer it reads with"
    else:
        assert backlog == set()


def test_the_backlog_metric_is_one_the_services_export_labelled_by_consumer() -> None:
    """prometheus-adapter serves what Prometheus scrapes from the services (hpa.yaml)."""
    assert metrics.CONSUMER_PENDING in REGISTRY._collector_to_names
    assert REGISTRY._collector_to_names[metrics.CONSUMER_PENDING] == [BACKLOG]
    assert "consumer" in metrics.CONSUMER_PENDING._labelnames


@pytest.mark.parametrize("process", PROCESSES)
def test_pods_spread_over_zones_and_nodes_with_a_priority(
    process: str, prod: tuple[Doc, ...]
) -> None:
    pod = of_kind(prod, "Deployment")[process]["spec"]["template"]["spec"]
    assert pod["priorityClassName"] in of_kind(prod, "PriorityClass")
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1 and constraint["whenUnsatisfiable"] == "DoNotSchedule"
        assert "app.kubernetes.io/name" in constraint["matchLabelKeys"], "per process"


def test_the_data_comes_first(prod: tuple[Doc, ...]) -> None:
    classes = {name: c["value"] for name, c in of_kind(prod, "PriorityClass").items()}
    assert classes["aftersales-data"] > classes["aftersales-serving"]
    nats = of_kind(prod, "StatefulSet")["nats"]["spec"]["template"]["spec"]
    assert nats["priorityClassName"] == "aftersales-data"
    for cluster in of_kind(prod, "Cluster").values():
        assert cluster["spec"]["priorityClassName"] == "aftersales-data"
    assert not any(c.get("globalDefault") for c in of_kind(prod, "PriorityClass").values())


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_has_its_own_replicated_backed_up_database(
    process: str, prod: tuple[Doc, ...]
) -> None:
    name = f"{process}-db"
    cluster = of_kind(prod, "Cluster")[name]["spec"]
    assert cluster["instances"] == 3
    assert cluster["affinity"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert cluster["postgresql"]["synchronous"]["number"] >= 1, "a commit is on two instances"
    assert cluster["bootstrap"]["initdb"] == {"database": process, "owner": process}
    store = cluster["backup"]["barmanObjectStore"]
    assert store["destinationPath"].endswith(f"/{name}"), "each database its own path"
    assert store["wal"]["compression"], "WAL archived continuously: point-in-time recovery"
    assert cluster["backup"]["retentionPolicy"]
    backup = of_kind(prod, "ScheduledBackup")[name]["spec"]
    assert backup["cluster"] == {"name": name}
    assert backup["method"] == "barmanObjectStore"
    assert len(backup["schedule"].split()) == 6, "CloudNativePG's schedule has seconds"


@pytest.mark.parametrize("process", PROCESSES)
def test_database_url_is_the_operators_secret_through_the_pooler(
    process: str, prod: tuple[Doc, ...]
) -> None:
    pooler = of_kind(prod, "Pooler")[f"{process}-db-pooler"]
    assert pooler["spec"]["cluster"] == {"name": f"{process}-db"}
    assert pooler["spec"]["type"] == "rw"
    pod = of_kind(prod, "Deployment")[process]["spec"]["template"]["spec"]
    for container in [*pod["initContainers"], *pod["containers"]]:
        env: dict[str, str] = {}
        for item in container["env"]:
            if item["name"] == "DATABASE_PASSWORD":
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref == {"name": f"{process}-db-app", "key": "password"}
                env["DATABASE_PASSWORD"] = "s3cret"  # letters and digits, as the operator's
            elif item["name"] == "DATABASE_URL":
                assert "valueFrom" not in item
                url = make_url(expand(item["value"], env))
                assert (url.host, url.port) == (pooler["metadata"]["name"], 5432)
                assert (url.username, url.password, url.database) == (process, "s3cret", process)
                break
        else:
            raise AssertionError(f"{process}/{container['name']}: no DATABASE_URL")


@pytest.mark.parametrize("process", PROCESSES)
def test_poolers_and_postgresql_are_sized_for_every_pod_at_the_autoscalers_maximum(
    process: str, prod: tuple[Doc, ...]
) -> None:
    deployment = of_kind(prod, "Deployment")[process]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    pods = of_kind(prod, "HorizontalPodAutoscaler")[process]["spec"]["maxReplicas"] + surge
    clients = connections_per_pod() * pods + COMMANDS
    pooler = of_kind(prod, "Pooler")[f"{process}-db-pooler"]["spec"]
    settings = {k: int(v) for k, v in pooler["pgbouncer"]["parameters"].items() if v.isdigit()}
    assert pooler["pgbouncer"]["poolMode"] == "session"
    # Each pooler pod takes every client (the other may be down), a server connection each.
    assert settings["max_client_conn"] >= clients
    assert settings["default_pool_size"] >= clients
    assert settings["max_db_connections"] >= settings["default_pool_size"]
    cluster = of_kind(prod, "Cluster")[f"{process}-db"]["spec"]
    max_connections = int(cluster["postgresql"]["parameters"]["max_connections"])
    assert max_connections >= pooler["instances"] * settings["max_db_connections"] + RESERVED


def test_the_streams_job_runs_every_bus_user_reporting_last_at_the_chains_sizes() -> None:
    for overlay, sizing in (("dev", "local"), ("prod", "national")):
        (job,) = [d for d in render(overlay) if d["kind"] == "Job"]
        pod = job["spec"]["template"]["spec"]
        steps = [*pod.get("initContainers", []), *pod["containers"]]
        users = [c["command"][3] for c in steps]
        assert users == list(ORDER) and set(users) == set(BUS_USERS)
        for container in steps:
            user = container["command"][3]
            assert container["command"] == [
                "python",
                "-m",
                "servicekit.streams",
                user,
                "--sizing",
                sizing,
            ]
            env = {item["name"]: item for item in container["env"]}
            password = env["NATS_PASSWORD_FILE"]["value"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volume = mounts[password.rsplit("/", 1)[0]]
            (secret,) = [v["secret"] for v in pod["volumes"] if v["name"] == volume]
            assert secret["secretName"] == f"aftersales-nats-{user}", "each as itself"


@pytest.mark.parametrize("process", PROCESSES)
def test_each_pooler_keeps_one_pod_through_a_drain_and_spreads_over_zones(
    process: str, prod: tuple[Doc, ...]
) -> None:
    name = f"{process}-db-pooler"
    pooler = of_kind(prod, "Pooler")[name]["spec"]
    assert pooler["instances"] >= 2
    budget = of_kind(prod, "PodDisruptionBudget")[name]["spec"]
    assert budget["selector"] == {"matchLabels": {"cnpg.io/poolerName": name}}
    assert budget["maxUnavailable"] == 1
    pod = pooler["template"]["spec"]
    assert pod["priorityClassName"] in of_kind(prod, "PriorityClass")
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
