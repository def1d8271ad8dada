"""Static checks of the container files (no Docker engine runs here): Dockerfile, docker-compose.yml and the
Prometheus configuration compose mounts. Commands go through the project's real CLI parsers and settings loaders.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mishards import __main__ as proxy_main
from mishards import settings as proxy_settings
from node import __main__ as node_main
from node import settings as node_settings
from node.server import SERVICE
from tests.support.nodeproc import NodeProcess

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "mishards:latest"


# ------------------------------------------------------------------------------------------------ Dockerfile


def _dockerfile_stages() -> list[dict[str, list[str]]]:
    """The Dockerfile's instructions per build stage (line continuations joined, ARG defaults substituted)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    args: dict[str, str] = {}
    stages: list[dict[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        if word == "FROM":
            rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
            stages.append({})
        assert stages, f"instruction before FROM: {line}"
        stages[-1].setdefault(word, []).append(rest)
    return stages


def _healthcheck_code() -> str:
    (healthcheck,) = _dockerfile_stages()[-1]["HEALTHCHECK"]
    command = healthcheck.split(" CMD ", 1)[1]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"], argv
    return argv[2]


def test_dockerfile_builds_in_two_stages_and_runs_mishards_as_a_non_root_user() -> None:
    build, final = _dockerfile_stages()
    assert build["FROM"][0].startswith("python:3.11") and build["FROM"][0].endswith(" AS build")
    assert final["FROM"][0].startswith("python:3.11")
    assert any("g++" in cmd for cmd in build["RUN"]), "annoy compiles from source: the build stage needs g++"
    assert not any("g++" in cmd for cmd in final.get("RUN", [])), "no compiler in the runtime image"
    assert any(cmd.startswith("--from=build ") for cmd in final["COPY"])
    assert final["USER"] == ["10001:10001"]
    assert any("--uid 10001" in cmd and "mishards" in cmd for cmd in final["RUN"])
    assert final["ENTRYPOINT"] == ['["mishards"]']
    assert "19530" in final["EXPOSE"][0].split()
    copied_sources = set()
    for copied in build["COPY"]:
        *sources, _dest = copied.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
            copied_sources.add(source)
    with open(ROOT / "pyproject.toml", "rb") as fh:
        packages = tomllib.load(fh)["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in copied_sources, f"the image does not get the {pattern} packages"


def test_dockerfile_default_command_is_a_valid_node_command() -> None:
    (cmd,) = _dockerfile_stages()[-1]["CMD"]
    argv = yaml.safe_load(cmd)
    assert argv[0] == "node"
    node_main.parse_args(argv[1:])


def test_dockerfile_installs_the_kubernetes_extra_for_k8s_membership() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'g != "dev"' in text  # every optional group but dev, so `kubernetes` is in
    with open(ROOT / "pyproject.toml", "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    assert any(dep.startswith("kubernetes") for dep in extras["kubernetes"]), "k8s:// membership needs the client"


def test_dockerfile_healthcheck_probes_the_grpc_health_service(node: NodeProcess) -> None:
    code = _healthcheck_code()
    assert "grpc_health" in code
    port = node.address.rsplit(":", 1)[1]
    for service, expected in (("", 0), (SERVICE, 0), ("no.such.Service", 1)):
        env = {"MISHARDS_HEALTHCHECK_PORT": port, "MISHARDS_HEALTHCHECK_SERVICE": service, "PATH": "/usr/bin:/bin"}
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
        assert res.returncode == expected, f"service {service!r}: {res.stderr}"
    closed = subprocess.run([sys.executable, "-c", code], env={"MISHARDS_HEALTHCHECK_PORT": "1"},
                            capture_output=True, timeout=30)
    assert closed.returncode != 0


# ------------------------------------------------------------------------------------------- docker-compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict) and data.get("services"), "docker-compose.yml has no services"
    return data


def _ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == IMAGE}


def _argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return [str(a) for a in command] if isinstance(command, list) else shlex.split(command)


def _settings(name: str, service: dict[str, Any]) -> Any:
    """The service's settings as the real CLI would build them from its command line and environment."""
    argv = _argv(service)
    parsers = {"node": (node_main.parse_args, node_settings.load),
               "proxy": (proxy_main.parse_args, proxy_settings.load)}
    assert argv[0] in parsers, f"{name}: unknown mishards command {argv[0]!r}"
    parse_args, load = parsers[argv[0]]
    try:
        ns = parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"{name}: `mishards {' '.join(argv)}` is rejected by the CLI") from exc
    assert ns.config is None, f"{name}: compose services are configured by flags and environment only"
    env = {str(k): str(v) for k, v in (service.get("environment") or {}).items()}
    overrides = {k: v for k, v in vars(ns).items() if k != "config" and v is not None}
    return load(None, env, overrides)


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    """Checked by a strict Compose model (``compose-spec``; anchors and merge keys already resolved by YAML)."""
    from compose_spec import PyCompose

    parsed = PyCompose.from_json(json.dumps(compose))
    assert sorted(parsed.service_names()) == sorted(compose["services"])
    # The checker does refuse what Docker Compose refuses (so its silence above means something).
    for broken in ({"image": "x", "restart": "sometimes"}, {"image": "x", "ports": 5}, {"imagee": "x"},
                   {"image": "x", "depends_on": {"y": {"condition": "bogus"}}}):
        with pytest.raises(ValueError):
            PyCompose.from_json(json.dumps({"services": {"a": broken}}))


def test_compose_has_the_whole_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {name: str(s.get("image", "")) for name, s in services.items()}
    for name, prefix in (("mariadb", "mariadb:"), ("etcd", "quay.io/coreos/etcd:"),
                         ("jaeger", "jaegertracing/all-in-one:"), ("prometheus", "prom/prometheus:")):
        assert images.get(name, "").startswith(prefix), f"{name}: {images.get(name)}"
    roles = sorted(_settings(n, s).role if _argv(s)[0] == "node" else "proxy" for n, s in _ours(compose).items())
    assert roles == ["proxy", "ro", "ro", "rw", "rw"]
    for name, service in _ours(compose).items():
        assert service.get("build") == ".", f"{name}: builds the image from this repository"


def test_compose_commands_are_accepted_by_the_real_cli(compose: dict[str, Any]) -> None:
    node_ids = set()
    memberships = set()
    meta_uris = set()
    for name, service in _ours(compose).items():
        settings = _settings(name, service)
        assert settings.host == "0.0.0.0", name
        memberships.add(settings.membership)
        meta_uris.add(settings.meta_uri)
        if _argv(service)[0] == "node":
            assert settings.advertise == f"{name}:{settings.port}", f"{name}: others must reach it by its name"
            node_ids.add(settings.node_id)
            assert settings.storage_path in {m.split(":")[1] for m in service["volumes"]}, name
    assert len(node_ids) == 4
    (membership,) = memberships
    assert membership.startswith("etcd://"), "writer + standby need the etcd election"
    (meta_uri,) = meta_uris
    assert meta_uri.startswith("mysql+pymysql://") and "@mariadb:3306/" in meta_uri


def test_compose_volumes_are_declared_and_storage_is_shared(compose: dict[str, Any]) -> None:
    declared = compose.get("volumes") or {}
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: undeclared volume {source}"
    storage = {m for name, s in _ours(compose).items() if _argv(s)[0] == "node" for m in s["volumes"]}
    assert storage == {"mishards-data:/var/lib/mishards"}


def test_compose_dependencies_and_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ours = _ours(compose)
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if spec.get("condition") == "service_healthy":
                # Our image has a HEALTHCHECK; the others need one in compose.
                assert dependency in ours or "healthcheck" in services[dependency], f"{name} -> {dependency}"
    assert services["proxy"]["ports"] == ["19530:19530", "19121:19121"]  # gRPC and Milvus 1.1's RESTful API
    assert "19121/state" in " ".join(services["proxy"]["healthcheck"]["test"])  # healthy: GET /state answers
    for name, service in ours.items():
        check = (service.get("environment") or {}).get("MISHARDS_HEALTHCHECK_SERVICE")
        if _argv(service)[0] == "node" and _settings(name, service).role == "ro":
            assert check == SERVICE, f"{name}: healthy should mean warm"


def test_compose_tracing_goes_to_jaeger_with_otlp_enabled(compose: dict[str, Any]) -> None:
    jaeger = compose["services"]["jaeger"]
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    for name, service in _ours(compose).items():
        assert _settings(name, service).otlp_endpoint == "http://jaeger:4317", name


def test_prometheus_scrapes_every_metrics_port_compose_opens(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = dict(m.split(":")[:2] for m in prometheus["volumes"])
    config_path = ROOT / next(src for src, dst in mounts.items() if dst == "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    ours = _ours(compose)
    opened = set()
    for name, service in ours.items():
        port = _settings(name, service).metrics_port
        assert port > 0, f"{name} serves no /metrics"
        opened.add(f"{name}:{port}")
    scraped_ours = {t for t in targets if t.split(":")[0] in ours}
    assert scraped_ours == opened, f"scraped {sorted(scraped_ours)}, opened {sorted(opened)}"
    unknown = {t for t in targets if t.split(":")[0] not in compose["services"] and not t.startswith("localhost:")}
    assert not unknown, f"prometheus.yml scrapes hosts that are no compose service: {unknown}"
