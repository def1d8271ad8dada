"""Static checks of the container files (no Docker engine runs here)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            lines.setdefault(word.upper(), []).append(rest.strip())
    return lines


def test_dockerfile_runs_the_mishards_command_as_a_non_root_user() -> None:
    df = _dockerfile()
    assert df["FROM"][0].startswith("python:3.11")
    assert df["USER"] == ["mishards"]
    assert df["ENTRYPOINT"] == ['["mishards"]']
    assert any("grpc_health" in cmd for cmd in df["HEALTHCHECK"])
    for copied in df["COPY"]:
        source = copied.split()[0]
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_compose_services_run_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"], "no services"
    for name, service in compose["services"].items():
        command = service["command"]
        args = command if isinstance(command, list) else shlex.split(command)
        # Every command must be accepted by the real CLI: ask it to parse the arguments only.
        probe = [sys.executable, "-c",
                 "import sys; from node.__main__ import parse_args; parse_args(sys.argv[3:])", "-", *args]
        assert args[0] == "node", f"{name}: unknown mishards command {args[0]!r}"
        res = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"{name}: {res.stderr}"
        for mount in service.get("volumes", []):
            volume = mount.split(":")[0]
            assert volume in compose.get("volumes", {}), f"{name}: undeclared volume {volume}"
