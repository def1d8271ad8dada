"""The Helm chart's ``readers.workers`` and ``proxy.workers`` reach the real command lines (rendered with a real
helm, loaded by the project's own settings loaders); the writer stays one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.helm import RELEASE, ROOT, load_settings, mishards_containers, render


def fetched_helm() -> Path:
    """The real helm binary (scripts/fetch_helm.py caches it in .cache/tools)."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_helm.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"scripts/fetch_helm.py failed:\n{res.stderr}"
    return Path(res.stdout.strip().splitlines()[-1])


def test_workers_values_reach_readers_and_proxies_only(tmp_path: Path) -> None:
    helm = fetched_helm()
    manifests = render(helm, "--set", "readers.workers=3", "--set", "proxy.workers=2")
    loaded = {workload["metadata"]["name"]: load_settings(manifests, workload, container, tmp_path)
              for workload, container in mishards_containers(manifests)}
    found = {name: settings.workers for name, settings in loaded.items()}
    assert found == {f"{RELEASE}-reader": 3, f"{RELEASE}-proxy": 2, f"{RELEASE}-writer": 1}, found
    assert loaded[f"{RELEASE}-reader"].worker_ports == 19540  # the range the NetworkPolicy opens to the proxies
    defaults = render(helm)
    assert {load_settings(defaults, workload, container, tmp_path).workers
            for workload, container in mishards_containers(defaults)} == {1}
