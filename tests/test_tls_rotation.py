"""The proxy's cluster client certificate rotated on disk, on real processes, without a restart: the nodes trust
two CAs (a bundle, as during a CA change); the proxy starts with a certificate of the first CA, then its
certificate and key files are replaced by ones of the second CA with another name. The writer's audit lines
name the peer that made each DDL call, so they show which certificate the proxy presented; the fan-out to the
read node keeps working on the new channels (the search is checked against the exact answer)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from milvus_wire import milvus_pb2
from tests.support.certs import Issued, issue, make_ca
from tests.support.cluster import LocalCluster
from tests.support.waiting import poll_for

DIM = 4


def _replace(target: Path, source: Path) -> None:
    """Put ``source``'s bytes at ``target`` by an atomic rename, as a Secret volume or a careful operator does."""
    staged = target.with_suffix(target.suffix + ".new")
    staged.write_bytes(source.read_bytes())
    os.replace(staged, target)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path, Issued]]:
    root = tmp_path_factory.mktemp("rotation")
    first, second = make_ca(root / "ca1", "cluster-ca-1"), make_ca(root / "ca2", "cluster-ca-2")
    bundle = root / "cluster-cas.crt"
    bundle.write_bytes(first.pem + second.pem)
    node = issue(first, root / "ca1", "node")
    old = issue(first, root / "ca1", "proxy-one", server=False, dns=(), ips=())
    new = issue(second, root / "ca2", "proxy-two", server=False, dns=(), ips=())
    live = root / "proxy-tls"
    live.mkdir()
    for name, source in (("tls.crt", old.cert_path), ("tls.key", old.key_path)):
        _replace(live / name, source)
    node_args = ["--cluster-tls-cert", str(node.cert_path), "--cluster-tls-key", str(node.key_path),
                 "--cluster-tls-ca", str(bundle)]
    proxy_args = ["--cluster-tls-cert", str(live / "tls.crt"), "--cluster-tls-key", str(live / "tls.key"),
                  "--cluster-tls-ca", str(bundle)]
    cluster = LocalCluster(root, readers=1, node_args=node_args, proxy_args=proxy_args)
    with cluster:
        yield cluster, live, new


def _ddl_peers(cluster: LocalCluster) -> list[str]:
    """The peers named by the writer's audit lines of CreateCollection, in order."""
    lines = cluster.writer.log_path.read_text(errors="replace").splitlines()
    return [ln.split('"who":"', 1)[1].split('"', 1)[0] for ln in lines
            if '"audit":true' in ln and '"rpc":"CreateCollection"' in ln]


def _ddl_peers_or_none(cluster: LocalCluster, n: int) -> Callable[[], list[str]]:
    """A poll: the peers once the writer has logged ``n`` CreateCollection audit lines (else nothing)."""
    def peers() -> list[str]:
        found = _ddl_peers(cluster)
        return found if len(found) == n else []
    return peers


def _create_and_search(cluster: LocalCluster, name: str) -> None:
    stub = cluster.stub()
    schema = milvus_pb2.CollectionSchema(collection_name=name, dimension=DIM, index_file_size=1024, metric_type=1)
    assert stub.CreateCollection(schema, timeout=30).error_code == 0
    rows = [milvus_pb2.RowRecord(float_data=[float(i), 0.0, 0.0, 0.0]) for i in range(10)]
    ids = stub.Insert(milvus_pb2.InsertParam(collection_name=name, row_record_array=rows), timeout=30)
    assert ids.status.error_code == 0, ids.status
    assert stub.Flush(milvus_pb2.FlushParam(collection_name_array=[name]), timeout=30).error_code == 0
    query = milvus_pb2.SearchParam(collection_name=name, topk=2,
                                   query_record_array=[milvus_pb2.RowRecord(float_data=[6.9, 0.0, 0.0, 0.0])],
                                   extra_params=[milvus_pb2.KeyValuePair(key="params", value="{}")])
    found = stub.Search(query, timeout=30)  # served by the read node: the proxy's fan-out over mTLS
    assert found.status.error_code == 0, found.status
    assert list(found.ids) == [ids.vector_id_array[7], ids.vector_id_array[6]]


def test_the_proxy_presents_a_certificate_replaced_on_disk_without_a_restart(
        rotated: tuple[LocalCluster, Path, Issued]) -> None:
    cluster, live, new = rotated
    pid = cluster.proxy.proc.pid if cluster.proxy.proc else 0
    _create_and_search(cluster, "before")
    assert poll_for(_ddl_peers_or_none(cluster, 1), timeout=10, what="the first audit line") == ["peer:proxy-one"]
    # the key first, then the certificate: in between the pair does not match and the old one stays in use
    _replace(live / "tls.key", new.key_path)
    _replace(live / "tls.crt", new.cert_path)
    made = count(2)

    def presented_the_new_one() -> bool:
        n = next(made)
        _create_and_search(cluster, f"after_{n}")
        peers = poll_for(_ddl_peers_or_none(cluster, n), timeout=10, what="the audit line of the last DDL call")
        return peers[-1] == "peer:proxy-two"

    poll_for(presented_the_new_one, timeout=30, interval=0.2, what="the proxy to present its new certificate")
    assert cluster.proxy.proc is not None and cluster.proxy.proc.pid == pid and cluster.proxy.proc.poll() is None
    peers = _ddl_peers(cluster)
    assert set(peers) == {"peer:proxy-one", "peer:proxy-two"}
    assert peers.index("peer:proxy-two") > peers.index("peer:proxy-one")
