"""Compatibility with a second real client: the vendor's Node.js SDK for Milvus 1.x.

The scenario (tests/compat/node_sdk/scenario.js) drives `@zilliz/milvus-sdk-node` 1.0.0 through its public
API — collections, partitions, float and binary inserts with ids, flush, counts, FLAT / IVF_FLAT /
partition-limited / by-id / HAMMING searches checked against an exact oracle, vectors read back by id,
deletes, compaction, index create / describe / drop, and in-band error codes — and prints a JSON summary
of its checks as its last line. It runs in a `node` subprocess against (a) a standalone node and (b) a
proxy in front of a writer and two read nodes.

The SDK has its own copy of milvus.proto, loaded at run time by @grpc/proto-loader (protobuf.js), so it
reads replies the way a non-Python protobuf runtime does: an absent message field is null, not an empty
message. scripts/bootstrap.sh installs Node.js and the SDK (npm ci in tests/compat/node_sdk); the test is
skipped only when `node` itself is missing, and fails when the SDK is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import LocalCluster
from tests.support.nodeproc import NodeProcess

SDK_DIR = Path(__file__).resolve().parent / "compat" / "node_sdk"
SCENARIO = SDK_DIR / "scenario.js"
SDK_PACKAGE = "@zilliz/milvus-sdk-node"
SDK_VERSION = "1.0.0"
NODE = shutil.which("node")
SCENARIO_TIMEOUT = 150.0
# A full run makes about 270 checks; far fewer means a step stopped early or was skipped.
MIN_CHECKS = 240

# Checks that fail because the server still differs from Milvus 1.1.1 on the wire, with the difference.
# Strict: the test fails when one of them passes again, so that the entry is removed with the fix.
KNOWN_DIFFERENCES: dict[str, str] = {}

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="Node.js (`node`) is not installed; scripts/bootstrap.sh installs it"),
    *([pytest.mark.timeout(SCENARIO_TIMEOUT + 120)] if importlib.util.find_spec("pytest_timeout") else []),
]


@dataclass
class Server:
    label: str
    address: str
    log_tail: Callable[[], str]


def _require_sdk() -> None:
    """Fail (not skip) unless the pinned SDK is installed where the scenario loads it from."""
    installed = SDK_DIR / "node_modules" / SDK_PACKAGE / "package.json"
    try:
        version = json.loads(installed.read_text())["version"]
    except (OSError, ValueError, KeyError) as exc:
        pytest.fail(f"{SDK_PACKAGE} is not installed in {SDK_DIR} ({exc}); run scripts/bootstrap.sh", pytrace=False)
    if version != SDK_VERSION:
        pytest.fail(f"{SDK_PACKAGE} {version} is installed, the test pins {SDK_VERSION}; run scripts/bootstrap.sh",
                    pytrace=False)


@pytest.fixture(params=["standalone", "proxy"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A node that flushes only on request, or a proxy before a writer (same) and two read nodes."""
    if request.param == "standalone":
        node = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "0"])
        try:
            node.start()
            yield Server("standalone node", node.address, lambda: node.log_tail(60))
        finally:
            node.stop()
    else:
        with LocalCluster(tmp_path, readers=2) as cluster:
            def tails() -> str:
                parts = [f"--- proxy ---\n{cluster.proxy.log_tail(40)}"]
                parts += [f"--- {name} ---\n{n.log_tail(30)}"
                          for name, n in [("writer", cluster.writer), *(
                              (f"reader {i}", r) for i, r in enumerate(cluster.readers))]]
                return "\n".join(parts)

            yield Server("proxy", cluster.proxy.address, tails)


def _summary(output: str) -> dict[str, Any] | None:
    lines = output.strip().splitlines()
    if not lines:
        return None
    try:
        summary = json.loads(lines[-1])
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def test_node_sdk_scenario(server: Server, tmp_path: Path) -> None:
    _require_sdk()
    assert NODE is not None
    cmd = [NODE, str(SCENARIO), server.address, "--no-auto-flush"]
    try:
        proc = subprocess.run(cmd, cwd=SDK_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=SCENARIO_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        partial = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        pytest.fail(f"Node.js SDK scenario against the {server.label} did not finish within "
                    f"{SCENARIO_TIMEOUT:.0f}s\n--- scenario output ---\n{partial}\n{server.log_tail()}",
                    pytrace=False)
    output = proc.stdout
    if proc.returncode == 3:
        pytest.fail(f"the scenario could not load {SDK_PACKAGE}: run scripts/bootstrap.sh\n{output}", pytrace=False)
    summary = _summary(output)
    report = f"--- scenario output ---\n{output[-20000:]}\n{server.log_tail()}"
    if summary is None or proc.returncode not in (0, 1):
        pytest.fail(f"Node.js SDK scenario against the {server.label} crashed (exit status {proc.returncode})\n"
                    f"{report}", pytrace=False)
    assert summary is not None
    assert summary["sdk"] == f"{SDK_PACKAGE}@{SDK_VERSION}"
    failed = {f["check"]: f["detail"] for f in summary["failures"]}
    assert proc.returncode == (1 if failed else 0), f"exit status {proc.returncode} with {len(failed)} failed checks"
    unexpected = {check: detail for check, detail in failed.items() if check not in KNOWN_DIFFERENCES}
    if unexpected:
        lines = "\n".join(f"  {check}: {detail}" for check, detail in unexpected.items())
        pytest.fail(f"{len(unexpected)} checks of the Node.js SDK scenario failed against the {server.label}:\n"
                    f"{lines}\n{report}", pytrace=False)
    now_passing = [check for check in KNOWN_DIFFERENCES if check not in failed]
    assert not now_passing, (
        f"these known differences no longer show against the {server.label}: remove them from "
        f"KNOWN_DIFFERENCES in {Path(__file__).name}: {now_passing}")
    assert summary["passed"] >= MIN_CHECKS, (
        f"only {summary['passed']} checks passed (expected at least {MIN_CHECKS}): the scenario skipped steps\n"
        f"{report}")
