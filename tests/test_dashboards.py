"""The Grafana dashboards: the committed JSON is what the generator (grafana-foundation-sdk) builds, every panel
queries the Prometheus data source variable, panels do not overlap, and the chart ships each dashboard as a
ConfigMap (valid against the Kubernetes schema) labelled for Grafana's sidecar. That the queries name metrics
the processes export, and that Prometheus accepts them, is checked in tests/test_alerts_e2e.py."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.grafana import dashboards
from tests.test_alert_rules import fetched_helm

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "mishards"
kubernetes_validate: Any = importlib.import_module("kubernetes_validate")
_helm = pytest.fixture(scope="module", name="helm_binary")(fetched_helm)


def committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(dashboards.OUT.glob("*.json"))}


def test_committed_json_is_what_the_generator_builds() -> None:
    res = subprocess.run([sys.executable, "-m", "deploy.grafana.dashboards", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert set(committed()) == set(dashboards.DASHBOARDS)


def test_panels_query_the_datasource_variable_and_do_not_overlap() -> None:
    for uid, board in committed().items():
        assert board["uid"] == uid and board["templating"]["list"][0]["query"] == "prometheus"
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
            pos = panel["gridPos"]
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{uid}: {panel['title']} overlaps another panel"
            cells |= mine
    queries = [t["expr"] for board in committed().values() for p in board["panels"] for t in p["targets"]]
    assert sorted(queries) == sorted(dashboards.dashboard_queries())


def test_chart_ships_each_dashboard_as_a_labelled_configmap(helm_binary: Path) -> None:
    res = subprocess.run([str(helm_binary), "template", "mishards", str(CHART), "--namespace", "search",
                          "--kube-version", "1.31.0", "--set", "monitoring.dashboards.enabled=true",
                          "--set", "monitoring.dashboards.annotations.grafana_folder=Mishards",
                          "--show-only", "templates/dashboards-configmap.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    maps = [doc for doc in yaml.safe_load_all(res.stdout) if doc]
    shipped = {}
    for cm in maps:
        kubernetes_validate.validate(cm, "1.31.0", strict=True)
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Mishards"}
        (name, text), = cm["data"].items()
        shipped[name.removesuffix(".json")] = json.loads(text)
    assert shipped == committed()


def test_chart_renders_no_dashboards_by_default(helm_binary: Path) -> None:
    res = subprocess.run([str(helm_binary), "template", "mishards", str(CHART)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(res.stdout) if d]
    assert not [k for k in kinds if k[0] in ("PrometheusRule",) or k[1].endswith("-mishards-overview")]
