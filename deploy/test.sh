#!/usr/bin/env bash
# Installs the dependencies, builds clisc and runs the whole test suite (ctest).
# Integration tests start their own redis-server on a free loopback port when CLISC_TEST_REDIS_URL
# is not set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh
source deploy/env.sh
ctest --preset release -j "${CLISC_TEST_JOBS:-2}" --timeout "${CLISC_TEST_TIMEOUT:-900}"
# The wire frame decoder under libFuzzer for a bounded time (CLISC_FUZZ_SECONDS=0 skips it).
if [[ "${CLISC_FUZZ_SECONDS:-60}" != 0 ]]; then bash deploy/fuzz.sh "${CLISC_FUZZ_SECONDS:-60}"; fi
