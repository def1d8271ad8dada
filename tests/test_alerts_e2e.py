"""The alert rules against a real cluster: Debian's Prometheus scrapes a ``mishards up`` cluster (every process's
own /metrics port, from the ready files under ``<data>/run``) with the rules of deploy/alerts loaded, and sends
to Debian's Alertmanager, whose API must list the alerts.

The rules are the real ones with short ``for`` durations (``monitoring.thresholds``-style overrides); scrapes and
evaluations run every second. While a read node is down its supervisor (``mishards up``) is paused with SIGSTOP,
so the node stays down for as long as the test needs; SIGCONT lets it restart the node.

Also here, on the same cluster: every metric name that a rule or a dashboard query uses is served by a real
scrape of a node, the proxy or both.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from deploy.alerts.catalog import THRESHOLDS
from deploy.alerts.render import rule_groups
from deploy.grafana.dashboards import dashboard_queries
from milvus_wire import milvus_pb2_grpc
from tests.support import requests as rq
from tests.support.prometheus import (
    AlertmanagerServer,
    PrometheusServer,
    Target,
    instant,
    queried_names,
    served_names,
)
from tests.support.upproc import UpProcess
from tests.support.waiting import poll_for

SCRAPE_SECONDS = 1.0
FOR_SECONDS = 3.0
# Beyond the rule's ``for`` plus two scrape intervals: one evaluation interval to notice, one to fire, and the
# hand-over to Alertmanager (sent at once after the evaluation that fires).
NOTIFY_ALLOWANCE = 3.0
DIM = 16
pytestmark = pytest.mark.timeout(240)


def short_thresholds() -> dict[str, str]:
    """Every ``for`` of the rules shortened to FOR_SECONDS (the expressions and other thresholds unchanged)."""
    return {k: f"{FOR_SECONDS:g}s" for k in THRESHOLDS if k.endswith("For")}


def rule_expressions() -> list[str]:
    return [r["expr"] for g in rule_groups()["groups"] for r in g["rules"]]


def ready_info(up: UpProcess, child: str) -> dict[str, Any]:
    """What a child wrote in its ready file; {} while it has none (restarting)."""
    try:
        return dict(json.loads((up.workdir / "data" / "run" / f"{child}.ready").read_text()))
    except FileNotFoundError:
        return {}


def targets(up: UpProcess) -> list[Target]:
    """Each child's metrics port, labelled with a stable instance (its name) and its component."""
    out = []
    for path in sorted((up.workdir / "data" / "run").glob("*.ready")):
        name = path.stem
        info = json.loads(path.read_text())
        component = "proxy" if name == "proxy" else "writer" if name == "writer" else "reader"
        out.append(Target(f"127.0.0.1:{info['metrics_port']}", {"component": component, "instance": name}))
    return out


def active(am: AlertmanagerServer, alert: str, **labels: str) -> bool:
    return any(a["labels"].get("alertname") == alert and all(a["labels"].get(k) == v for k, v in labels.items())
               for a in am.alerts())


def firing_names(am: AlertmanagerServer) -> set[str]:
    return {str(a["labels"].get("alertname")) for a in am.alerts()}


def started_with_data(workdir: Path, extra: list[str]) -> UpProcess:
    """``mishards up`` with a collection of two flushed segments, searched once through the proxy."""
    up = UpProcess(workdir, ["--http-port", "0", *extra]).start()
    try:
        with grpc.insecure_channel(up.address) as channel:
            stub = milvus_pb2_grpc.MilvusServiceStub(channel)
            rq.ok(rq.create(stub, "alerted", DIM, rq.L2))
            rng = np.random.default_rng(7)
            base = rng.random((400, DIM), dtype=np.float32)
            for part in np.array_split(base, 2):
                rq.insert_ok(stub, "alerted", part)
                rq.ok(rq.flush(stub, "alerted"))
            status, ids, _ = rq.search(stub, "alerted", base[:3], 5)
            assert status.error_code == 0, status.reason
            assert ids.shape == (3, 5)
    except BaseException:
        up.stop()
        raise
    return up


def all_rules_evaluated(prom: PrometheusServer, timeout: float = 20) -> list[dict[str, Any]]:
    """Every rule's state once Prometheus has evaluated all of them after now."""
    started = prom.now()

    def evaluated() -> list[dict[str, Any]]:
        rules = [r for g in prom.rule_states() for r in g["rules"]]
        return rules if all(instant(r["lastEvaluation"]) > started for r in rules) else []

    rules = poll_for(evaluated, timeout, interval=0.2, what="an evaluation of every rule on the scraped cluster")
    assert len(rules) == len(rule_groups()["groups"][0]["rules"])
    return rules


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    up = started_with_data(tmp_path_factory.mktemp("alerts-up"), [])
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture(scope="module")
def monitoring(cluster: UpProcess) -> Iterator[tuple[PrometheusServer, AlertmanagerServer]]:
    with AlertmanagerServer() as am, PrometheusServer(rule_groups(short_thresholds()), alertmanager=am.address,
                                                      scrape_interval=f"{SCRAPE_SECONDS:g}s") as prom:
        prom.set_targets(targets(cluster))
        yield prom, am


def test_every_metric_a_rule_or_dashboard_queries_is_served(cluster: UpProcess) -> None:
    served = served_names(int(port) for port in cluster.info["metrics_ports"].values())
    queried = queried_names(rule_expressions() + dashboard_queries())
    assert "mishards_proxy_segments_under_replicated" in queried and "up" in queried
    missing = sorted(queried - served - {"up"})
    assert not missing, f"queried but not served by any process: {missing}"


