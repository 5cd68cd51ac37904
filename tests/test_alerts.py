"""The monitoring component (k8s/components/monitoring): its alert rules pass `promtool check
rules` and their unit tests (tests/alerts/*.yaml, `promtool test rules` on fixture series),
every alert is exercised there and has its section in the runbook (docs/operations.md) that
its runbook_url names; the scrape targets match the Services; the collector's pipelines name
what it defines; with kubectl, the component renders over the base."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts import promtool

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = ROOT / "k8s" / "components" / "monitoring"
FIXTURES = ROOT / "tests" / "alerts"
RUNBOOK = ROOT / "docs" / "operations.md"
PROCESSES = ("gateway", "orders", "inventory", "customers", "reporting")


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def rule_groups() -> list[dict[str, Any]]:
    (rule,) = load(COMPONENT / "prometheus-rule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def write_rules(folder: Path) -> Path:
    """The PrometheusRule's groups as a plain Prometheus rules file."""
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False))
    return path


def anchor(heading: str) -> str:
    """The fragment a Markdown renderer (GitHub's) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {anchor(heading) for heading in headings}


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    checked = promtool.run("check", "rules", write_rules(tmp_path))
    assert checked.returncode == 0, checked.stdout


def test_rules_pass_their_unit_tests_on_fixture_series(tmp_path: Path) -> None:
    write_rules(tmp_path)
    fixtures = sorted(FIXTURES.glob("*.yaml"))
    assert fixtures
    for fixture in fixtures:
        shutil.copy(fixture, tmp_path / fixture.name)
    tested = promtool.run("test", "rules", *(tmp_path / f.name for f in fixtures))
    assert tested.returncode == 0, tested.stdout


def test_every_alert_fires_in_some_fixture() -> None:
    fired = set()
    for fixture in FIXTURES.glob("*.yaml"):
        for test in load(fixture)[0]["tests"]:
            for case in test.get("alert_rule_test", []):
                if case["exp_alerts"]:
                    fired.add(case["alertname"])
    assert {rule["alert"] for rule in alerts()} <= fired


def test_every_alert_has_a_severity_a_summary_and_its_runbook_section() -> None:
    anchors = runbook_anchors()
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/operations.md#{anchor(name)}", f"{name}: runbook_url {url}"
        assert anchor(name) in anchors, f"docs/operations.md has no section {name}"


def test_the_slos_the_burn_rates_use_are_stated() -> None:
    text = (COMPONENT / "prometheus-rule.yaml").read_text()
    for slo in ("99.5% of HTTP requests", "99% of HTTP requests answered within 0.5 s"):
        assert slo in text


def test_scrape_targets_match_the_services_ports() -> None:
    monitors = load(COMPONENT / "service-monitor.yaml")
    ports = {doc["spec"]["endpoints"][0]["port"] for doc in monitors}
    base = ROOT / "k8s" / "base"
    for name in PROCESSES:
        (service,) = [d for d in load(base / f"{name}.yaml") if d["kind"] == "Service"]
        named = {port["name"] for port in service["spec"]["ports"]}
        selected = [
            m
            for m in monitors
            if m["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"{name} is scraped by exactly one ServiceMonitor"
        assert selected[0]["spec"]["endpoints"][0]["port"] in named & ports, name
        assert selected[0]["spec"]["jobLabel"] == "app.kubernetes.io/name"


def test_collector_pipelines_name_only_what_it_defines() -> None:
    (config_map,) = [d for d in load(COMPONENT / "otel-collector.yaml") if d["kind"] == "ConfigMap"]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    for pipeline in config["service"]["pipelines"].values():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline[part]) <= set(config[part]), part
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


def test_component_renders_over_the_base(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "aftersales",
                # Relative: kustomize takes no absolute paths to other kustomizations.
                "resources": [os.path.relpath(ROOT / "k8s" / "base", overlay)],
                "components": [os.path.relpath(COMPONENT, overlay)],
            }
        )
    )
    rendered = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    dashboards = [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and "grafana_dashboard" in doc["metadata"]["labels"]
    ]
    assert len(dashboards) == 4
    assert {d["kind"] for d in docs} >= {"PrometheusRule", "ServiceMonitor", "Deployment"}
