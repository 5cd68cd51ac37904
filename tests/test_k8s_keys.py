"""The keys and certificates in the Kubernetes manifests against the code that reads them
(servicekit.keys, servicekit.tls), offline:

- each signer's private key in a Secret of its own, mounted only in its own pods; every
  service's pod also gets the JWKS ConfigMap; both as files Kubernetes updates in place (no
  subPath), in the folder INTERNAL_TOKEN_KEYS names, under the names the code reads;
- in prod, a cert-manager Certificate per process naming it as the servers check it (the
  identity URI) and as its clients dial it (the DNS name in <SERVICE>_ADDR), renewed before it
  ends, mounted whole with GRPC_TLS_* pointing at it (overlays/prod/mtls.yaml);
- with kubectl, the prod overlay renders with both files and the result carries them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from servicekit.caller_token import CALLS_ON, GATEWAY, load_signer, load_verifier
from servicekit.keys import JWKS_FILE, KEY_SUFFIX, generate_keys
from servicekit.tls import identity_uri, service_dns_names

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
BASE = K8S / "base"
PROD = K8S / "overlays" / "prod"
SERVICES = tuple(CALLS_ON)
PROCESSES = (GATEWAY, *SERVICES)
KEYS_PATH = "/etc/aftersales/keys"
JWKS_CONFIG_MAP = "aftersales-jwks"
TLS_ENV = ("GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CA")

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(deployment: Doc) -> Doc:
    spec: Doc = deployment["spec"]["template"]["spec"]
    return spec


def server(deployment: Doc) -> Doc:
    (container,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == "server"]
    return container


def env(container: Doc) -> dict[str, Any]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def volume_at(deployment: Doc, path: str) -> Doc:
    """The volume mounted at `path` in the server container, which must be read-only and
    whole (a subPath mount never sees an update)."""
    (mount,) = [m for m in server(deployment)["volumeMounts"] if m["mountPath"] == path]
    assert mount.get("readOnly") is True
    assert "subPath" not in mount, "a subPath mount is never updated"
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    return volume


def sources(volume: Doc) -> dict[tuple[str, str], dict[str, str]]:
    """(kind, name) → {key: path} of each Secret and ConfigMap a projected volume holds."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for source in volume["projected"]["sources"]:
        ((kind, ref),) = source.items()
        found[(kind, ref["name"])] = {item["key"]: item["path"] for item in ref["items"]}
    return found


def deployment(process: str) -> Doc:
    return find(load_docs(BASE / f"{process}.yaml"), "Deployment", process)


# --- caller-token keys ------------------------------------------------------------------------


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_mounts_its_own_key_secret_and_the_services_the_jwks(
    process: str, tmp_path: Path
) -> None:
    workload = deployment(process)
    assert env(server(workload))["INTERNAL_TOKEN_KEYS"] == KEYS_PATH
    volume = volume_at(workload, KEYS_PATH)
    assert volume["projected"]["defaultMode"] & 0o007 == 0, "not readable by others"
    own = {("secret", f"aftersales-key-{process}"): {f"{process}{KEY_SUFFIX}": f"{process}.jwk"}}
    jwks = {("configMap", JWKS_CONFIG_MAP): {JWKS_FILE: JWKS_FILE}}
    assert sources(volume) == (own if process == GATEWAY else {**own, **jwks})

    # The folder as the pod sees it holds what the process loads at start.
    everything = tmp_path / "all"
    generate_keys(everything, PROCESSES)
    pod = tmp_path / "pod"
    pod.mkdir()
    for files in sources(volume).values():
        for key, path in files.items():
            shutil.copy(everything / key, pod / path)
    load_signer(pod, process)
    if process != GATEWAY:
        load_verifier(pod)


def test_no_secret_holds_more_than_one_signers_key() -> None:
    example = [d for d in load_docs(BASE / "secret.example.yaml") if d["kind"] == "Secret"]
    holders: dict[str, str] = {}
    for secret in example:
        keys = [key for key in secret["stringData"] if key.endswith(KEY_SUFFIX)]
        assert len(keys) <= 1, f"{secret['metadata']['name']} holds {keys}"
        for key in keys:
            holders[key] = secret["metadata"]["name"]
    assert holders == {f"{p}{KEY_SUFFIX}": f"aftersales-key-{p}" for p in PROCESSES}
    for process in PROCESSES:
        mounted = {name for _, name in sources(volume_at(deployment(process), KEYS_PATH))}
        assert {name for name in mounted if name.startswith("aftersales-key-")} == {
            f"aftersales-key-{process}"
        }


