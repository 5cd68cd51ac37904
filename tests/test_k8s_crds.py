"""The custom resources of the overlays (CloudNativePG, cert-manager, Prometheus Operator)
validate against the schemas their CRDs publish (tests/k8s_schemas, extracted from the
operators' repositories; its README names the commits), offline and strictly: the API
server's rules for structural schemas are applied on top, so a field the CRD does not know
fails here instead of being dropped without a word by the API server."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "k8s_schemas"
CUSTOM_GROUPS = {path.name for path in SCHEMAS.iterdir() if path.is_dir()}
Doc = dict[str, Any]

# What the API server keeps of a custom resource's metadata here: the rest is its own.
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

# The PgBouncer settings a Pooler may set: CloudNativePG's admission webhook refuses others
# (internal/webhook/v1/pooler_webhook.go, allowedPgbouncerGenericConfigurationParameters, at
# the commit of tests/k8s_schemas/README.md); the CRD types them only as strings.
PGBOUNCER_PARAMETERS = frozenset(
    (
        "application_name_add_host",
        "auth_type",
        "auth_user",
        "autodb_idle_timeout",
        "cancel_wait_timeout",
        "client_idle_timeout",
        "client_login_timeout",
        "client_tls_ciphers",
        "client_tls_sslmode",
        "client_tls13_ciphers",
        "default_pool_size",
        "disable_pqexec",
        "dns_max_ttl",
        "dns_nxdomain_ttl",
        "idle_transaction_timeout",
        "ignore_startup_parameters",
        "listen_backlog",
        "log_connections",
        "log_disconnections",
        "log_pooler_errors",
        "log_stats",
        "max_client_conn",
        "max_db_connections",
        "max_packet_size",
        "max_prepared_statements",
        "max_user_connections",
        "min_pool_size",
        "pkt_buf",
        "query_timeout",
        "query_wait_timeout",
        "reserve_pool_size",
        "reserve_pool_timeout",
        "sbuf_loopcnt",
        "server_check_delay",
        "server_check_query",
        "server_connect_timeout",
        "server_fast_close",
        "server_idle_timeout",
        "server_lifetime",
        "server_login_retry",
        "server_reset_query",
        "server_reset_query_always",
        "server_round_robin",
        "server_tls_ciphers",
        "server_tls13_ciphers",
        "server_tls_protocols",
        "server_tls_sslmode",
        "stats_period",
        "suspend_timeout",
        "tcp_defer_accept",
        "tcp_socket_buffer",
        "tcp_keepalive",
        "tcp_keepcnt",
        "tcp_keepidle",
        "tcp_keepintvl",
        "tcp_user_timeout",
        "track_extra_parameters",
        "verbose",
    )
)


def structural(schema: Any) -> Any:
    """The schema as the API server applies it: an object that lists its properties takes no
    others (unless it says additionalProperties or x-kubernetes-preserve-unknown-fields);
    x-kubernetes-int-or-string takes either; nullable takes null."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = {key: structural(value) for key, value in schema.items()}
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in node:
        node["type"] = [node["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


@functools.cache
def validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    group, _, version = api_version.partition("/")
    path = SCHEMAS / group / version / f"{kind}.json"
    assert path.exists(), f"no schema for {api_version} {kind} in tests/k8s_schemas"
    schema = structural(json.loads(path.read_text()))
    schema["properties"]["metadata"] = METADATA
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return jsonschema.Draft4Validator(schema)


def validate_custom(doc: Doc, where: str) -> None:
    errors = sorted(
        validator(doc["apiVersion"], doc["kind"]).iter_errors(doc), key=lambda e: list(e.path)
    )
    if errors:
        name = f"{doc['kind']}/{doc['metadata'].get('name')}"
        lines = [f"{'.'.join(str(p) for p in e.path)}: {e.message[:300]}" for e in errors[:5]]
        raise AssertionError(f"{where}: {name}:\n" + "\n".join(lines))
    if doc["kind"] == "Pooler":
        unknown = set(doc["spec"]["pgbouncer"].get("parameters", {})) - PGBOUNCER_PARAMETERS
        assert not unknown, f"{where}: PgBouncer settings CloudNativePG refuses: {unknown}"


@functools.cache
def render(overlay: str) -> tuple[Doc, ...]:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on PATH: cannot render the kustomize overlays here")
    result = subprocess.run(
        [binary, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def custom(docs: tuple[Doc, ...]) -> list[Doc]:
    return [d for d in docs if d["apiVersion"].partition("/")[0] in CUSTOM_GROUPS]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_custom_resource_validates_against_its_crd(overlay: str) -> None:
    for doc in custom(render(overlay)):
        validate_custom(doc, f"kubectl kustomize k8s/overlays/{overlay}")


def test_prod_has_the_custom_resources_it_relies_on() -> None:
    kinds = {d["kind"] for d in custom(render("prod"))}
    assert {"Cluster", "Pooler", "ScheduledBackup"} <= kinds


def test_every_kind_of_the_overlays_is_validated_by_one_schema_or_another() -> None:
    """Either Kubernetes' own (kubernetes-validate) or a CRD's here: nothing goes unchecked."""
    for overlay in ("dev", "prod"):
        for doc in render(overlay):
            group = doc["apiVersion"].partition("/")[0] if "/" in doc["apiVersion"] else ""
            if "." in group and not group.endswith(".k8s.io"):
                assert group in CUSTOM_GROUPS, f"{doc['kind']} ({doc['apiVersion']}): no schema"


def cluster() -> Doc:
    (found,) = [d for d in custom(render("prod")) if d["kind"] == "Cluster"][:1]
    return copy.deepcopy(found)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["spec"].update(instance=3), "Additional properties"),
        (
            lambda d: d["spec"]["backup"]["barmanObjectStore"].update(destination="s3://x"),
            "Additional",
        ),
        (lambda d: d["spec"].update(instances="three"), "is not of type"),
        (lambda d: d.update(spex={}), "Additional properties"),
        (lambda d: d["metadata"].update(labelz={}), "Additional properties"),
        (lambda d: d["spec"].update(primaryUpdateStrategy="whenever"), "is not one of"),
    ],
    ids=[
        "misspelt-field",
        "nested-misspelt",
        "wrong-type",
        "top-level-unknown",
        "metadata",
        "enum",
    ],
)
def test_the_validation_rejects_what_the_api_server_would_drop_or_refuse(
    change: Any, message: str
) -> None:
    doc = cluster()
    change(doc)
    with pytest.raises(AssertionError, match=message):
        validate_custom(doc, "test")


def test_a_pooler_with_a_setting_cloudnativepg_refuses_is_rejected() -> None:
    (pooler,) = [d for d in custom(render("prod")) if d["kind"] == "Pooler"][:1]
    pooler = copy.deepcopy(pooler)
    pooler["spec"]["pgbouncer"]["parameters"]["pool_mode"] = "transaction"
    with pytest.raises(AssertionError, match="refuses"):
        validate_custom(pooler, "test")


def test_every_schema_file_is_an_openapi_object_schema_with_a_spec() -> None:
    files = sorted(SCHEMAS.rglob("*.json"))
    assert {f.stem for f in files} >= {
        "Cluster",
        "Pooler",
        "ScheduledBackup",
        "Certificate",
        "Issuer",
        "ClusterIssuer",
        "PrometheusRule",
        "ServiceMonitor",
        "PodMonitor",
    }
    for path in files:
        schema = json.loads(path.read_text())
        assert schema["type"] == "object" and "spec" in schema["properties"], path
