#!/usr/bin/env bash
# Run the test suite: scripts/test.sh [pytest arguments]
# Prepares the machine and .venv first (scripts/bootstrap.sh; fast when nothing changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
