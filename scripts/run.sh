#!/usr/bin/env bash
# Run the product on its embedded defaults: `mishards up`, a local cluster on 127.0.0.1:19530 (proxy, one
# writer, two read-only nodes; SQLite catalog, storage and logs under ./mishards-data). Ctrl-C stops it.
# Extra arguments go to `mishards up` (e.g. --port, --data-dir, --readers).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MISHARDS_BOOTSTRAP_RUNTIME_ONLY=1 scripts/bootstrap.sh
exec .venv/bin/mishards up "$@"
