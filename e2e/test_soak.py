"""Soak: steady load through both proxies with no fault, sampling every process' RSS, open files and threads;
after the first third (warm-up), nothing may grow (60 s in CI, 10 minutes with MISHARDS_E2E=long)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, ClusterSpec
from e2e.scenario import Result, run
from e2e.settings import E2ESettings
from e2e.soak import collect, growing, trends
from e2e.workload import WorkloadConfig
from tests.support.etcd import EtcdServer


def test_soak_no_resource_grows(etcd: EtcdServer, mariadb_uri: str, run_dir: Path, e2e_settings: E2ESettings,
                                record: Callable[[Result], None]) -> None:
    seconds = e2e_settings.soak_seconds
    found: list[Any] = []

    def sampling(cluster: Cluster, t0: float) -> dict[str, Any]:
        samples = collect(lambda: list(cluster.resource_pids()), seconds - 1.0, e2e_settings.sample_interval)
        found.extend(trends(samples))
        return {"resources": [f"{t.name} {t.metric}: {t.first:.0f} -> {t.last:.0f} (peak {t.peak:.0f}, "
                              f"{t.samples} samples)" for t in found],
                "resource_series": {f"{t.name} {t.metric}": [int(v) for v in t.series] for t in found}}

    spec = ClusterSpec(meta_uri=mariadb_uri, storage=run_dir / "shared", etcd_endpoint=etcd.endpoint)
    load = WorkloadConfig(insert_interval=0.25, delete_interval=0.25, search_interval=0.05)
    with Cluster(spec, run_dir) as cluster:
        result = run(f"soak-{seconds:.0f}s/etcd/mariadb", cluster, run_dir, seconds, seed=8, action=sampling,
                     workload=load)
    record(result)
    assert found, "no resource samples"
    assert not growing(found), [f"{t.name} {t.metric} {t.first:.0f} -> {t.last:.0f}" for t in growing(found)]
    assert not result.problems, result.summary()
