"""The pymilvus 1.1.2 compatibility scenario (tests/compat/pymilvus_scenario.py) ported to this client by
changing its import line only, run against a node (here) and through a proxy (test_client_proxy.py). The port is
made from the current scenario at each run (written into the test's temporary folder), so the two never drift
apart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


def run_ported(address: str, tmp_path: Path) -> None:
    """Run the ported scenario against ``address`` in a subprocess; fail with its output unless it passes."""
    host, _, port = address.rpartition(":")
    proc = subprocess.run([sys.executable, str(ported(tmp_path)), "--host", host, "--port", port], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240)
    lines = proc.stdout.strip().splitlines()
    final = FINAL_LINE.fullmatch(lines[-1].strip()) if lines else None
    assert proc.returncode == 0 and final is not None and int(final.group(1)) >= 500, proc.stdout[-6000:]


def test_ported_scenario_on_a_node(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "0"])
    node.start()
    try:
        run_ported(node.address, tmp_path)
    finally:
        node.stop()
