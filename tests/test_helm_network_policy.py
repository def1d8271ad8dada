"""The chart's NetworkPolicies (helm/mishards), evaluated in Python over the rendered pods: each port is reachable
from exactly the pods that use it, every pod of the release is selected by one policy, egress leaves the cluster
only where the values point, and the values that widen or restrict the policies do what they say.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.helm import (
    HA_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    Manifest,
    fetch_helm,
    kubernetes_validate,
    of_kind,
    one,
    pod_labels,
    render,
)
from tests.support.helm_security import rendered_security
from tests.support.netpol import Endpoint, allowed


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {name: rendered_security(name) for name in ("default", "etcd", "ha", "existing")}


def actors(manifests: list[Manifest]) -> dict[str, Endpoint]:
    """Every rendered pod template, plus pods and addresses around the release."""
    found = {w["metadata"]["name"].removeprefix(f"{RELEASE}-"): Endpoint(
        w["metadata"]["name"], NAMESPACE, pod_labels(w), {"kubernetes.io/metadata.name": NAMESPACE})
        for w in manifests if w["kind"] in ("Deployment", "StatefulSet")}
    found["client"] = Endpoint("client", "apps", {"app": "shop"}, {"kubernetes.io/metadata.name": "apps"})
    found["neighbour"] = Endpoint("neighbour", NAMESPACE, {"app": "other"},
                                  {"kubernetes.io/metadata.name": NAMESPACE})
    found["prometheus"] = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"},
                                   {"kubernetes.io/metadata.name": "monitoring"})
    found["outside"] = Endpoint("outside")
    return found


def reachers(manifests: list[Manifest], target: str, port: int) -> set[str]:
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    everyone = actors(manifests)
    return {name for name, src in everyone.items()
            if src.is_pod and name != target and allowed(policies, src, everyone[target], port)}


def reader_workers(manifests: list[Manifest]) -> str:
    spec = one(manifests, "Deployment", f"{RELEASE}-reader")["spec"]["template"]["spec"]
    args = next(c["args"] for c in spec["containers"] if c["name"] == "node")
    return str(args[args.index("--workers") + 1])


@pytest.mark.parametrize("name", ["default", "etcd", "ha", "existing"])
def test_each_port_is_reachable_from_exactly_the_pods_that_use_it(rendered: dict[str, list[Manifest]],
                                                                  name: str) -> None:
    manifests = rendered[name]
    pods = set(actors(manifests))
    databases = {"mariadb", "etcd"} & pods
    # Clients, Prometheus and anything else may call the proxies; the cluster's own pods never do.
    for port in (19530, 19121):
        assert reachers(manifests, "proxy", port) == pods - {"proxy", "writer", "reader", "outside", *databases}
    # Readers with several workers (the HA profile: a CPU request of 2, readers.workers auto) open each worker's
    # own port (readers.workerPorts onwards, one per worker) to the proxies, which dial them; nothing else.
    workers = int(reader_workers(manifests))
    assert (name == "ha") == (workers > 1)
    for node in ("writer", "reader"):
        assert reachers(manifests, node, 19530) == {"proxy"}, f"{node} gRPC"
        assert reachers(manifests, node, 9091) == {"prometheus"}, f"{node} metrics"
        assert reachers(manifests, node, 19531) == set(), f"{node} health port"
        for port in range(19540, 19540 + workers + 1):
            opened = {"proxy"} if workers > 1 and port < 19540 + workers else set()
            assert reachers(manifests, node, port) == opened, f"{node} worker port {port}"
    assert reachers(manifests, "proxy", 9091) == {"prometheus"}
    assert reachers(manifests, "proxy", 19531) == set()
    for database, port in (("mariadb", 3306), ("etcd", 2379)):
        if database in pods:
            assert reachers(manifests, database, port) == {"proxy", "writer", "reader"}, database


@pytest.mark.parametrize("name", ["default", "etcd", "ha", "existing"])
def test_every_pod_of_the_release_is_selected_by_one_policy(rendered: dict[str, list[Manifest]], name: str) -> None:
    manifests = rendered[name]
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    for workload in manifests:
        if workload["kind"] not in ("Deployment", "StatefulSet"):
            continue
        labels = pod_labels(workload)
        selecting = [p["metadata"]["name"] for p in policies
                     if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert len(selecting) == 1, f"{workload['metadata']['name']}: {selecting}"


def _outside_ports(manifests: list[Manifest], source: str, ports: list[tuple[int, str]]) -> set[tuple[int, str]]:
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    everyone = actors(manifests)
    return {(port, proto) for port, proto in ports
            if allowed(policies, everyone[source], everyone["outside"], port, proto)}


CANDIDATES = [(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (3306, "TCP"), (2379, "TCP"), (4317, "TCP"),
              (22, "TCP"), (19530, "TCP"), (80, "TCP")]


def test_egress_leaves_the_cluster_only_where_the_values_point(rendered: dict[str, list[Manifest]]) -> None:
    ha_values = yaml.safe_load(HA_VALUES.read_text())
    etcd_ports = {int(e.rsplit(":", 1)[1]) for e in ha_values["etcd"]["external"]["endpoints"]}
    expected = {
        # Kubernetes membership: the API server; MariaDB in the release.
        "default": {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")},
        # etcd in the release (a pod), tracing to its collector.
        "etcd": {(53, "UDP"), (53, "TCP"), (4317, "TCP")},
        # External catalog and etcd, no API server.
        "ha": {(53, "UDP"), (53, "TCP"), (3306, "TCP")} | {(p, "TCP") for p in etcd_ports},
    }
    for name, ports in expected.items():
        for source in ("proxy", "writer", "reader"):
            assert _outside_ports(rendered[name], source, CANDIDATES) == ports, f"{name}: {source}"
        for database in {"mariadb", "etcd"} & set(actors(rendered[name])):
            assert _outside_ports(rendered[name], database, CANDIDATES) == {(53, "UDP"), (53, "TCP")}


def test_proxies_dial_nodes_and_databases_but_nodes_dial_no_node(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["etcd"]
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    pods = actors(manifests)
    assert allowed(policies, pods["proxy"], pods["reader"], 19530)
    assert allowed(policies, pods["proxy"], pods["writer"], 19530)
    assert not allowed(policies, pods["reader"], pods["writer"], 19530)
    assert not allowed(policies, pods["writer"], pods["reader"], 19530)
    for source in ("proxy", "writer", "reader"):
        assert allowed(policies, pods[source], pods["etcd"], 2379)
        assert allowed(policies, pods[source], pods["mariadb"], 3306)
        assert not allowed(policies, pods[source], pods["mariadb"], 2379)


def test_restricted_clients_and_extra_database_peers(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"networkPolicy": {
        "clients": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}},
                    {"ipBlock": {"cidr": "203.0.113.0/24"}}],
        "databases": [{"podSelector": {"matchLabels": {"app": "backup"}}}],
    }, "proxy": {"service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}}}))
    manifests = render(fetch_helm(), "-f", str(values))
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    pods = actors(manifests)
    backup = Endpoint("backup", NAMESPACE, {"app": "backup"}, {"kubernetes.io/metadata.name": NAMESPACE})
    assert allowed(policies, pods["client"], pods["proxy"], 19530)
    assert not allowed(policies, pods["neighbour"], pods["proxy"], 19530)
    assert allowed(policies, backup, pods["mariadb"], 3306)
    assert not allowed(policies, backup, pods["reader"], 19530)
    assert allowed(policies, pods["outside"], pods["proxy"], 19530)  # the ipBlock (the outside is one address)
    assert not allowed(policies, pods["outside"], pods["reader"], 19530)
    # Source addresses survive the load balancer only with the Local traffic policy.
    assert one(manifests, "Service", RELEASE)["spec"]["externalTrafficPolicy"] == "Local"
    kubernetes_validate.validate(one(manifests, "Service", RELEASE), KUBE_VERSION, strict=True)


def test_the_policy_evaluator_sees_an_opened_port(rendered: dict[str, list[Manifest]]) -> None:
    """Guards the checks above against passing vacuously: a node policy without `from` lets anyone in."""
    manifests = [dict(m) for m in rendered["default"]]
    nodes = next(m for m in manifests if m["kind"] == "NetworkPolicy" and m["metadata"]["name"].endswith("-nodes"))
    opened = {**nodes, "spec": {**nodes["spec"], "ingress": [{"ports": [{"port": 19530, "protocol": "TCP"}]}]}}
    manifests[manifests.index(nodes)] = opened
    assert reachers(rendered["default"], "reader", 19530) == {"proxy"}
    assert reachers(manifests, "reader", 19530) == {"proxy", "client", "neighbour", "prometheus"}


def test_readers_with_several_workers_open_their_worker_ports_to_proxies_only(
        rendered: dict[str, list[Manifest]]) -> None:
    """With readers.workers > 1 the proxy sends searches to each worker's own port: readers.workerPorts onwards,
    one per worker (256 when the pod decides the count, workers 0), open to the proxies and to nobody else."""
    helm = fetch_helm()
    for values, first, count in ((["--set", "readers.workers=2"], 19540, 2),
                                 (["--set", "readers.workers=3", "--set", "readers.workerPorts=30000"], 30000, 3),
                                 (["--set", "readers.workers=0"], 19540, 256)):
        manifests = render(helm, *values)
        args = next(c["args"] for c in one(manifests, "Deployment", f"{RELEASE}-reader")["spec"]["template"]["spec"]
                    ["containers"] if c["name"] == "node")
        assert args[args.index("--worker-ports") + 1] == str(first)
        for node in ("reader", "writer"):  # one policy for every node pod
            assert reachers(manifests, node, first) == {"proxy"}
            assert reachers(manifests, node, first + count - 1) == {"proxy"}
            assert reachers(manifests, node, first + count) == set()
            assert reachers(manifests, node, first - 1) == set()
        assert reachers(manifests, "reader", 19530) == {"proxy"}
        assert reachers(manifests, "reader", 9091) == {"prometheus"}
    assert reachers(rendered["default"], "reader", 19540) == set()
    assert "--worker-ports" not in next(c["args"] for c in one(rendered["default"], "Deployment", f"{RELEASE}-reader")
                                        ["spec"]["template"]["spec"]["containers"] if c["name"] == "node")
