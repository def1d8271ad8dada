#!/bin/bash
# Idle-vCPU wake-up check: server_kind_bench alternated plain and with two nice-19 busy loops beside it
# (a vCPU that always has something to run never halts). Run from the repository root under the bench lock:
#   flock /tmp/mishards-bench.lock benchmarks/idle_wakeup_ab.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for round in 1 2; do
  for mode in plain spin; do
    pids=()
    if [ $mode = spin ]; then
      for i in 1 2; do nice -n 19 python3 -c 'while True: pass' & pids+=($!); done
    fi
    echo "=== round $round mode $mode load $(cut -d' ' -f1 /proc/loadavg)"
    .venv/bin/python -m benchmarks.server_kind_bench --calls 2000 --seconds 1 --sat-rounds 1 2>&1 | grep -v '^$'
    for p in "${pids[@]}"; do kill $p; done
  done
done
