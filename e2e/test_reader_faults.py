"""Faults of read nodes and proxies under load: a read node paused longer than the lease (searches must go to the
other replica of its segments), a read node killed, a proxy killed (the other proxy keeps serving)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from e2e.cluster import Cluster, ClusterSpec
from e2e.nemesis import Fault
from e2e.scenario import Result, run
from e2e.settings import E2ESettings
from tests.support.etcd import EtcdServer

TTL = 2.0


def test_reader_pause_reader_kill_proxy_kill(etcd: EtcdServer, mariadb_uri: str, run_dir: Path,
                                            e2e_settings: E2ESettings, record: Callable[[Result], None]) -> None:
    pause = 12.0 if e2e_settings.long else TTL + 3.0
    faults = [Fault(3.0, "pause", "reader", 0, pause), Fault(3.0 + pause + 3.0, "kill9", "reader", 1),
              Fault(3.0 + pause + 7.0, "kill9", "proxy", 1)]
    spec = ClusterSpec(meta_uri=mariadb_uri, storage=run_dir / "shared", etcd_endpoint=etcd.endpoint,
                       election_ttl=TTL)
    with Cluster(spec, run_dir) as cluster:
        result = run(f"reader-pause-{pause:.0f}s+reader-kill+proxy-kill", cluster, run_dir,
                     max(e2e_settings.load_seconds, faults[-1].at + 6.0), seed=10, faults=faults)
    record(result)
    assert len(result.figures["faults_applied"]) == len(faults), result.figures["faults_skipped"]
    result.expect()
