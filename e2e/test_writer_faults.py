"""Faults of the writer under load through both proxies: kill -9 (etcd election and catalog election, MariaDB
and SQLite catalogs) and a pause longer than the lease."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from e2e.cluster import Cluster, ClusterSpec
from e2e.nemesis import Fault
from e2e.scenario import Result, run
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
    assert not result.problems, result.summary()
