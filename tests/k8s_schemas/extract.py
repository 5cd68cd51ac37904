"""Extract the openAPIV3Schema of each served version of the CRDs the manifests use, from
checkouts of the operators' repositories, into <group>/<version>/<Kind>.json here.

    python tests/k8s_schemas/extract.py CNPG_GIT CERT_MANAGER_GIT PROMETHEUS_OPERATOR_GIT

Each argument is a git directory (a clone or a bare mirror); the files are read at its HEAD.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CRDS = (
    (
        "cloudnative-pg/cloudnative-pg",
        (
            "config/crd/bases/postgresql.cnpg.io_clusters.yaml",
            "config/crd/bases/postgresql.cnpg.io_poolers.yaml",
            "config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
        ),
    ),
    (
        "cert-manager/cert-manager",
        (
            "deploy/crds/cert-manager.io_certificates.yaml",
            "deploy/crds/cert-manager.io_issuers.yaml",
            "deploy/crds/cert-manager.io_clusterissuers.yaml",
        ),
    ),
    (
        "prometheus-operator/prometheus-operator",
        (
            "example/prometheus-operator-crd-full/monitoring.coreos.com_prometheusrules.yaml",
            "example/prometheus-operator-crd-full/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd-full/monitoring.coreos.com_podmonitors.yaml",
        ),
    ),
)


def git(directory: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", directory, *args], capture_output=True, text=True, check=True
    ).stdout


def main(directories: list[str]) -> None:
    for (repository, paths), directory in zip(CRDS, directories, strict=True):
        commit = git(directory, "rev-parse", "HEAD").strip()
        for path in paths:
            crd = yaml.safe_load(git(directory, "show", f"HEAD:{path}"))
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                target = HERE / group / version["name"] / f"{kind}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                schema = version["schema"]["openAPIV3Schema"]
                target.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")))
                print(repository, commit, path, "->", target.relative_to(HERE))


if __name__ == "__main__":
    main(sys.argv[1:])
