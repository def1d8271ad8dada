"""coordinator/tls.py without servers: settings checks, files followed on disk, the dialer's channel renewal, the
primary's private socket path, and what a call's peer proved."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from coordinator import tls, tls_files, tls_watch
from mishards.cluster import Cluster
from mishards.settings import ProxySettings
from node.settings import NodeSettings
from tests.support.certs import TestPki, issue, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("unitpki"), "unit")


def test_edge_and_cluster_settings_are_complete_or_refused() -> None:
    assert tls.edge_tls("", "") is None
    assert tls.edge_tls("c", "k") == tls.EdgeTls("c", "k")
    assert tls.edge_tls("c", "k", "ca").mutual  # type: ignore[union-attr]
    for incomplete in (("c", ""), ("", "k"), ("", "", "ca")):
        with pytest.raises(tls.TlsConfigError, match="--tls-cert and --tls-key"):
            tls.edge_tls(*incomplete)
    assert tls.cluster_tls("", "", "") is None
    with pytest.raises(tls.TlsConfigError, match="all of"):
        tls.cluster_tls("c", "k", "")
    with pytest.raises(tls.TlsConfigError, match="server-name needs"):
        tls.cluster_tls("", "", "", "mishards-cluster")


def test_a_port_is_edge_or_cluster_never_both() -> None:
    edge, cluster = tls.EdgeTls("e.crt", "e.key", "clients.crt"), tls.ClusterTls("c.crt", "c.key", "ca.crt")
    assert tls.listening_tls(None, None) is None
    assert tls.listening_tls(edge, None) == tls.ServerTls("e.crt", "e.key", "clients.crt", True)
    assert tls.listening_tls(tls.EdgeTls("e.crt", "e.key"), None) == tls.ServerTls("e.crt", "e.key", "", False)
    assert tls.listening_tls(None, cluster) == tls.ServerTls("c.crt", "c.key", "ca.crt", True)
    with pytest.raises(tls.TlsConfigError, match="cannot both be set on a node"):
        tls.listening_tls(edge, cluster)
    with pytest.raises(ValueError, match="cannot both be set"):
        NodeSettings(tls_cert="a", tls_key="b", cluster_tls_cert="c", cluster_tls_key="d", cluster_tls_ca="e")
    with pytest.raises(ValueError, match="all of"):
        ProxySettings(membership="static://127.0.0.1:1=rw", cluster_tls_cert="c")
    # the proxy runs both: edge TLS to its clients, the cluster certificate towards the nodes
    both = ProxySettings(membership="static://127.0.0.1:1=rw", tls_cert="a", tls_key="b", cluster_tls_cert="c",
                         cluster_tls_key="d", cluster_tls_ca="e")
    assert both.edge_tls is not None and both.cluster_tls is not None


def test_only_a_node_with_cluster_mtls_trusts_verified_peers_as_internal() -> None:
    edge, cluster = tls.EdgeTls("e", "k", "ca"), tls.ClusterTls("c", "k", "ca")
    assert tls.peer_trust(None, cluster).cluster
    assert not tls.peer_trust(edge, None).cluster
    assert not tls.peer_trust(None, None).cluster


def test_check_server_tls_names_a_missing_file_and_a_mismatched_pair(pki: TestPki, tmp_path: Path) -> None:
    tls.check_server_tls(tls.ServerTls(str(pki.server.cert_path), str(pki.server.key_path), str(pki.ca.cert_path)))
    with pytest.raises(tls.TlsConfigError, match="cannot read"):
        tls.check_server_tls(tls.ServerTls(str(tmp_path / "absent.crt"), str(pki.server.key_path)))
    with pytest.raises(tls.TlsConfigError, match="certificate"):
        tls.check_server_tls(tls.ServerTls(str(pki.server.cert_path), str(pki.client.key_path)))


def _replace(source: Path, target: Path) -> None:
    """Replace ``target`` by a copy of ``source`` atomically (a new inode, as a Secret update)."""
    shutil.copy(source, target.with_suffix(".tmp"))
    os.replace(target.with_suffix(".tmp"), target)


def _pair(pki: TestPki, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(exist_ok=True)
    cert, key = folder / "tls.crt", folder / "tls.key"
    shutil.copy(pki.server.cert_path, cert)
    shutil.copy(pki.server.key_path, key)
    return cert, key


def test_files_are_read_again_only_when_their_content_changes(pki: TestPki, tmp_path: Path) -> None:
    cert, key = _pair(pki, tmp_path / "f")
    files = tls_watch.PemFiles([str(cert), str(key)], tls_watch.pair_valid)
    assert files.contents == (pki.server.pem, pki.server.key_pem)
    assert not files.poll() and files.generation == 0
    _replace(pki.server.cert_path, cert)  # same content, new inode: nothing changes
    assert not files.poll() and files.generation == 0
    other = issue(pki.ca, tmp_path / "other", "other-server", client=False)
    _replace(other.key_path, key)
    _replace(other.cert_path, cert)
    assert files.poll() and files.generation == 1
    assert files.contents == (other.pem, other.key_pem)


def test_a_half_replaced_pair_keeps_the_previous_one(pki: TestPki, tmp_path: Path) -> None:
    cert, key = _pair(pki, tmp_path / "h")
    files = tls_watch.PemFiles([str(cert), str(key)], tls_watch.pair_valid)
    other = issue(pki.ca, tmp_path / "other", "half-server", client=False)
    _replace(other.cert_path, cert)  # the certificate is new, its key not yet
    assert not files.poll() and files.contents == (pki.server.pem, pki.server.key_pem)
    _replace(other.key_path, key)
    assert files.poll() and files.contents == (other.pem, other.key_pem)


def test_files_are_looked_at_no_more_often_than_asked(pki: TestPki, tmp_path: Path) -> None:
    cert, key = _pair(pki, tmp_path / "t")
    now = [100.0]
    files = tls_watch.PemFiles([str(cert), str(key)], tls_watch.pair_valid, check_seconds=1.0, clock=lambda: now[0])
    other = issue(pki.ca, tmp_path / "other", "later-server", client=False)
    _replace(other.key_path, key)
    _replace(other.cert_path, cert)
    now[0] += 0.5
    assert not files.poll()  # too soon
    now[0] += 0.6
    assert files.poll() and files.generation == 1


def test_the_proxy_renews_its_channels_when_the_cluster_certificate_changes(pki: TestPki, tmp_path: Path) -> None:
    cert, key = _pair(pki, tmp_path / "c")
    dialer = tls.ClusterDialer(tls.ClusterTls(str(cert), str(key), str(pki.ca.cert_path)), check_seconds=0)
    cluster = Cluster("static://127.0.0.1:1=rw", dialer=dialer)  # channels are lazy: nothing is dialed
    try:
        first = cluster.channel("127.0.0.1:1")
        assert cluster.channel("127.0.0.1:1") is first
        other = issue(pki.ca, tmp_path / "other", "renewed", client=True)
        _replace(other.key_path, key)
        _replace(other.cert_path, cert)
        renewed = cluster.channel("127.0.0.1:1")
        assert renewed is not first
        assert cluster.channel("127.0.0.1:1") is renewed
        assert len(cluster._retired) == 1
    finally:
        cluster.stop()


def test_the_forward_socket_lives_in_the_storage_folder_or_a_private_one(tmp_path: Path) -> None:
    assert tls.forward_socket("/data/n1", 19530) == "unix:/data/n1/.forward-19530.sock"
    deep = tmp_path / ("x" * 120)
    target = tls.forward_socket(str(deep), 19530)
    path = Path(target.removeprefix("unix:"))
    assert len(str(path)) <= tls.MAX_SOCKET_PATH
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    assert tls.forward_socket(str(deep), 19530) == target  # the same for every worker of the node


class _Context:
    """What gRPC's servicer context tells of its peer (only the two methods the helpers read)."""

    def __init__(self, auth: dict[str, list[bytes]], peer: str = "ipv4:127.0.0.1:5") -> None:
        self._auth, self._peer = auth, peer

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth

    def peer(self) -> str:
        return self._peer


