#!/usr/bin/env bash
# Prepare this machine and the project venv for the test suite.
#
# Runs as root on Debian 12. Idempotent:
#   * installs the Debian packages the tests need, only if they are missing;
#   * creates .venv with the python3 on PATH (3.11+) and installs the project with its dev extras,
#     plus the real Milvus 1.1 client (pymilvus 1.1.2) for the compatibility tests;
#   * installs the Python client (client/, package mishards_client) editable;
#   * skips the pip step when .venv/.bootstrap-<sha256 of pyproject.toml and client/pyproject.toml> exists;
#   * for the tests: installs Node.js and npm when `node` / `npm` are missing, and the Node.js SDK of
#     Milvus 1.x pinned by tests/compat/node_sdk/package-lock.json (npm ci; skipped while
#     node_modules/.bootstrap-<sha256 of package.json and package-lock.json> exists).
# It never starts the MariaDB, etcd, Prometheus or Alertmanager system services: the tests start private
# instances (tests/support/mariadb.py, tests/support/etcd.py, tests/support/prometheus.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PYMILVUS_VERSION=1.1.2
POLICY_RC=/usr/sbin/policy-rc.d

say() { printf '[bootstrap] %s\n' "$*"; }
die() { say "error: $*" >&2; exit 1; }

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# --- Debian packages -------------------------------------------------------------------------
# MISHARDS_BOOTSTRAP_RUNTIME_ONLY=1 (scripts/run.sh) skips what only the tests need.
runtime_only="${MISHARDS_BOOTSTRAP_RUNTIME_ONLY:-0}"
missing=()
if [[ $runtime_only != 1 ]]; then
    # libfuse3-3: the e2e slow-disk scenario's FUSE mount (e2e/slowfs.py, through mfusepy).
    # prometheus (with promtool) and prometheus-alertmanager: the alert rules' tests (tests/test_alert*.py).
    for pkg in mariadb-server etcd-server etcd-client libfuse3-3 prometheus prometheus-alertmanager; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    # Node.js for the Node.js SDK compatibility test (tests/test_nodejs_compat.py). Checked by command,
    # not by package: a machine may have them from another package of Node.js (which provides npm).
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv python3-dev)
else
    # Headers for building sdists (annoy) and ensurepip for `python3 -m venv`.
    python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || missing+=(python3-dev)
    python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi

if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]} (run this script as root)"
    say "installing Debian packages: ${missing[*]}"
    # Keep the packages' maintainer scripts from starting mariadb/etcd/prometheus system services.
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 0755 "$POLICY_RC"
        trap 'rm -f "$POLICY_RC"' EXIT
        trap 'exit 130' INT TERM
        added_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [[ ${added_policy:-0} == 1 ]]; then
        rm -f "$POLICY_RC"
        trap - EXIT INT TERM
    fi
else
    say "Debian packages present"
fi

# --- Node.js SDK (tests only) ----------------------------------------------------------------
if [[ $runtime_only != 1 ]]; then
    node_sdk="$ROOT/tests/compat/node_sdk"
    node_stamp="$node_sdk/node_modules/.bootstrap-$(cat "$node_sdk/package.json" "$node_sdk/package-lock.json" \
        | sha256sum | cut -d' ' -f1)"
    if [[ -f $node_stamp ]]; then
        say "Node.js SDK up to date"
    else
        # npm ci installs exactly the locked versions (and removes node_modules first). No install
        # scripts: the SDK's dependencies need none to load the proto and talk gRPC.
        say "installing the Node.js SDK for the compatibility test (npm ci in tests/compat/node_sdk)"
        (cd "$node_sdk" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        touch "$node_stamp"
    fi
fi

# --- Python venv -----------------------------------------------------------------------------
stamp="$VENV/.bootstrap-$(cat pyproject.toml client/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f $stamp ]]; then
    say "venv up to date ($(basename "$stamp" | cut -c1-22)…)"
    exit 0
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "python3 on PATH is $(python3 -V 2>&1); Python 3.11+ is required"
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    say "creating .venv with $(command -v python3) ($(python3 -V 2>&1))"
    python3 -m venv --clear "$VENV"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
pip=("$VENV/bin/python" -m pip install --quiet)
say "upgrading pip"
"${pip[@]}" --upgrade pip
say "installing the project with dev and tools extras (pip install -e '.[dev,tools]')"
"${pip[@]}" -e '.[dev,tools]'
# The Python client (its own distribution in client/, package mishards_client), editable.
say "installing the Python client (pip install -e ./client)"
"${pip[@]}" -e ./client
# pymilvus 1.1.2 pins an old grpcio, so install it without its dependencies. The compatibility
# tests run it in a subprocess with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python.
say "installing pymilvus==$PYMILVUS_VERSION (no deps) for compatibility tests"
"${pip[@]}" --no-deps "pymilvus==$PYMILVUS_VERSION"
say "installing ujson, requests, setuptools<81 for pymilvus (pip's grpcio conflict note is expected)"
"${pip[@]}" ujson requests 'setuptools<81'

rm -f "$VENV"/.bootstrap-*
touch "$stamp"
say "done"
