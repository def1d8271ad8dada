#!/usr/bin/env bash
# Run the test suite: scripts/test.sh [pytest arguments]
# Prepares the machine and .venv first (scripts/bootstrap.sh; fast when nothing changed).
#
# Without test paths among the arguments, two runs: the component tests (tests/, client/tests/) spread over
# MISHARDS_TEST_PROCESSES processes (default: one per core, at most 4; pytest-xdist, one test file per process at
# a time, so a module's shared servers stay in one process), then the e2e fault campaign (e2e/) on its own, since
# its scenarios load the whole machine and bound outages. The exit status is the first failing run's.
# With paths (scripts/test.sh tests/test_cli.py -x): one pytest run of exactly what is given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
pytest=(.venv/bin/python -m pytest)

for arg in "$@"; do
    case "$arg" in
        -*) ;;
        *) if [[ -e "${arg%%::*}" ]]; then exec "${pytest[@]}" "$@"; fi ;;
    esac
done

processes="${MISHARDS_TEST_PROCESSES:-$(nproc)}"
(( processes > 4 )) && processes=4
components=(tests)
[[ -d client/tests ]] && components+=(client/tests)

status=0
"${pytest[@]}" -n "$processes" --dist loadfile "$@" "${components[@]}" || status=$?
e2e_status=0
"${pytest[@]}" "$@" e2e || e2e_status=$?
(( status != 0 )) && exit "$status"
exit "$e2e_status"