def test_peer_identity_from_the_auth_context() -> None:
    verified: dict[str, Any] = {"transport_security_type": [b"ssl"], "x509_common_name": [b"proxy-1"],
                                "x509_subject_alternative_name": [b"mishards-cluster", b"10.0.0.5"],
                                "x509_pem_cert": [b"-----BEGIN CERTIFICATE-----"]}
    assert tls.is_internal_peer(_Context(verified))
    assert tls.peer_name(_Context(verified)) == "mishards-cluster"
    assert tls.peer_name(_Context({**verified, "x509_subject_alternative_name": []})) == "proxy-1"
    no_cert = _Context({"transport_security_type": [b"ssl"]})
    assert not tls.is_internal_peer(no_cert) and tls.peer_name(no_cert) == "ipv4:127.0.0.1:5"
    assert not tls.is_internal_peer(_Context({}))
    assert tls.PeerTrust(cluster=True).is_internal(_Context(verified))
    assert not tls.PeerTrust(cluster=False).is_internal(_Context(verified))


def test_local_cluster_files_are_made_once_and_never_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    files, made = tls_files.ensure_cluster_files(folder, ("10.1.2.3", "node-a.local", "0.0.0.0"))
    assert made and (folder / "ca.key").stat().st_mode & 0o777 == 0o600
    assert files.key.stat().st_mode & 0o777 == 0o600
    tls.check_server_tls(tls.ServerTls(str(files.cert), str(files.key), str(files.ca), True))
    before = files.cert.read_bytes()
    again, made_again = tls_files.ensure_cluster_files(folder, ("10.1.2.3",))
    assert again == files and not made_again and files.cert.read_bytes() == before
    files.cert.unlink()
    with pytest.raises(ValueError, match="not all of"):
        tls_files.ensure_cluster_files(folder, ())


def test_local_cluster_certificate_names() -> None:
    dns, ips = tls_files.subject_names(("10.1.2.3", "node-a.local", "0.0.0.0", "[::1]", "localhost"))
    assert dns == ("mishards-cluster", "localhost", "node-a.local")
    assert ips == ("127.0.0.1", "::1", "10.1.2.3")


def test_settings_load_refuses_tls_files_it_cannot_use(pki: TestPki, tmp_path: Path) -> None:
    from mishards import settings as proxy_settings
    from node import settings as node_settings

    with pytest.raises(ValueError, match="cannot read"):
        node_settings.load(None, {}, {"storage_path": str(tmp_path), "tls_cert": str(tmp_path / "absent.crt"),
                                      "tls_key": str(pki.server.key_path)})
    with pytest.raises(ValueError, match="TLS certificate"):
        proxy_settings.load(None, {}, {"membership": "static://127.0.0.1:1=rw",
                                       "cluster_tls_cert": str(pki.client.cert_path),
                                       "cluster_tls_key": str(pki.server.key_path),
                                       "cluster_tls_ca": str(pki.ca.cert_path)})
    loaded = proxy_settings.load(None, {"MISHARDS_PROXY_TLS_CERT": str(pki.server.cert_path),
                                        "MISHARDS_PROXY_TLS_KEY": str(pki.server.key_path)},
                                 {"membership": "static://127.0.0.1:1=rw"})
    assert loaded.edge_tls == tls.EdgeTls(str(pki.server.cert_path), str(pki.server.key_path))
