"""A slow disk on one read node: its view of the shared storage goes through a FUSE mount that delays every open
and read. Searches must keep succeeding (the other replica of each segment is on a healthy disk)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.cluster import Cluster, ClusterSpec
from e2e.scenario import Result, run
from e2e.settings import E2ESettings
from e2e.slowfs import SlowMount
from tests.support.etcd import EtcdServer

DELAY = 0.1  # seconds added to every open and read on the slow node's disk


def test_slow_disk_on_a_read_node(etcd: EtcdServer, mariadb_uri: str, run_dir: Path, e2e_settings: E2ESettings,
                                  record: Callable[[Result], None]) -> None:
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine")
    shared = run_dir / "shared"
    try:
        mount = SlowMount(shared, run_dir / "slow-ro0", DELAY, run_dir / "slowfs.log").__enter__()
    except Exception as exc:  # no FUSE permission here
        pytest.skip(f"cannot mount FUSE here: {exc}")
    try:
        spec = ClusterSpec(meta_uri=mariadb_uri, storage=shared, etcd_endpoint=etcd.endpoint,
                           reader_storage=(mount.mountpoint,))
        with Cluster(spec, run_dir) as cluster:
            result = run(f"slow-disk-{DELAY * 1000:.0f}ms/ro0", cluster, run_dir, e2e_settings.load_seconds, seed=9)
    finally:
        mount.__exit__(None, None, None)
    record(result)
    result.expect()
