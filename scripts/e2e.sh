#!/usr/bin/env bash
# The black-box fault campaign (e2e/): scripts/e2e.sh [--long] [pytest arguments]
# Short (the set CI runs as part of scripts/test.sh) by default; --long runs every scenario for minutes
# (random faults 5 min, soak 10 min). MISHARDS_E2E_SEED=N repeats a random campaign. Figures are printed
# (-s) and written to results.json in each scenario's folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ${1:-} == --long ]]; then
    export MISHARDS_E2E=long
    shift
fi
scripts/bootstrap.sh
exec .venv/bin/python -m pytest e2e -s "$@"
