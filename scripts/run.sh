#!/usr/bin/env bash
# Run the product on its embedded defaults: one standalone node on 127.0.0.1:19530,
# SQLite catalog and storage under ./data. Extra arguments go to `mishards node`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MISHARDS_BOOTSTRAP_RUNTIME_ONLY=1 scripts/bootstrap.sh
exec .venv/bin/mishards node --role standalone --storage-path "${MISHARDS_DATA:-./data}" "$@"
