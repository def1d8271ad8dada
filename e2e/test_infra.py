"""Infrastructure faults under load: the catalog database down, etcd down, the storage volume full. What keeps
working, what fails fast and clearly, full recovery after, nothing acknowledged lost."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Cluster, ClusterSpec
from e2e.infra import Outage, fill, tmpfs
from e2e.scenario import Result, run
from e2e.settings import E2ESettings
from tests.support.etcd import EtcdServer, etcd_health
from tests.support.mariadb import MariaDBServer

TTL = 2.0
LEAD = 4.0  # seconds of load before the fault


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))  # a point of the scenario's schedule, not a wait for a state


def _outage_action(outage: Outage, name: str, seconds: float) -> Callable[[Cluster, float], dict[str, Any]]:
    def action(cluster: Cluster, t0: float) -> dict[str, Any]:
        _sleep_until(t0 + LEAD)
        start = time.monotonic()
        outage.down()
        _sleep_until(start + seconds)
        outage.up()
        return {"windows": {name: (start, time.monotonic())}}

    return action


def _mariadb_answers(db: MariaDBServer) -> bool:
    try:
        db.connect_root().close()
    except Exception:
        return False
    return True


def test_catalog_database_down(etcd: EtcdServer, run_dir: Path, e2e_settings: E2ESettings,
                               record: Callable[[Result], None]) -> None:
    """MariaDB killed for 20 s (10 s in the short set) and started again on the same port and data directory."""
    down, tail = e2e_settings.infra_down_seconds, e2e_settings.infra_tail_seconds
    with MariaDBServer() as db:
        outage = Outage("mariadb", db.pid, lambda: _mariadb_answers(db))
        try:
            spec = ClusterSpec(meta_uri=db.uri, storage=run_dir / "shared", etcd_endpoint=etcd.endpoint,
                               election_ttl=TTL)
            with Cluster(spec, run_dir) as cluster:
                result = run(f"catalog-db-down-{down:.0f}s/etcd/mariadb", cluster, run_dir, LEAD + down + tail,
                             seed=5, action=_outage_action(outage, "catalog_down", down))
        finally:
            outage.close()
    record(result)
    result.expect()


def test_etcd_down(mariadb_uri: str, run_dir: Path, e2e_settings: E2ESettings,
                   record: Callable[[Result], None]) -> None:
    """etcd (membership and election) killed for 20 s (10 s short) and started again on its ports and data."""
    down, tail = e2e_settings.infra_down_seconds, e2e_settings.infra_tail_seconds
    with EtcdServer() as etcd:
        log_file = etcd.log_file
        outage = Outage("etcd", etcd.pid, lambda: etcd_health(etcd.url),
                        log_file.with_suffix(".restarted.log") if log_file else None)
        try:
            spec = ClusterSpec(meta_uri=mariadb_uri, storage=run_dir / "shared", etcd_endpoint=etcd.endpoint,
                               election_ttl=TTL)
            with Cluster(spec, run_dir) as cluster:
                result = run(f"etcd-down-{down:.0f}s/etcd/mariadb", cluster, run_dir, LEAD + down + tail, seed=6,
                             action=_outage_action(outage, "etcd_down", down))
        finally:
            outage.close()
    record(result)
    result.expect()


def test_storage_volume_full(etcd: EtcdServer, mariadb_uri: str, run_dir: Path, e2e_settings: E2ESettings,
                             record: Callable[[Result], None]) -> None:
    """The shared storage on a 64 MB tmpfs, filled up for a while under load, then freed."""
    hold, tail = (20.0 if e2e_settings.long else 8.0), e2e_settings.infra_tail_seconds
    volume = run_dir / f"vol-{uuid.uuid4().hex[:6]}"
    try:
        mount = tmpfs(volume, "64m")
        mount.__enter__()
    except Exception as exc:  # not root, or no tmpfs
        pytest.skip(f"cannot mount a tmpfs here: {exc}")

    def action(cluster: Cluster, t0: float) -> dict[str, Any]:
        _sleep_until(t0 + LEAD)
        start = time.monotonic()
        filled = fill(volume)
        _sleep_until(start + hold)
        (volume / "filler.bin").unlink()
        return {"windows": {"storage_full": (start, time.monotonic())}, "filler_bytes": filled}

    try:
        spec = ClusterSpec(meta_uri=mariadb_uri, storage=volume / "shared", etcd_endpoint=etcd.endpoint,
                           election_ttl=TTL)
        with Cluster(spec, run_dir) as cluster:
            result = run(f"storage-full-{hold:.0f}s/etcd/mariadb", cluster, run_dir, LEAD + hold + tail, seed=7,
                         action=action)
    finally:
        with contextlib.suppress(Exception):
            mount.__exit__(None, None, None)
    record(result)
    result.expect()
