"""The chart's TLS wiring (helm/mishards): cluster mTLS certificates (generated, cert-manager, an existing Secret)
reach every node and proxy as files and flags the real settings loaders accept; edge TLS and the anonymous role reach
the proxy; external databases are dialled over TLS with the Secrets given. Every rendered manifest is valid and the
values schema refuses misspelt values. The NetworkPolicies are checked in tests/test_helm_network_policy.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from coordinator.membership import parse_membership_uri
from tests.support.helm import (
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
    port_number,
    render_error,
)
from tests.support.helm_security import EXTERNAL_URI, SECURITY_VALUE_SETS, rendered_security

TLS_DIR = "/etc/mishards-tls"
SERVER_NAME = "mishards-cluster"
CERT_MANAGER_SPEC_KEYS = {"secretName", "secretTemplate", "commonName", "dnsNames", "duration", "renewBefore",
                          "privateKey", "usages", "issuerRef"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {name: rendered_security(name) for name in SECURITY_VALUE_SETS}


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
