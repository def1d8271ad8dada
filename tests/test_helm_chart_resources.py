"""The Helm chart (helm/mishards), continued: replica counts and the HA profile, Services, probes, resources,
the shared volume, the catalog and metrics, on the same rendered value sets as tests/test_helm_chart.py (rendered
once per session by tests/support/helm.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.helm import (
    HA_VALUES,
    HEALTH_SERVICE,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Manifest,
    fetch_helm,
    load_settings,
    mishards_containers,
    of_kind,
    one,
    pod_labels,
    port_number,
    render,
    render_error,
    rendered_values,
    secret_value,
    workloads,
)


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


# ------------------------------------------------------------------------------------------- scaling, HA


@pytest.mark.parametrize("replicas", [1, 2, 7])
def test_readers_replicas_follow_values(helm: Path, replicas: int) -> None:
    manifests = render(helm, "--set", f"readers.replicas={replicas}")
    assert one(manifests, "Deployment", f"{RELEASE}-reader")["spec"]["replicas"] == replicas


def _workers(manifests: list[Manifest], kind: str, name: str) -> str | None:
    """The value after ``--workers`` in the mishards container of ``name`` (None without the flag)."""
    spec = one(manifests, kind, f"{RELEASE}-{name}")["spec"]["template"]["spec"]
    args = next(c["args"] for c in spec["containers"] if c["name"] in ("node", "proxy"))
    return str(args[args.index("--workers") + 1]) if "--workers" in args else None


@pytest.mark.parametrize(("reader_cpu", "proxy_cpu", "reader_workers", "proxy_workers"), [
    (None, None, "1", "1"),  # the defaults: 500m each
    ("2", "3500m", "2", "3"),
    ("1.5", "999m", "1", "1"),
    ("100m", "8", "1", "8"),
])
def test_workers_follow_the_cpu_request_by_default(helm: Path, reader_cpu: str | None, proxy_cpu: str | None,
                                                   reader_workers: str, proxy_workers: str) -> None:
    args = [a for side, cpu in (("readers", reader_cpu), ("proxy", proxy_cpu)) if cpu is not None
            for a in ("--set-string", f"{side}.resources.requests.cpu={cpu}")]
    manifests = render(helm, *args)
    assert _workers(manifests, "Deployment", "reader") == reader_workers
    assert _workers(manifests, "Deployment", "proxy") == proxy_workers
    assert _workers(manifests, "StatefulSet", "writer") is None, "the writer is one process"


def test_a_number_of_workers_overrides_the_cpu_request(helm: Path) -> None:
    manifests = render(helm, "--set-string", "readers.resources.requests.cpu=4", "--set", "readers.workers=3",
                       "--set", "proxy.workers=0")
    assert _workers(manifests, "Deployment", "reader") == "3"
    assert _workers(manifests, "Deployment", "proxy") == "0", "0: the process reads its cgroup quota"
    assert "readers.workers" in render_error(helm, "--set", "readers.workers=many")
    assert "proxy.workers" in render_error(helm, "--set", "proxy.workers=-1")


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
