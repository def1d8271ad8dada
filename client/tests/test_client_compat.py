"""The pymilvus 1.1.2 compatibility scenario (tests/compat/pymilvus_scenario.py) ported to this client by
changing its import line only, run against a node and through a proxy. The port is made from the current
scenario at each run (written into the test's temporary folder), so the two never drift apart."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess

ORIGINAL = Path(__file__).resolve().parents[2] / "tests" / "compat" / "pymilvus_scenario.py"
FINAL_LINE = re.compile(r"pymilvus scenario: (\d+) checks passed")
ORIGINAL_IMPORT = "from milvus import IndexType, MetricType, Milvus, Status  # type: ignore[import-untyped]"
PORTED_IMPORT = "from mishards_client import IndexType, MetricType, Milvus, Status"


def ported(folder: Path) -> Path:
    """The scenario with its import line changed, and nothing else."""
    original = ORIGINAL.read_text(encoding="utf-8")
    assert original.count(ORIGINAL_IMPORT) == 1, "the scenario's import line changed: update ORIGINAL_IMPORT"
    path = folder / "mishards_client_scenario.py"
    path.write_text(original.replace(ORIGINAL_IMPORT, PORTED_IMPORT), encoding="utf-8")
    return path


@pytest.fixture(params=["node", "proxy"])
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "node":
        node = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "0"])
        node.start()
        try:
            yield node.address
        finally:
            node.stop()
        return
    cluster = LocalCluster(tmp_path / "cluster", readers=1)
    cluster.start()
    try:
        yield cluster.proxy.address
    finally:
        cluster.stop()


def test_ported_scenario(endpoint: str, tmp_path: Path) -> None:
    host, _, port = endpoint.rpartition(":")
    proc = subprocess.run([sys.executable, str(ported(tmp_path)), "--host", host, "--port", port], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240)
    lines = proc.stdout.strip().splitlines()
    final = FINAL_LINE.fullmatch(lines[-1].strip()) if lines else None
    assert proc.returncode == 0 and final is not None and int(final.group(1)) >= 500, proc.stdout[-6000:]
