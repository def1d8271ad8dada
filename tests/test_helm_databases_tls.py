"""The chart's MariaDB and etcd over TLS with the chart's own generated certificates: the rendered server command
lines (certificate paths laid out locally as the kubelet would mount them) run real mariadbd and etcd, and the
catalog and membership URIs the chart gives nodes and proxies connect through the project's own clients, while
plaintext clients and clients without the cluster certificate are refused.

Locally the servers are reached at 127.0.0.1, which their certificate does not name (in the cluster it names
<release>-mariadb / <release>-etcd, checked in test_helm_security.py), so the name check is pointed at the
certificate's name (etcd) or left out (MariaDB); the chain is always verified against the cluster CA.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pymysql
import pytest
import yaml

from coordinator.catalog import Catalog
from coordinator.etcd_client import EtcdClient
from coordinator.etcd_errors import EtcdError
from coordinator.membership import parse_membership_uri
from coordinator.tls import EtcdTls
from tests.support.certs import make_ca
from tests.support.helm import (
    RELEASE,
    Manifest,
    config_files,
    fetch_helm,
    mount_secrets,
    one,
    render,
    secret_value,
)
from tests.support.mariadb import APP_PASSWORD, APP_USER, MariaDBServer
from tests.support.waiting import free_port, poll_for, require_binary, terminate_process

TLS_DIR = "/etc/mishards-tls"


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return render(fetch_helm(), "--set", "membership.type=etcd")


@pytest.fixture(scope="module")
def client_files(manifests: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The proxy pod's mounted Secrets, laid out locally: {mountPath: local directory}."""
    proxy = one(manifests, "Deployment", f"{RELEASE}-proxy")
    return mount_secrets(manifests, proxy, proxy["spec"]["template"]["spec"]["containers"][0],
                         tmp_path_factory.mktemp("proxyfs"))


def localize(value: str, mapping: dict[str, str]) -> str:
    for prefix, local in mapping.items():
        value = value.replace(prefix + "/", local + "/")
    return value


def server(manifests: list[Manifest], name: str, root: Path) -> tuple[dict[str, Any], dict[str, str]]:
    workload = one(manifests, "StatefulSet", f"{RELEASE}-{name}")
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return container, mount_secrets(manifests, workload, container, root)


# ------------------------------------------------------------------------------------------------- MariaDB


@pytest.fixture(scope="module")
def chart_mariadb(manifests: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    container, files = server(manifests, "mariadb", tmp_path_factory.mktemp("mariadbfs"))
    tls_args = [localize(a, files) for a in container["args"] if a.startswith(("--ssl", "--require-secure"))]
    assert len(tls_args) == 4, container["args"]
    with MariaDBServer(extra_args=tls_args) as db:
        yield db


def test_the_catalog_uri_of_the_chart_reaches_its_mariadb_over_tls(
        manifests: list[Manifest], chart_mariadb: MariaDBServer, client_files: dict[str, str]) -> None:
    chart_uri = secret_value(manifests, f"{RELEASE}-catalog", "meta-uri")
    assert chart_uri is not None
    query = dict(parse_qsl(chart_uri.split("?", 1)[1]))
    assert set(query) == {"charset", "ssl_ca"}
    local_ca = localize(query["ssl_ca"], client_files)
    catalog = Catalog(chart_mariadb.uri + "&" + urlencode({"ssl_ca": local_ca, "ssl_check_hostname": "false"}))
    try:
        catalog.ensure_schema(attempts=1)
        with catalog.engine.connect() as conn:
            cipher = conn.exec_driver_sql("SHOW STATUS LIKE 'Ssl_cipher'").fetchone()
        assert cipher is not None and cipher[1], "the catalog connection is not encrypted"
    finally:
        catalog.close()


def test_the_chart_mariadb_refuses_plaintext_and_a_foreign_ca(chart_mariadb: MariaDBServer, tmp_path: Path) -> None:
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=chart_mariadb.port, user=APP_USER, password=APP_PASSWORD,
                        ssl_disabled=True, connect_timeout=5).close()
    foreign = make_ca(tmp_path, "foreign")
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        pymysql.connect(host="127.0.0.1", port=chart_mariadb.port, user=APP_USER, password=APP_PASSWORD,
                        ssl_ca=str(foreign.cert_path), ssl_verify_cert=True, ssl_verify_identity=False,
                        connect_timeout=5).close()


# ---------------------------------------------------------------------------------------------------- etcd


@pytest.fixture(scope="module")
def etcd(manifests: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """The chart's etcd command line on local ports; yields (client port, plaintext health port)."""
    root = tmp_path_factory.mktemp("etcdfs")
    container, files = server(manifests, "etcd", root)
    client, health, peer = free_port(), free_port(), free_port()
    local = {"data-dir": str(root / "data"), "listen-client-urls": f"https://127.0.0.1:{client}",
             "advertise-client-urls": f"https://127.0.0.1:{client}",
             "listen-metrics-urls": f"http://127.0.0.1:{health}"}
    command = [require_binary("etcd", "etcd-server")]
    for arg in container["command"][1:]:
        name = arg.removeprefix("--").split("=", 1)[0]
        command.append(f"--{name}={local[name]}" if name in local else localize(arg, files))
    assert {"--client-cert-auth", f"--listen-client-urls=https://127.0.0.1:{client}"} <= set(command), command
    command += [f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}"]
    log = (root / "etcd.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        probe = container["readinessProbe"]["httpGet"]
        assert probe["path"] == "/health" and probe["port"] == "health"

        def healthy() -> bool:
            assert proc.poll() is None, f"etcd exited: {(root / 'etcd.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/health", timeout=2) as reply:
                    return bool(json.load(reply).get("health") == "true")
            except OSError:
                return False

        poll_for(healthy, timeout=30, what="the chart's etcd to answer its plaintext health probe")
        yield client, health
    finally:
        terminate_process(proc, 10, name="etcd")
        log.close()


def test_the_membership_uri_of_the_chart_reaches_its_etcd_with_the_cluster_certificate(
        manifests: list[Manifest], etcd: tuple[int, int], client_files: dict[str, str]) -> None:
    client_port, _ = etcd
    membership = yaml.safe_load(config_files(manifests)["proxy.yaml"])["proxy"]["membership"]
    chart_config = parse_membership_uri(membership)
    assert chart_config.endpoints == ((f"{RELEASE}-etcd", 2379),)
    uri = localize(membership.replace(f"{RELEASE}-etcd:2379", f"127.0.0.1:{client_port}"), client_files)
    config = parse_membership_uri(f"{uri}&tls_server_name={RELEASE}-etcd")
    assert config.etcd_tls is not None and config.etcd_tls.cert
    with EtcdClient(config.endpoints, tls=config.etcd_tls) as client:
        client.put(f"{config.prefix}/probe", b"over tls")
        assert client.get(f"{config.prefix}/probe") == b"over tls"
    # Only the CA, no client certificate: etcd refuses (--client-cert-auth), as it refuses plaintext.
    for tls in (EtcdTls(config.etcd_tls.ca, server_name=f"{RELEASE}-etcd"), None):
        with EtcdClient(config.endpoints, tls=tls, timeout=2.0, connect_timeout=1.0) as client, \
                pytest.raises(EtcdError):
            client.get(f"{config.prefix}/probe")