# --- mutual TLS in prod -----------------------------------------------------------------------


def hours(duration: str) -> float:
    """A Go duration as cert-manager takes it (720h, 90m): in hours."""
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration):
        total += float(amount) / {"h": 1, "m": 60, "s": 3600}[unit]
    assert total > 0, duration
    return total


def certificates() -> list[Doc]:
    return load_docs(PROD / "certificates.yaml")


def dialled_host(process: str) -> str:
    """The host the other processes dial for a service (<SERVICE>_ADDR: dns:///orders:50051)."""
    config = find(load_docs(BASE / "config.yaml"), "ConfigMap", "aftersales-config")["data"]
    address = str(config[f"{process.upper()}_ADDR"])
    return address.removeprefix("dns:///").rsplit(":", 1)[0]


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_has_a_certificate_naming_it_as_the_code_checks(process: str) -> None:
    docs = certificates()
    certificate = find(docs, "Certificate", f"aftersales-tls-{process}")["spec"]
    assert certificate["uris"] == [identity_uri(process)]
    assert certificate["dnsNames"] == service_dns_names(process)
    if process != GATEWAY:
        assert dialled_host(process) in certificate["dnsNames"]
    assert {"server auth", "client auth"} <= set(certificate["usages"])
    assert hours(certificate["renewBefore"]) < hours(certificate["duration"]) / 2
    assert certificate["privateKey"]["rotationPolicy"] == "Always"
    issuer = find(docs, "Issuer", certificate["issuerRef"]["name"])["spec"]
    ca = find(docs, "Certificate", issuer["ca"]["secretName"])["spec"]
    assert ca["isCA"] is True and ca["secretName"] == issuer["ca"]["secretName"]
    assert find(docs, "Issuer", ca["issuerRef"]["name"])["spec"] == {"selfSigned": {}}
    assert hours(ca["duration"]) > 10 * hours(certificate["duration"])


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_serves_and_calls_with_its_own_certificate(process: str) -> None:
    patch = find(load_docs(PROD / "mtls.yaml"), "Deployment", process)
    tls = env(server(patch))
    assert set(tls) == set(TLS_ENV)
    folder = {str(Path(tls[name]).parent) for name in TLS_ENV}
    assert len(folder) == 1
    volume = volume_at(patch, folder.pop())
    assert volume["projected"]["defaultMode"] & 0o007 == 0
    secret = certificates()
    name = find(secret, "Certificate", f"aftersales-tls-{process}")["spec"]["secretName"]
    files = sources(volume)[("secret", name)]
    # cert-manager's Secret keys, each file under the name GRPC_TLS_* gives.
    assert files == {"tls.crt": "tls.crt", "tls.key": "tls.key", "ca.crt": "ca.crt"}
    assert [Path(tls[n]).name for n in TLS_ENV] == ["tls.crt", "tls.key", "ca.crt"]
    settings = (ROOT / "servicekit/settings.py").read_text()
    assert all(f'"{n}"' in settings for n in TLS_ENV), "the names the processes read"


def test_the_prod_overlay_renders_with_the_certificates_and_mutual_tls(tmp_path: Path) -> None:
    """kubectl kustomize of prod, with certificates.yaml a resource and mtls.yaml a patch
    (added here to a copy when the overlay does not list them yet)."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not on PATH: cannot render the prod overlay here")
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    kustomization_path = copy / "overlays" / "prod" / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_path.read_text())
    if "certificates.yaml" not in kustomization["resources"]:
        kustomization["resources"].append("certificates.yaml")
    if "mtls.yaml" not in [patch["path"] for patch in kustomization["patches"]]:
        kustomization["patches"].append({"path": "mtls.yaml"})
    kustomization_path.write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [binary, "kustomize", str(copy / "overlays" / "prod")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    for process in PROCESSES:
        rendered = find(docs, "Deployment", process)
        assert set(TLS_ENV) <= set(env(server(rendered)))
        mounted = {name for _, name in sources(volume_at(rendered, "/etc/aftersales/tls"))}
        assert mounted == {f"aftersales-tls-{process}"}
        assert ("secret", f"aftersales-key-{process}") in sources(volume_at(rendered, KEYS_PATH))
        certificate = find(docs, "Certificate", f"aftersales-tls-{process}")
        assert certificate["metadata"]["namespace"] == "aftersales"
