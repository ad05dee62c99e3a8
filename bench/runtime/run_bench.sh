#!/usr/bin/env bash
# No-op task throughput and dispatch latency of Celery, Dask and clisc, side by side, in one run.
# Usage: bench/runtime/run_bench.sh [--out DIR] [--clisc PATH/TO/clisc] [--tasks N] ...
#        (bench/runtime/run_bench.sh --help lists every option; README.md explains the method)
# Needs: deploy/install-deps.sh --with-bench (python3-celery, python3-distributed, redis-server).
#
# The Python driver owns every process it starts (own process groups, parent-death signal) and
# stops them on exit, failure, Ctrl-C and SIGTERM/SIGHUP; exec hands it our signals directly.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
if [[ ! -x $python ]]; then
  echo "run_bench: $python not found; run deploy/install-deps.sh --with-bench" >&2
  exit 2
fi
exec "$python" "$here/run_bench.py" "$@"
