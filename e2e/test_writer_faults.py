"""Faults of the writer under load through both proxies: kill -9 (etcd election and catalog election, MariaDB
and SQLite catalogs) and a pause longer than the lease."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.cluster import Cluster, ClusterSpec
from e2e.nemesis import Fault
from e2e.scenario import Result, create_collection, run
from e2e.settings import E2ESettings
from tests.support.etcd import EtcdServer

TTL = 2.0


def _kills(settings: E2ESettings, target: str = "writer") -> list[Fault]:
    """A kill -9 of the writer every TTL + 8 s, the first after 4 s of load."""
    step = TTL + 8.0
    n = max(1, int((settings.load_seconds - 4.0) // step))
    return [Fault(4.0 + i * step, "kill9", target, 0) for i in range(n)]


def test_kill9_writer_etcd_election_mariadb(etcd: EtcdServer, mariadb_uri: str, run_dir: Path,
                                           e2e_settings: E2ESettings, record: Callable[[Result], None]) -> None:
    spec = ClusterSpec(meta_uri=mariadb_uri, storage=run_dir / "shared", etcd_endpoint=etcd.endpoint,
                       election_ttl=TTL)
    with Cluster(spec, run_dir) as cluster:
        result = run("kill9-writer/etcd/mariadb", cluster, run_dir, e2e_settings.load_seconds, seed=1,
                     faults=_kills(e2e_settings))
    record(result)
    assert len(result.figures["faults_applied"]) == len(_kills(e2e_settings)), result.figures["faults_skipped"]
    result.expect()


@pytest.mark.parametrize("catalog", ["sqlite", "mariadb"])
def test_kill9_writer_catalog_election(catalog: str, request: pytest.FixtureRequest, run_dir: Path,
                                       e2e_settings: E2ESettings, record: Callable[[Result], None]) -> None:
    """The lease row in the catalog elects the writer (static membership, no etcd)."""
    if catalog == "mariadb" and not e2e_settings.long:
        pytest.skip("runs in the long mode (MISHARDS_E2E=long); CI runs the SQLite variant")
    uri = f"sqlite:///{run_dir / 'meta.sqlite'}" if catalog == "sqlite" else request.getfixturevalue("mariadb_uri")
    spec = ClusterSpec(meta_uri=uri, storage=run_dir / "shared", election="catalog", election_ttl=TTL)
    with Cluster(spec, run_dir) as cluster:
        result = run(f"kill9-writer/catalog-election/{catalog}", cluster, run_dir, e2e_settings.load_seconds,
                     seed=2, faults=_kills(e2e_settings))
    record(result)
    assert len(result.figures["faults_applied"]) == len(_kills(e2e_settings)), result.figures["faults_skipped"]
    result.expect()


@pytest.mark.parametrize("election", ["etcd", "catalog"])
def test_pause_writer_longer_than_the_lease(election: str, etcd: EtcdServer, mariadb_uri: str, run_dir: Path,
                                            e2e_settings: E2ESettings, record: Callable[[Result], None]) -> None:
    """SIGSTOP the writer for TTL + 3 s under load, then SIGCONT: the standby has taken over meanwhile; the old
    writer must neither acknowledge nor apply anything after that (it exits 75 and comes back as a standby).
    etcd election with etcd membership; catalog election with static membership."""
    spec = ClusterSpec(meta_uri=mariadb_uri, storage=run_dir / "shared", etcd_endpoint=etcd.endpoint,
                       election=election, election_ttl=TTL)
    faults = [Fault(4.0, "pause", "writer", 0, TTL + 3.0)]
    if e2e_settings.load_seconds >= 30:
        faults.append(Fault(4.0 + TTL + 13.0, "pause", "writer", 0, TTL + 3.0))
    with Cluster(spec, run_dir) as cluster:
        result = run(f"pause-writer-{TTL + 3.0:.0f}s/{election}/mariadb", cluster, run_dir,
                     max(e2e_settings.load_seconds, 16.0), seed=3, faults=faults)
    record(result)
    assert len(result.figures["faults_applied"]) == len(faults), result.figures["faults_skipped"]
    result.expect()


def test_catalog_election_with_etcd_membership(etcd: EtcdServer, run_dir: Path, e2e_settings: E2ESettings,
                                               record: Callable[[Result], None]) -> None:
    """Writers elected through the catalog lease while membership lives in etcd: writes go through the proxy,
    and a kill -9 of the writer is survived."""
    if not e2e_settings.long:
        pytest.skip("runs in the long mode (MISHARDS_E2E=long)")
    spec = ClusterSpec(meta_uri=f"sqlite:///{run_dir / 'meta.sqlite'}", storage=run_dir / "shared",
                       etcd_endpoint=etcd.endpoint, election="catalog", etcd_membership=True, election_ttl=TTL)
    with Cluster(spec, run_dir) as cluster:
        create_collection(cluster.proxy_stubs()[0], timeout=15)
        result = run("kill9-writer/catalog-election+etcd-membership/sqlite", cluster, run_dir,
                     e2e_settings.load_seconds, seed=4, faults=_kills(e2e_settings))
    record(result)
    result.expect()