def test_prometheus_accepts_every_dashboard_query(monitoring: tuple[PrometheusServer, AlertmanagerServer]) -> None:
    prom, _ = monitoring
    for expr in dashboard_queries():
        prom.query(expr.replace("$__rate_interval", "1m"))  # raises (HTTP 400) on a query Prometheus refuses


def test_read_node_down_and_writer_stopped_reach_alertmanager(
        cluster: UpProcess, monitoring: tuple[PrometheusServer, AlertmanagerServer]) -> None:
    prom, am = monitoring

    def all_up() -> bool:
        found = prom.targets()
        return len(found) == len(cluster.info["metrics_ports"]) and all(t["health"] == "up" for t in found)

    poll_for(all_up, 30, interval=0.2, what="Prometheus to scrape every process")
    poll_for(lambda: prom.query("mishards_proxy_replication_factor"), 20, interval=0.2,
             what="the proxy's replica metrics in Prometheus")

    rules = all_rules_evaluated(prom)
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    # The cluster is healthy: none of the alerts under test is pending or firing.
    assert not {"MishardsNodeDown", "MishardsSegmentsUnderReplicated", "MishardsNoWriter"} & {
        r["name"] for r in rules if r["state"] != "inactive"}
    assert not {"MishardsNodeDown", "MishardsSegmentsUnderReplicated", "MishardsNoWriter"} & firing_names(am)
    assert prom.query("mishards_proxy_replication_factor")[0]["value"][1] == "2"

    supervisor = cluster.info["pid"]
    reader = ready_info(cluster, "reader-1")
    os.kill(supervisor, signal.SIGSTOP)  # nobody restarts the node while the alerts are awaited
    try:
        os.kill(int(reader["pid"]), signal.SIGKILL)
        killed = time.monotonic()
        limit = FOR_SECONDS + 2 * SCRAPE_SECONDS + NOTIFY_ALLOWANCE
        poll_for(lambda: active(am, "MishardsNodeDown", instance="reader-1")
                 and active(am, "MishardsSegmentsUnderReplicated", instance="proxy", collection="alerted"),
                 limit, interval=0.1, what="MishardsNodeDown and MishardsSegmentsUnderReplicated in Alertmanager")
        print(f"node down and under-replicated alerts in Alertmanager {time.monotonic() - killed:.1f} s "
              f"after kill -9 (limit {limit:g} s)")
        down = [a for a in am.alerts() if a["labels"]["alertname"] == "MishardsNodeDown"]
        assert {a["labels"]["instance"] for a in down} == {"reader-1"}
        assert down[0]["labels"]["severity"] == "critical" and "reader-1" in down[0]["annotations"]["description"]
        assert not active(am, "MishardsSegmentsUnavailable")  # reader-2 still serves every segment (R = 2)
    finally:
        os.kill(supervisor, signal.SIGCONT)

    # The node comes back (on a new metrics port, under the same instance label): both alerts resolve.
    poll_for(lambda: ready_info(cluster, "reader-1").get("pid") not in (None, reader["pid"]), 60, interval=0.1,
             what="reader-1 restarted")
    prom.set_targets(targets(cluster))
    poll_for(lambda: not active(am, "MishardsNodeDown") and not active(am, "MishardsSegmentsUnderReplicated"),
             90, interval=0.2, what="the node-down and replica alerts to resolve")

    writer = int(ready_info(cluster, "writer")["pid"])
    assert not active(am, "MishardsNoWriter")
    os.kill(writer, signal.SIGSTOP)  # the writer stops answering: no node holds the writer epoch any more
    try:
        stopped = time.monotonic()
        limit = FOR_SECONDS + 2 * SCRAPE_SECONDS + NOTIFY_ALLOWANCE
        poll_for(lambda: active(am, "MishardsNoWriter"), limit, interval=0.1, what="MishardsNoWriter in Alertmanager")
        print(f"no-writer alert in Alertmanager {time.monotonic() - stopped:.1f} s after SIGSTOP (limit {limit:g} s)")
    finally:
        os.kill(writer, signal.SIGCONT)
    poll_for(lambda: not active(am, "MishardsNoWriter"), 60, interval=0.2, what="MishardsNoWriter to resolve")


def test_rules_evaluate_on_processes_with_workers(tmp_path: Path) -> None:
    """With ``--workers 2`` every process's samples carry a ``worker`` label: every rule still evaluates without
    error (no many-to-many matches), the metrics are all served, and the aggregated series name no worker."""
    up = started_with_data(tmp_path / "up", ["--workers", "2"])
    try:
        served = served_names(int(port) for port in up.info["metrics_ports"].values())
        assert not queried_names(rule_expressions()) - served - {"up"}
        with PrometheusServer(rule_groups(), scrape_interval=f"{SCRAPE_SECONDS:g}s") as prom:
            prom.set_targets(targets(up))
            poll_for(lambda: prom.query('mishards_proxy_replication_factor{worker="1"}'), 30, interval=0.2,
                     what="samples of the proxy's second worker in Prometheus")
            rules = all_rules_evaluated(prom)
            assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
            located = prom.query("max by (namespace, job, component, instance, pod, collection) "
                                 "(mishards_proxy_segments_under_replicated)")
            assert [r["metric"] for r in located] == [{"collection": "alerted", "component": "proxy",
                                                       "instance": "proxy", "job": "mishards"}]
            assert not {r["name"] for r in rules if r["state"] != "inactive"} & {
                "MishardsNodeDown", "MishardsNoWriter", "MishardsSegmentsUnavailable"}
    finally:
        up.stop()
