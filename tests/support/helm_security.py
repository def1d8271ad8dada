"""The value sets the chart's security tests render (tests/test_helm_security.py,
tests/test_helm_network_policy.py): cluster mTLS from cert-manager or existing Secrets, edge TLS, etcd membership,
TLS and policies off, external databases over TLS. Each set is rendered once per test session.
"""

from __future__ import annotations

import functools

from tests.support.helm import HA_VALUES, Manifest, fetch_helm, render, rendered_values

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
SECURITY_VALUE_SETS = {"default": [], "cert-manager": CERT_MANAGER, "existing": EXISTING, "etcd": ETCD,
                       "ha": ["-f", str(HA_VALUES)], "off": OFF, "external-tls": EXTERNAL_TLS}


@functools.cache
def _rendered(name: str) -> tuple[Manifest, ...]:
    return tuple(render(fetch_helm(), *SECURITY_VALUE_SETS[name]))


def rendered_security(name: str) -> list[Manifest]:
    """The manifests of one of SECURITY_VALUE_SETS, rendered once per test session (the list is the caller's);
    the default and HA values share the chart tests' renders (tests/support/helm.py)."""
    return rendered_values(name) if name in ("default", "ha") else list(_rendered(name))
