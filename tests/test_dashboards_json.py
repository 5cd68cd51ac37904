"""The Grafana dashboards (k8s/components/monitoring/dashboards): each loads as a dashboard
with a unique uid, the service view and one per business level (HQ, branch, store); every
panel's PromQL parses (promtool checks it as a recording rule, Grafana's variables given
values) and names only series the platform exposes or its rules record; the local
provisioning points where the operations guide mounts them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from servicekit import metrics
from tests.alerts import promtool

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "k8s" / "components" / "monitoring" / "dashboards"
PROVISIONING = ROOT / "ops" / "grafana" / "provisioning"
# Grafana's variables, as a query would run with them.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1d",
    "$__interval": "1m",
    "$branch": "SH",
    "$store": "SH-001",
    "$job": "orders",
    "$pod": ".*",
}
# Series of Prometheus itself (the scrape) rather than of the platform.
PROMETHEUS_SERIES = {"up"}
FUNCTIONS_AND_KEYWORDS = {
    "sum", "max", "min", "count", "rate", "increase", "changes", "histogram_quantile", "by",
    "time", "and", "or", "unless", "without", "le",
}  # fmt: skip


def dashboards() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def queries(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    exprs += [
        v["query"]["query"]
        for v in board["templating"]["list"]
        if v["type"] == "query" and "label_values(" in v["query"]["query"]
    ]
    return exprs


def concrete(expr: str) -> str:
    """The query with Grafana's variables filled in; a label_values() call becomes its
    selector."""
    for name, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(name, value)
    found = re.fullmatch(r"label_values\((.+?)(?:, *\w+)?\)", expr)
    return found.group(1) if found else expr


def exposed_series() -> set[str]:
    """Every sample name the platform's metrics can show (histograms' and counters' parts)."""
    names = set()
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        kind = getattr(value, "_type", None)
        if not name:
            continue
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names.update(f"{name}_{part}" for part in ("bucket", "count", "sum"))
        else:
            names.add(name)
    for family in REGISTRY.collect():
        # A collector's gauges (the pools') show no sample until there is a pool.
        if family.type == "gauge":
            names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_there_is_a_service_view_and_one_per_business_level() -> None:
    uids = [json.loads(path.read_text())["uid"] for path in dashboards()]
    assert len(uids) == len(set(uids))
    assert set(uids) == {
        "aftersales-service",
        "aftersales-hq",
        "aftersales-branch",
        "aftersales-store",
    }
    for path in dashboards():
        assert path.stem == json.loads(path.read_text())["uid"]


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.stem)
def test_every_panel_query_parses(path: Path, tmp_path: Path) -> None:
    board = json.loads(path.read_text())
    exprs = queries(board)
    assert exprs, path
    rules = {
        "groups": [
            {
                "name": path.stem,
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": concrete(expr)}
                    for n, expr in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    checked = promtool.run("check", "rules", tmp_path / "queries.yaml")
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.stem)
def test_every_panel_names_series_the_platform_exposes(path: Path) -> None:
    known = exposed_series() | PROMETHEUS_SERIES
    for expr in queries(json.loads(path.read_text())):
        # Metric names: the identifiers left once selectors, strings, ranges and groupings
        # are taken out, other than functions (followed by '(') and keywords.
        bare = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]", " ", concrete(expr))
        bare = re.sub(r"by \([^)]*\)", " ", bare)
        names = {
            name
            for name, call in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", bare)
            if not call and name not in FUNCTIONS_AND_KEYWORDS
        }
        assert names <= known, f"{path.stem}: {sorted(names - known)} in {expr}"


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.stem)
def test_every_panel_has_a_title_a_place_and_the_datasource_variable(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["timezone"] == "Asia/Shanghai"
    names = {v["name"] for v in board["templating"]["list"]}
    for panel in panels(board):
        assert panel["title"], path
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        for target in panel.get("targets", []):
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval", "__range"}
            assert used <= names, f"{path.stem}: {panel['title']} uses {used - names}"


def test_local_provisioning_loads_the_dashboards_folder() -> None:
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "aftersales.yaml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/aftersales"
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
