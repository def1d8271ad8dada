"""Compatibility with the real client: the pymilvus 1.1.2 scenario passes against a fresh node, through its gRPC
client and through its REST client (``handler="HTTP"``, Milvus 1.1's web API), and through the REST API of the
proxy of ``mishards up``.

The scenario (tests/compat/pymilvus_scenario.py) runs in a subprocess of this venv's Python with
the pure-Python protobuf runtime, because the code pymilvus 1.1.2 generated predates protobuf 4.
pymilvus is installed by scripts/bootstrap.sh; a missing client fails the test, never skips it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import make_pki
from tests.support.nodeproc import NodeProcess
from tests.support.upproc import UpProcess

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


@dataclass(frozen=True)
class Target:
    """Where the scenario connects: host, port, pymilvus handler, and the server's log for failures."""

    host: str
    port: int
    handler: str
    log_tail: Callable[[], str]
    scheme: str = ""  # "https": the REST client over TLS, trusting ``ca`` (REQUESTS_CA_BUNDLE)
    ca: str = ""


def _put_json(url: str, body: dict[str, Any], ca: str = "") -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT")
    context = ssl.create_default_context(cafile=ca) if ca else None
    with urllib.request.urlopen(request, timeout=30, context=context) as reply:
        return dict(json.loads(reply.read()))


@pytest.fixture(params=["node-grpc", "node-http", "up-http", "up-https"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """The scenario's server: a node that flushes only on request (so unflushed rows can be seen to stay
    invisible), spoken to over gRPC or over the REST API; or ``mishards up`` (proxy, writer, 2 readers) over the
    proxy's REST API, its writer's automatic flushing switched off through that API first; ``up-https``: the
    same with edge TLS on the proxy (pymilvus given an https:// URI) and cluster mTLS between proxy and nodes."""
    if request.param.startswith("node"):
        node = NodeProcess(tmp_path / "node", ["--auto-flush-interval", "0"], http=request.param == "node-http")
        try:
            node.start()
            host, _, port = node.address.rpartition(":")
            if request.param == "node-grpc":
                yield Target(host, int(port), "GRPC", lambda: node.log_tail(60))
            else:
                yield Target(host, node.http_port, "HTTP", lambda: node.log_tail(60))
        finally:
            node.stop()
        return
    tls: list[str] = []
    scheme, ca = "", ""
    if request.param == "up-https":
        edge = make_pki(tmp_path / "edge", "edge")
        # an empty folder: mishards up makes a cluster CA and certificate there
        tls = ["--tls-cert", str(edge.server.cert_path), "--tls-key", str(edge.server.key_path),
               "--cluster-tls-dir", str(tmp_path / "cluster-tls")]
        scheme, ca = "https", str(edge.ca.cert_path)
    up = UpProcess(tmp_path / "up", ["--http-port", "-1", "--readers", "2", "--no-metrics", *tls])
    try:
        up.start()
        if tls:
            assert (tmp_path / "cluster-tls" / "tls.crt").is_file()  # made by mishards up, used by every process
        host = up.address.rpartition(":")[0]
        answer = _put_json(f"{scheme or 'http'}://{host}:{up.http_port}/system/config",
                           {"storage": {"auto_flush_interval": "0"}}, ca)
        assert answer["code"] == 0, answer
        yield Target(host, up.http_port, "HTTP", up.log_tail, scheme, ca)
    finally:
        up.stop()


def test_pymilvus_112_scenario(target: Target, tmp_path: Path) -> None:
    _require_pymilvus()
    cmd = [sys.executable, str(SCENARIO), "--host", target.host, "--port", str(target.port),
           "--handler", target.handler, *(["--scheme", target.scheme] if target.scheme else [])]
    env = {**_client_env(), **({"REQUESTS_CA_BUNDLE": target.ca} if target.ca else {})}
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=SCENARIO_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        partial = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        pytest.fail(
            f"pymilvus scenario did not finish within {SCENARIO_TIMEOUT:.0f}s\n"
            f"--- scenario output ---\n{partial}\n--- server log (tail) ---\n{target.log_tail()}",
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
            f"--- scenario output ---\n{output}\n--- server log (tail) ---\n{target.log_tail()}",
            pytrace=False,
        )
