"""Compatibility with the real client: the pymilvus 1.1.2 scenario passes against a fresh node.

The scenario (tests/compat/pymilvus_scenario.py) runs in a subprocess of this venv's Python with
the pure-Python protobuf runtime, because the code pymilvus 1.1.2 generated predates protobuf 4.
pymilvus is installed by scripts/bootstrap.sh; a missing client fails the test, never skips it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodeproc import NodeProcess

SCENARIO = Path(__file__).resolve().parent / "compat" / "pymilvus_scenario.py"
PYMILVUS_VERSION = "1.1.2"
SCENARIO_TIMEOUT = 300.0
FINAL_LINE = re.compile(r"pymilvus scenario: (\d+) checks passed")
# The scenario makes over a thousand checks; far fewer means it stopped exercising something.
MIN_CHECKS = 500

# Leave room above the scenario's own timeout so that its output can still be reported.
pytestmark = [pytest.mark.timeout(SCENARIO_TIMEOUT + 90)] if importlib.util.find_spec("pytest_timeout") else []


def _client_env() -> dict[str, str]:
    return {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}


def _require_pymilvus() -> None:
    """Fail (not skip) unless this venv's Python can import pymilvus 1.1.2."""
    probe = subprocess.run(
        [sys.executable, "-c", "import milvus; print(milvus.__version__)"],
        env=_client_env(), capture_output=True, text=True, timeout=120,
    )
    version = probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""
    if probe.returncode != 0 or version != PYMILVUS_VERSION:
        pytest.fail(
            f"pymilvus {PYMILVUS_VERSION} is required by {sys.executable} for the compatibility test "
            f"(import gave exit status {probe.returncode}, version {version!r}). "
            f"Run scripts/bootstrap.sh to install it.\n{probe.stderr[-3000:]}",
            pytrace=False,
        )


@pytest.fixture
def quiet_node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A node that flushes only on request, so the scenario can see unflushed rows stay invisible."""
    proc = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "0"])
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_pymilvus_112_scenario(quiet_node: NodeProcess, tmp_path: Path) -> None:
    fresh_node = quiet_node
    _require_pymilvus()
    host, _, port = fresh_node.address.rpartition(":")
    cmd = [sys.executable, str(SCENARIO), "--host", host, "--port", port]
    try:
        proc = subprocess.run(
            cmd, env=_client_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=SCENARIO_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        pytest.fail(
            f"pymilvus scenario did not finish within {SCENARIO_TIMEOUT:.0f}s\n"
            f"--- scenario output ---\n{partial}\n--- node log (tail) ---\n{fresh_node.log_tail(60)}",
            pytrace=False,
        )
    output = proc.stdout
    lines = output.strip().splitlines()
    final = FINAL_LINE.fullmatch(lines[-1].strip()) if lines else None
    if proc.returncode == 3:
        pytest.fail(f"pymilvus could not be imported by the scenario: run scripts/bootstrap.sh\n{output}",
                    pytrace=False)
    if proc.returncode != 0 or final is None or int(final.group(1)) < MIN_CHECKS:
        pytest.fail(
            f"pymilvus scenario failed (exit status {proc.returncode})\n"
            f"--- scenario output ---\n{output}\n--- node log (tail) ---\n{fresh_node.log_tail(60)}",
            pytrace=False,
        )
