#!/usr/bin/env bash
# Run the Python client's tests (client/tests) under every CPython 3.10-3.13 found on this machine, each from
# the client's wheel installed into a fresh virtual environment (so the wheel itself is what is tested).
#
#   scripts/client_pythons.sh [--ref REV] [pytest arguments]        e.g. scripts/client_pythons.sh -x -q
#
# --ref REV tests that commit (exported to a temporary folder: client, tests and servers all of REV) instead of
# the work tree.
# Interpreters: pyenv's newest 3.X.* under $PYENV_ROOT (~/.pyenv), else python3.X on PATH.
# The servers the tests start (nodes, proxies, `mishards up`) run on the project's own .venv
# (MISHARDS_SERVER_PYTHON); only the client and the test process run on the Python under test. Each venv gets
# the wheel, its dependencies and the test tools (pytest, pytest-timeout, cryptography, setuptools for the wheel
# test) from the package index.
# MISHARDS_CLIENT_PYTHONS="3.10 3.13" picks versions. Exit status: the number of versions that failed (a
# version not found is reported and skipped).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -x .venv/bin/python ]] || scripts/bootstrap.sh
WORK="$(mktemp -d -t mishards-client-pythons.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
SERVER_PYTHON="$ROOT/.venv/bin/python"
if [[ "${1:-}" == "--ref" ]]; then
    mkdir -p "$WORK/tree"
    git archive "$2" | tar -x -C "$WORK/tree" || exit 1
    echo "testing $(git rev-parse --short "$2") in $WORK/tree"
    cd "$WORK/tree"
    shift 2
fi

find_python() {
    local version="$1" found
    found="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".* 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$found" && -x "$found/bin/python" ]] && { echo "$found/bin/python"; return 0; }
    command -v "python$version"
}

# Built from a copy of client/, so that no build folder is left in the checkout.
mkdir -p "$WORK/src" "$WORK/dist"
cp -r client/pyproject.toml client/README.md client/mishards_client "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$SERVER_PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" || exit 1
wheel="$(ls "$WORK"/dist/mishards_client-*.whl)"
echo "wheel: $(basename "$wheel")"

failed=0
for version in ${MISHARDS_CLIENT_PYTHONS:-3.10 3.11 3.12 3.13}; do
    if ! python="$(find_python "$version")"; then
        echo "== Python $version: not found, skipped"
        continue
    fi
    venv="$WORK/venv$version"
    "$python" -m venv "$venv" &&
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
            "$wheel" pytest pytest-timeout cryptography "setuptools>=77" || { echo "== Python $version: install failed"; failed=$((failed + 1)); continue; }
    "$venv/bin/python" -c 'import sys, grpc, google.protobuf, numpy, mishards_client as m
print(f"== Python {sys.version.split()[0]}: mishards_client {m.__version__} from {m.__file__}, grpcio "
      f"{grpc.__version__}, protobuf {google.protobuf.__version__}, numpy {numpy.__version__}")'
    if ! MISHARDS_SERVER_PYTHON="$SERVER_PYTHON" "$venv/bin/python" -m pytest -p no:cacheprovider \
            "$@" client/tests; then
        echo "== Python $version: FAILED"
        failed=$((failed + 1))
    fi
done
exit "$failed"
