"""The alert rules with Debian's promtool: ``check rules`` on the rules file and on the group the chart renders,
``test rules`` with, for every alert, series that fire it and series that must not. Also: the rendered files
are up to date with deploy/alerts/catalog.py, and the chart's thresholds are the rules file's defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.alerts import render
from deploy.alerts.catalog import ALERTS, THRESHOLDS
from tests.support.waiting import require_binary

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "mishards"
P = 'namespace="ns", job="mishards", component="proxy", instance="proxy-0"'  # a proxy's target labels
N = 'namespace="ns", job="mishards", component="reader", instance="reader-1"'  # a read node's
W = 'namespace="ns", job="mishards", component="writer", instance="writer-0"'  # the writer's


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "prometheus")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def case(alert: str, series: dict[str, str], eval_time: str, fires: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alert,
                             "exp_alerts": [{"exp_labels": labels} for labels in fires]}],
    }


def located(**labels: str) -> dict[str, str]:
    return {"namespace": "ns", "job": "mishards", **labels}


PROXY = located(component="proxy", instance="proxy-0")
READER = located(component="reader", instance="reader-1")
WRITER = located(component="writer", instance="writer-0")


def errors(methods: str, total_per_min: int, failed_per_min: int) -> dict[str, str]:
    """Counters of requests by one method: ``failed_per_min`` of ``total_per_min`` end with UNEXPECTED_ERROR."""
    ok = total_per_min - failed_per_min
    return {
        f'mishards_proxy_request_seconds_count{{{P}, method="{methods}", code="0"}}': f"0+{ok}x20",
        f'mishards_proxy_request_seconds_count{{{P}, method="{methods}", code="1"}}': f"0+{failed_per_min}x20",
        # client errors never count
        f'mishards_proxy_request_seconds_count{{{P}, method="{methods}", code="5"}}': "0+5x20",
    }


def latency(metric: str, labels: str, slow: bool) -> dict[str, str]:
    """Histogram buckets of 600 observations a minute, all under 5 ms, or 10 % above 2.5 s."""
    fast, tail = (540, 60) if slow else (600, 0)
    return {f'{metric}_bucket{{{labels}, le="0.005"}}': f"0+{fast}x20",
            f'{metric}_bucket{{{labels}, le="2.5"}}': f"0+{fast}x20",
            f'{metric}_bucket{{{labels}, le="+Inf"}}': f"0+{fast + tail}x20"}


def unit_tests() -> list[dict[str, Any]]:
    sev = {a.name: a.severity for a in ALERTS}

    def fired(name: str, **labels: str) -> dict[str, str]:
        return {"severity": sev[name], **labels}

    search = 'method="Search"'
    return [
        # a read node down for two minutes; a node that answers does not fire
        case("MishardsNodeDown", {f"up{{{N}}}": "1 0 0 0", f"up{{{W}}}": "1 1 1 1"}, "3m",
             [fired("MishardsNodeDown", **READER)]),
        case("MishardsNodeDown", {f"up{{{N}}}": "1 1 0 1"}, "3m", []),
        case("MishardsProxyDown", {f"up{{{P}}}": "0 0 0"}, "2m", [fired("MishardsProxyDown", **PROXY)]),
        case("MishardsProxyDown", {f"up{{{P}}}": "1 1 1", f"up{{{N}}}": "0 0 0"}, "2m", []),
        # no node holds the writer epoch (both rw nodes report 0) / a proxy knows no writer
        case("MishardsNoWriter", {f"mishards_node_writable{{{W}}}": "1 0 0 0",
                                  f"mishards_node_writable{{{N}}}": "0 0 0 0"}, "3m",
             [fired("MishardsNoWriter", namespace="ns")]),
        case("MishardsNoWriter", {f"mishards_node_writable{{{W}}}": "1 1 1 1",
                                  f"mishards_node_writable{{{N}}}": "0 0 0 0",
                                  f"mishards_proxy_writer_known{{{P}}}": "1 1 1 1"}, "3m", []),
        case("MishardsNoWriter", {f"mishards_node_writable{{{W}}}": "1 1 1 1",
                                  f"mishards_proxy_writer_known{{{P}}}": "1 0 0 0"}, "3m",
             [fired("MishardsNoWriter", **PROXY)]),
        # one rw member seen for 15 minutes; with two (writer and standby) nothing fires; workers counted once
        case("MishardsStandbyWriterMissing", {
            f'mishards_proxy_members{{{P}, role="rw", state="ready", worker="0"}}': "1x20",
            f'mishards_proxy_members{{{P}, role="rw", state="ready", worker="1"}}': "1x20"}, "15m",
             [fired("MishardsStandbyWriterMissing", **PROXY)]),
        case("MishardsStandbyWriterMissing", {
            f'mishards_proxy_members{{{P}, role="rw", state="ready"}}': "1x20",
            f'mishards_proxy_members{{{P}, role="rw", state="standby"}}': "1x20"}, "15m", []),
        # no rw member at all
        case("MishardsStandbyWriterMissing", {f"mishards_proxy_writer_known{{{P}}}": "0x20"}, "15m",
             [fired("MishardsStandbyWriterMissing", **PROXY)]),
        case("MishardsSegmentsUnderReplicated", {
            f'mishards_proxy_segments_under_replicated{{{P}, collection="c"}}': "0 3x10"}, "8m",
             [fired("MishardsSegmentsUnderReplicated", collection="c", **PROXY)]),
        case("MishardsSegmentsUnderReplicated", {
            f'mishards_proxy_segments_under_replicated{{{P}, collection="c"}}': "0 3 3 0 3 3 0 3 3"}, "8m", []),
        case("MishardsSegmentsUnavailable", {
            f'mishards_proxy_segments_unavailable{{{P}, collection="c"}}': "0 2 2 2"}, "3m",
             [fired("MishardsSegmentsUnavailable", collection="c", **PROXY)]),
        case("MishardsSegmentsUnavailable", {
            f'mishards_proxy_segments_unavailable{{{P}, collection="c"}}': "0 0 0 0",
            f'mishards_proxy_segments_under_replicated{{{P}, collection="c"}}': "5 5 5 5"}, "3m", []),
        case("MishardsReaderWarmingTooLong", {f"mishards_node_warming_seconds{{{N}}}": "0+60x20"}, "13m",
             [fired("MishardsReaderWarmingTooLong", **READER)]),
        case("MishardsReaderWarmingTooLong", {f"mishards_node_warming_seconds{{{N}}}": "0+60x5 0x10"}, "13m", []),
        # 10 % of searches fail for ten minutes; 1 % does not fire (nor do client errors)
        case("MishardsSearchErrors", errors("Search", 100, 10), "12m", [fired("MishardsSearchErrors", **PROXY)]),
        case("MishardsSearchErrors", errors("Search", 100, 1), "12m", []),
        case("MishardsWriteErrors", errors("Insert", 100, 20), "12m", [fired("MishardsWriteErrors", **PROXY)]),
        case("MishardsWriteErrors", errors("Search", 100, 50), "12m", []),  # searches are not writes
        case("MishardsSearchLatencyHigh", latency("mishards_proxy_request_seconds", f"{P}, {search}, code=\"0\"",
                                                  True), "18m", [fired("MishardsSearchLatencyHigh", **PROXY)]),
        case("MishardsSearchLatencyHigh", latency("mishards_proxy_request_seconds", f"{P}, {search}, code=\"0\"",
                                                  False), "18m", []),
        case("MishardsCatalogLag", {f"mishards_node_catalog_refresh_lag_seconds{{{N}}}": "0 60 120 180 240"},
             "4m", [fired("MishardsCatalogLag", **READER)]),
        case("MishardsCatalogLag", {f"mishards_node_catalog_refresh_lag_seconds{{{N}}}": "0.2x5"}, "4m", []),
        case("MishardsWalFsyncSlow", latency("mishards_node_wal_fsync_seconds", W, True), "18m",
             [fired("MishardsWalFsyncSlow", **WRITER)]),
        case("MishardsWalFsyncSlow", latency("mishards_node_wal_fsync_seconds", W, False), "18m", []),
        # rows pile up for 20 minutes without a flush; the same growth with flushes does not fire
        case("MishardsBufferedRowsNotFlushing", {f"mishards_node_buffered_rows{{{W}}}": "0+100x20",
                                                 f"mishards_node_flush_seconds_count{{{W}}}": "3x20"}, "18m",
             [fired("MishardsBufferedRowsNotFlushing", **WRITER)]),
        case("MishardsBufferedRowsNotFlushing", {f"mishards_node_buffered_rows{{{W}}}": "0+100x20",
                                                 f"mishards_node_flush_seconds_count{{{W}}}": "0+1x20"}, "18m", []),
        case("MishardsCacheNearlyFull", {f"mishards_node_cache_bytes{{{N}}}": "99x40",
                                         f"mishards_node_cache_capacity_bytes{{{N}}}": "100x40"}, "35m",
             [fired("MishardsCacheNearlyFull", **READER)]),
        case("MishardsCacheNearlyFull", {f"mishards_node_cache_bytes{{{N}}}": "50x40",
                                         f"mishards_node_cache_capacity_bytes{{{N}}}": "100x40"}, "35m", []),
        case("MishardsCacheNearlyFull", {f"mishards_node_cache_bytes{{{N}}}": "0x40",  # cache off
                                         f"mishards_node_cache_capacity_bytes{{{N}}}": "0x40"}, "35m", []),
        case("MishardsCacheEvictingHard", {f"mishards_node_cache_evictions_total{{{N}}}": "0+300x30"}, "25m",
             [fired("MishardsCacheEvictingHard", **READER)]),
        case("MishardsCacheEvictingHard", {f"mishards_node_cache_evictions_total{{{N}}}": "0+6x30"}, "25m", []),
        case("MishardsStorageNearlyFull", {f"mishards_node_storage_free_bytes{{{W}}}": "5x10",
                                           f"mishards_node_storage_size_bytes{{{W}}}": "100x10"}, "8m",
             [fired("MishardsStorageNearlyFull", **WRITER)]),
        case("MishardsStorageNearlyFull", {f"mishards_node_storage_free_bytes{{{W}}}": "40x10",
                                           f"mishards_node_storage_size_bytes{{{W}}}": "100x10"}, "8m", []),
    ]


def test_rendered_rules_and_chart_template_are_up_to_date() -> None:
    res = subprocess.run([sys.executable, "-m", "deploy.alerts.render", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_promtool_checks_the_rules_file() -> None:
    res = promtool("check", "rules", str(render.RULES_FILE))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in res.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = unit_tests()
    outcomes: dict[str, set[bool]] = {}
    for t in tests:
        for check in t["alert_rule_test"]:
            outcomes.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    assert outcomes == {a.name: {True, False} for a in ALERTS}


def without_annotations() -> str:
    """The rules file with the annotations left out: promtool compares annotations only if a test names them,
    and these tests are about when alerts fire (the annotations are checked by the test below and end to end)."""
    groups = render.rule_groups()
    for group in groups["groups"]:
        for rule in group["rules"]:
            del rule["annotations"]
    return yaml.safe_dump(groups, sort_keys=False)


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(without_annotations())
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                                        "tests": unit_tests()}, sort_keys=False))
    res = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_promtool_fails_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: a node that is up expected to fire MishardsNodeDown is reported."""
    (tmp_path / "rules.yml").write_text(render.rules_file())
    wrong = case("MishardsNodeDown", {f"up{{{N}}}": "1 1 1 1"}, "3m", [{"severity": "critical", **READER}])
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                                        "tests": [wrong]}))
    res = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert res.returncode != 0 and "MishardsNodeDown" in res.stdout + res.stderr


