#!/usr/bin/env bash
# Configures and builds clisc with the release preset (ccache, Ninja when present, -j2 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${CLISC_BUILD_JOBS:-2}"
# Paths inside the checkout are hashed relative to it, so clones in other folders (CI) reuse the
# same ccache entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
generator=()
if command -v ninja >/dev/null && [[ ! -f build/release/CMakeCache.txt ]]; then generator=(-G Ninja); fi
cmake --preset release "${generator[@]}" >/dev/null
cmake --build --preset release -j "$jobs"
