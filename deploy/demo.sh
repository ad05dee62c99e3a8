#!/usr/bin/env bash
# Installs the dependencies, builds clisc and runs the demo: the whole method on synthetic data
# with local workers, ending in a results table and a report under ./demo-run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
source deploy/env.sh
exec build/release/cli/clisc demo --workdir "${CLISC_DEMO_DIR:-demo-run}" "$@"