def test_chart_thresholds_are_the_rules_file_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = {k: str(v) for k, v in values["monitoring"]["thresholds"].items()}
    assert chart == THRESHOLDS


@pytest.mark.parametrize("standby", [True, False])
def test_the_chart_renders_the_same_rule_group_and_promtool_accepts_it(
        helm_binary: Path, tmp_path: Path, standby: bool) -> None:
    res = subprocess.run([str(helm_binary), "template", "mishards", str(CHART), "--namespace", "search",
                          "--set", "monitoring.prometheusRule.enabled=true", "--set", f"writer.standby={standby}",
                          "--set", "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
                          "--show-only", "templates/prometheusrule.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rule = yaml.safe_load(res.stdout)
    assert rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    groups = rule["spec"]["groups"]
    expected = render.rule_groups()["groups"]
    if not standby:  # one writer by design: no standby to miss
        expected = [{**g, "rules": [r for r in g["rules"] if r["alert"] != "MishardsStandbyWriterMissing"]}
                    for g in expected]
    assert groups == expected
    (tmp_path / "chart.rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    checked = promtool("check", "rules", str(tmp_path / "chart.rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_chart_thresholds_reach_the_rules(helm_binary: Path) -> None:
    res = subprocess.run([str(helm_binary), "template", "mishards", str(CHART),
                          "--set", "monitoring.prometheusRule.enabled=true",
                          "--set", "monitoring.thresholds.searchErrorRatio=0.2",
                          "--set", "monitoring.thresholds.nodeDownFor=3m",
                          "--show-only", "templates/prometheusrule.yaml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rules = {r["alert"]: r for r in yaml.safe_load(res.stdout)["spec"]["groups"][0]["rules"]}
    assert rules["MishardsSearchErrors"]["expr"].endswith("> 0.2")
    assert rules["MishardsNodeDown"]["for"] == "3m" and "for 3m" in rules["MishardsNodeDown"]["annotations"][
        "description"]


def test_chart_refuses_rules_without_metrics(helm_binary: Path) -> None:
    res = subprocess.run([str(helm_binary), "template", "mishards", str(CHART),
                          "--set", "monitoring.prometheusRule.enabled=true", "--set", "metrics.enabled=false"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "needs metrics.enabled" in res.stderr


def fetched_helm() -> Path:
    """The real helm binary, fetched once (and cached in .cache/tools) by scripts/fetch_helm.py."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_helm.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"scripts/fetch_helm.py failed:\n{res.stderr}"
    return Path(res.stdout.strip().splitlines()[-1])


_helm = pytest.fixture(scope="module", name="helm_binary")(fetched_helm)


def test_compose_prometheus_loads_the_rules_and_sends_to_alertmanager() -> None:
    """deploy/prometheus.yml names the rules file relative to itself (compose mounts deploy/alerts beside it), so
    promtool can check it here with the rules; Alertmanager's configuration passes amtool."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(m.split(":")[:2] for m in compose["services"]["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./deploy/alerts"] == "/etc/prometheus/alerts"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts/mishards.rules.yml"]
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target.split(":")[0] in compose["services"]
    res = promtool("check", "config", str(ROOT / "deploy" / "prometheus.yml"))
    assert res.returncode == 0 and f"SUCCESS: {len(ALERTS)} rules found" in res.stdout, res.stdout + res.stderr
    amtool = require_binary("amtool", "prometheus-alertmanager")
    checked = subprocess.run([amtool, "check-config", str(ROOT / "deploy" / "alertmanager.yml")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
