"""The chart's security wiring (helm/mishards): cluster mTLS certificates (generated, cert-manager, an existing
Secret) reach every node and proxy as files and flags the real settings loaders accept; edge TLS and the anonymous
role reach the proxy; the NetworkPolicies, evaluated in Python over the rendered pods, let exactly the system's real
connections through. Each set of values is rendered once by the real helm.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from coordinator.membership import parse_membership_uri
from tests.support.helm import (
    HA_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    Manifest,
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
    rendered_values,
)
from tests.support.netpol import Endpoint, allowed

TLS_DIR = "/etc/mishards-tls"
SERVER_NAME = "mishards-cluster"
CERT_MANAGER = ["--set", "tls.cluster.certManager.enabled=true", "--set", "tls.cluster.certManager.issuerRef.name=ca",
                "--set", "tls.edge.enabled=true", "--set", "tls.edge.certManager.enabled=true",
                "--set", "tls.edge.certManager.issuerRef.name=public", "--set",
                "tls.edge.certManager.issuerRef.kind=ClusterIssuer",
                "--set", "tls.edge.certManager.dnsNames={vectors.example.com}"]
EXTERNAL_URI = "mysql+pymysql://u:p@mysql.db:3306/milvus?charset=utf8mb4"
EXISTING = ["--set", "tls.cluster.existingSecret=my-cluster-tls", "--set", "tls.databases.existingSecret=my-db-tls",
            "--set", "tls.edge.enabled=true",
            "--set", "tls.edge.existingSecret=my-edge-tls", "--set", "tls.edge.clientCA.existingSecret=my-clients",
            "--set", "tls.edge.clientCA.key=bundle.pem", "--set", "auth.allowAnonymous=none"]
ETCD = ["--set", "membership.type=etcd", "--set", "writer.standby=true",
        "--set", "tracing.otlpEndpoint=http://jaeger-collector.tracing:4317"]
OFF = ["--set", "tls.cluster.enabled=false", "--set", "networkPolicy.enabled=false",
       "--set", "auth.allowAnonymous=readonly"]
EXTERNAL_TLS = ["-f", str(HA_VALUES), "--set", "etcd.external.tls.existingSecret=etcd-ca",
                "--set", "etcd.external.tls.clientCert=true", "--set", "etcd.external.tls.serverName=etcd.infra",
                "--set", "mysql.external.existingSecret=", "--set", f"mysql.external.uri={EXTERNAL_URI}",
                "--set", "mysql.external.tlsSecret=db-ca"]
VALUE_SETS = {"default": [], "cert-manager": CERT_MANAGER, "existing": EXISTING, "etcd": ETCD,
              "ha": ["-f", str(HA_VALUES)], "off": OFF, "external-tls": EXTERNAL_TLS}
CERT_MANAGER_SPEC_KEYS = {"secretName", "secretTemplate", "commonName", "dnsNames", "duration", "renewBefore",
                          "privateKey", "usages", "issuerRef"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    helm = fetch_helm()  # the default and HA values are rendered once per session (tests/support/helm.py)
    return {name: rendered_values(name) if name in ("default", "ha") else render(helm, *args)
            for name, args in VALUE_SETS.items()}


def certificates(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests
            if (m["apiVersion"], m["kind"]) == ("cert-manager.io/v1", "Certificate")}


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def mounted_secret(workload: Manifest, container: dict[str, Any], path: str) -> tuple[str, str]:
    """(Secret name, key) that the file ``path`` in ``container`` comes from."""
    pod = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            assert "subPath" not in mount, "a subPath mount never sees a renewed Secret"
            secret = volumes[mount["name"]]["secret"]
            relative = path[len(prefix):]
            key = next(i["key"] for i in secret["items"] if i["path"] == relative)
            return secret["secretName"], key
    raise AssertionError(f"{path} is on no mounted volume")


# ------------------------------------------------------------------------------------------------ schemas


def test_every_manifest_is_valid(rendered: dict[str, list[Manifest]]) -> None:
    kinds = set()
    for name, manifests in rendered.items():
        for manifest in manifests:
            what = f"{name}: {manifest['kind']} {manifest['metadata']['name']}"
            kinds.add(manifest["kind"])
            if manifest["kind"] == "Certificate":  # a cert-manager CRD: no schema ships with kubernetes-validate
                assert manifest["apiVersion"] == "cert-manager.io/v1", what
                assert set(manifest["spec"]) <= CERT_MANAGER_SPEC_KEYS, what
                assert set(manifest["spec"]["issuerRef"]) <= {"name", "kind", "group"}, what
                continue
            if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
                continue
            try:
                kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{what}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert {"NetworkPolicy", "Certificate", "Secret", "Deployment", "StatefulSet"} <= kinds


def test_values_schema_refuses_misspelt_and_invalid_values() -> None:
    helm = fetch_helm()
    for args, message in [
        (["--set", "tls.cluster.enabeld=true"], "enabeld"),
        (["--set", "auth.allowAnonymous=everyone"], "allowAnonymous"),
        (["--set", "networkPolicy.enabled=yes"], "networkPolicy.enabled"),
        (["--set", "tls.edge.clientCA.existingSecret=x", "--set", "networkPolicy.metricz=[]"], "metricz"),
    ]:
        assert message in render_error(helm, *args), args


def test_contradictory_or_incomplete_tls_values_fail_clearly() -> None:
    helm = fetch_helm()
    both = render_error(helm, "--set", "tls.cluster.existingSecret=x", "--set", "tls.cluster.certManager.enabled=true",
                        "--set", "tls.cluster.certManager.issuerRef.name=ca")
    assert "not both" in both
    assert "issuerRef.name" in render_error(helm, "--set", "tls.cluster.certManager.enabled=true")
    assert "tls.edge.existingSecret" in render_error(helm, "--set", "tls.edge.enabled=true")


# -------------------------------------------------------------------------------------------- certificates


@pytest.mark.parametrize("name", ["default", "cert-manager", "existing", "etcd", "ha"])
def test_every_node_and_proxy_gets_the_cluster_certificate(rendered: dict[str, list[Manifest]], name: str,
                                                           tmp_path: Path) -> None:
    manifests = rendered[name]
    expected_secret = "my-cluster-tls" if name == "existing" else f"{RELEASE}-cluster-tls"
    seen = set()
    for workload, container in mishards_containers(manifests):
        args = list(container["args"])
        where = f"{name}: {workload['metadata']['name']}"
        settings = load_settings(manifests, workload, container, tmp_path)
        files = {"cert": settings.cluster_tls_cert, "key": settings.cluster_tls_key, "ca": settings.cluster_tls_ca}
        assert files == {"cert": f"{TLS_DIR}/cluster/tls.crt", "key": f"{TLS_DIR}/cluster/tls.key",
                         "ca": f"{TLS_DIR}/cluster/ca.crt"}, where
        assert settings.cluster_tls_server_name == SERVER_NAME == flag(args, "--cluster-tls-server-name"), where
        keys = {kind: mounted_secret(workload, container, path) for kind, path in files.items()}
        assert keys == {"cert": (expected_secret, "tls.crt"), "key": (expected_secret, "tls.key"),
                        "ca": (expected_secret, "ca.crt")}, where
        seen.add(container["name"] if container["name"] == "proxy" else settings.role)
    assert seen == {"proxy", "rw", "ro"}


def _decode(secret: Manifest, key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _check_signed(cert: x509.Certificate, ca: x509.Certificate) -> None:
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    assert cert.issuer == ca.subject and cert.signature_hash_algorithm is not None
    ca_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)


def _dns_names(cert: x509.Certificate) -> set[str]:
    return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))


def generated_secrets(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {s["metadata"]["labels"]["mishards.io/certificate"]: s for s in of_kind(manifests, "Secret").values()
            if "mishards.io/certificate" in s["metadata"]["labels"]}


def test_default_generates_one_ca_and_certificates_it_signed(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["default"]
    assert not certificates(manifests)
    secrets = generated_secrets(manifests)
    assert {k: s["metadata"]["name"] for k, s in secrets.items()} == {
        "ca": f"{RELEASE}-cluster-ca", "cluster": f"{RELEASE}-cluster-tls", "databases": f"{RELEASE}-databases-tls"}
    ca = x509.load_pem_x509_certificate(_decode(secrets["ca"], "ca.crt"))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca_key = serialization.load_pem_private_key(_decode(secrets["ca"], "ca.key"), password=None)
    assert ca_key.public_key().public_numbers() == ca.public_key().public_numbers()  # type: ignore[union-attr]
    for name, client in (("cluster", True), ("databases", False)):
        secret = secrets[name]
        assert _decode(secret, "ca.crt") == _decode(secrets["ca"], "ca.crt")
        cert = x509.load_pem_x509_certificate(_decode(secret, "tls.crt"))
        key = serialization.load_pem_private_key(_decode(secret, "tls.key"), password=None)
        _check_signed(cert, ca)
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert ExtendedKeyUsageOID.SERVER_AUTH in usages, name
        if client:
            assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    assert {SERVER_NAME, f"{RELEASE}-nodes", f"*.{RELEASE}-nodes.{NAMESPACE}.svc", RELEASE} <= _dns_names(
        x509.load_pem_x509_certificate(_decode(secrets["cluster"], "tls.crt")))
    assert {f"{RELEASE}-mariadb", f"{RELEASE}-etcd"} <= _dns_names(
        x509.load_pem_x509_certificate(_decode(secrets["databases"], "tls.crt")))
    # The CA's key is mounted nowhere.
    for workload in manifests:
        if workload["kind"] in ("Deployment", "StatefulSet"):
            secret_volumes = {v["secret"]["secretName"] for v in workload["spec"]["template"]["spec"].get(
                "volumes", []) if "secret" in v}
            assert f"{RELEASE}-cluster-ca" not in secret_volumes, workload["metadata"]["name"]


def test_the_chart_mariadb_serves_tls_and_the_catalog_uri_verifies_it(rendered: dict[str, list[Manifest]],
                                                                      tmp_path: Path) -> None:
    manifests = rendered["default"]
    mariadb = one(manifests, "StatefulSet", f"{RELEASE}-mariadb")
    container = mariadb["spec"]["template"]["spec"]["containers"][0]
    options = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    assert options["require-secure-transport"] == "ON"
    for option, key in (("ssl-cert", "tls.crt"), ("ssl-key", "tls.key"), ("ssl-ca", "ca.crt")):
        assert mounted_secret(mariadb, container, options[option]) == (f"{RELEASE}-databases-tls", key)
    for workload, proxy_or_node in mishards_containers(manifests):
        uri = load_settings(manifests, workload, proxy_or_node, tmp_path).meta_uri
        ca_file = dict(p.split("=", 1) for p in uri.split("?", 1)[1].split("&"))["ssl_ca"]
        assert mounted_secret(workload, proxy_or_node, ca_file) == (f"{RELEASE}-cluster-tls", "ca.crt")


def test_the_chart_etcd_asks_for_the_cluster_certificate(rendered: dict[str, list[Manifest]],
                                                         tmp_path: Path) -> None:
    manifests = rendered["etcd"]
    etcd = one(manifests, "StatefulSet", f"{RELEASE}-etcd")
    container = etcd["spec"]["template"]["spec"]["containers"][0]
    options = dict([*a.removeprefix("--").split("=", 1), ""][:2] for a in container["command"][1:])
    assert options["listen-client-urls"].startswith("https://") and "client-cert-auth" in options
    for option, key in (("cert-file", "tls.crt"), ("key-file", "tls.key"), ("trusted-ca-file", "ca.crt")):
        assert mounted_secret(etcd, container, options[option]) == (f"{RELEASE}-databases-tls", key)
    health = port_number(container, "health")
    assert options["listen-metrics-urls"] == f"http://0.0.0.0:{health}"
    assert all(container[p]["httpGet"]["port"] == "health" for p in ("startupProbe", "livenessProbe", "readinessProbe"))
    for workload, proxy_or_node in mishards_containers(manifests):
        config = parse_membership_uri(load_settings(manifests, workload, proxy_or_node, tmp_path).membership)
        assert config.etcd_tls is not None, workload["metadata"]["name"]
        files = {"ca.crt": config.etcd_tls.ca, "tls.crt": config.etcd_tls.cert, "tls.key": config.etcd_tls.key}
        for key, path in files.items():
            assert mounted_secret(workload, proxy_or_node, path) == (f"{RELEASE}-cluster-tls", key)


def test_cert_manager_mode_renders_certificates_and_no_generated_secret(
        rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["cert-manager"]
    assert f"{RELEASE}-cluster-tls" not in of_kind(manifests, "Secret")
    found = certificates(manifests)
    assert set(found) == {f"{RELEASE}-cluster", f"{RELEASE}-databases", f"{RELEASE}-edge"}
    databases = found[f"{RELEASE}-databases"]["spec"]
    assert f"{RELEASE}-mariadb" in databases["dnsNames"] and "client auth" not in databases["usages"]
    cluster, edge = found[f"{RELEASE}-cluster"]["spec"], found[f"{RELEASE}-edge"]["spec"]
    assert cluster["secretName"] == f"{RELEASE}-cluster-tls"
    assert cluster["issuerRef"] == {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert {"server auth", "client auth"} <= set(cluster["usages"])
    assert SERVER_NAME in cluster["dnsNames"]
    assert edge["issuerRef"]["kind"] == "ClusterIssuer"
    assert edge["dnsNames"] == ["vectors.example.com"]
    assert "client auth" not in edge["usages"]
    proxy = one(manifests, "Deployment", f"{RELEASE}-proxy")
    container = proxy["spec"]["template"]["spec"]["containers"][0]
    assert mounted_secret(proxy, container, flag(container["args"], "--tls-cert") or "") == (
        edge["secretName"], "tls.crt")


def test_existing_secrets_render_no_certificate_and_no_secret(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["existing"]
    assert not certificates(manifests)
    assert not generated_secrets(manifests)
    assert one(manifests, "StatefulSet", f"{RELEASE}-mariadb")["spec"]["template"]["spec"]["volumes"][-1][
        "secret"]["secretName"] == "my-db-tls"


def test_edge_tls_and_the_anonymous_role_reach_the_proxy(rendered: dict[str, list[Manifest]],
                                                          tmp_path: Path) -> None:
    manifests = rendered["existing"]
    for workload, container in mishards_containers(manifests):
        settings = load_settings(manifests, workload, container, tmp_path)
        assert settings.allow_anonymous == "none"
        if container["name"] != "proxy":
            assert (settings.tls_cert, settings.tls_key) == ("", ""), "nodes serve no client-facing TLS"
            continue
        assert mounted_secret(workload, container, settings.tls_cert) == ("my-edge-tls", "tls.crt")
        assert mounted_secret(workload, container, settings.tls_key) == ("my-edge-tls", "tls.key")
        assert mounted_secret(workload, container, settings.tls_client_ca) == ("my-clients", "bundle.pem")
        # The kubelet cannot do (m)TLS: every probe goes to the plaintext health port.
        health = port_number(container, "health")
        assert all(container[p]["grpc"]["port"] == health for p in ("startupProbe", "livenessProbe", "readinessProbe"))


def test_without_cluster_tls_no_flags_mounts_or_secrets(rendered: dict[str, list[Manifest]],
                                                        tmp_path: Path) -> None:
    manifests = rendered["off"]
    assert not of_kind(manifests, "NetworkPolicy")
    assert f"{RELEASE}-cluster-tls" not in of_kind(manifests, "Secret")
    for workload, container in mishards_containers(manifests):
        settings = load_settings(manifests, workload, container, tmp_path)
        assert (settings.cluster_tls_cert, settings.cluster_tls_ca, settings.allow_anonymous) == ("", "", "readonly")
        assert not [m for m in container["volumeMounts"] if m["mountPath"].startswith(TLS_DIR)]
    # The default anonymous role is the processes' own default: no flag at all.
    for _, container in mishards_containers(rendered["default"]):
        assert "--allow-anonymous" not in container["args"]


# ------------------------------------------------------------------------------------------ NetworkPolicies


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


@pytest.mark.parametrize("name", ["default", "etcd", "ha", "existing"])
def test_each_port_is_reachable_from_exactly_the_pods_that_use_it(rendered: dict[str, list[Manifest]],
                                                                  name: str) -> None:
    manifests = rendered[name]
    pods = set(actors(manifests))
    databases = {"mariadb", "etcd"} & pods
    # Clients, Prometheus and anything else may call the proxies; the cluster's own pods never do.
    for port in (19530, 19121):
        assert reachers(manifests, "proxy", port) == pods - {"proxy", "writer", "reader", "outside", *databases}
    for node in ("writer", "reader"):
        assert reachers(manifests, node, 19530) == {"proxy"}, f"{node} gRPC"
        assert reachers(manifests, node, 9091) == {"prometheus"}, f"{node} metrics"
        assert reachers(manifests, node, 19531) == set(), f"{node} health port: the kubelet only"
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
    """With readers.workers > 1 the proxy sends searches to each worker's own port (a free port picked at start)."""
    manifests = render(fetch_helm(), "--set", "readers.workers=2")
    assert reachers(manifests, "reader", 41234) == {"proxy"}
    assert reachers(manifests, "reader", 19530) == {"proxy"}
    assert reachers(manifests, "reader", 9091) == {"prometheus", "proxy"}
    assert reachers(manifests, "writer", 41234) == {"proxy"}  # one policy for every node pod
    assert reachers(rendered["default"], "reader", 41234) == set()


def test_external_catalog_and_etcd_over_tls(rendered: dict[str, list[Manifest]], tmp_path: Path) -> None:
    manifests = rendered["external-tls"]
    for workload, container in mishards_containers(manifests):
        settings = load_settings(manifests, workload, container, tmp_path)
        base, _, query = settings.meta_uri.partition("&ssl_ca=")
        assert base == EXTERNAL_URI
        assert mounted_secret(workload, container, query) == ("db-ca", "ca.crt")
        tls = parse_membership_uri(settings.membership).etcd_tls
        assert tls is not None and tls.server_name == "etcd.infra"
        assert {mounted_secret(workload, container, f) for f in (tls.ca, tls.cert, tls.key)} == {
            ("etcd-ca", "ca.crt"), ("etcd-ca", "tls.crt"), ("etcd-ca", "tls.key")}
    # Without those Secrets the external databases are dialled as before.
    for workload, container in mishards_containers(rendered["ha"]):
        assert parse_membership_uri(load_settings(rendered["ha"], workload, container, tmp_path).membership
                                    ).etcd_tls is None
