"""The random campaign: kill -9, pauses (short and longer than the lease) and restarts of the writer, the
standby, read nodes and proxies on a seeded schedule, under load through both proxies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.cluster import Cluster, ClusterSpec
from e2e.nemesis import plan
from e2e.scenario import Result, run
from e2e.settings import E2ESettings

TTL = 2.0


@pytest.mark.parametrize("shape", ["etcd/mariadb", "catalog/sqlite"])
def test_random_faults(shape: str, request: pytest.FixtureRequest, run_dir: Path, e2e_settings: E2ESettings,
                       record: Callable[[Result], None]) -> None:
    election, catalog = shape.split("/")
    if not e2e_settings.long and election == "catalog":
        pytest.skip("the catalog-election campaign runs in the long mode (MISHARDS_E2E=long)")
    uri = request.getfixturevalue("mariadb_uri") if catalog == "mariadb" else f"sqlite:///{run_dir / 'meta.sqlite'}"
    endpoint = request.getfixturevalue("etcd").endpoint if election == "etcd" else ""
    seed = e2e_settings.seed if e2e_settings.seed is not None else 11
    faults = plan(seed, e2e_settings.nemesis_seconds - 4.0, TTL)
    spec = ClusterSpec(meta_uri=uri, storage=run_dir / "shared", etcd_endpoint=endpoint, election=election,
                       election_ttl=TTL)
    with Cluster(spec, run_dir) as cluster:
        result = run(f"random-faults/{shape}", cluster, run_dir, e2e_settings.nemesis_seconds, seed=seed,
                     faults=faults)
    record(result)
    assert len(result.figures["faults_applied"]) >= len(faults) - 1, result.figures["faults_skipped"]
    result.expect()


