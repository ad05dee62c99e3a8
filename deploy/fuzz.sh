#!/usr/bin/env bash
# Builds the libFuzzer target of the wire frame decoder with clang (ASan + coverage) and fuzzes it
# for a bounded time, starting from the seed envelopes. Usage: deploy/fuzz.sh [SECONDS]
# The corpus grows in build/fuzz/tests/fuzz/frame_decoder_corpus and is reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
source deploy/env.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCLISC_FUZZ=ON -DCLISC_WITH_TORCH=OFF \
  -DCLISC_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build build/fuzz --target frame_decoder_fuzz frame_fuzz_seeds -j "${CLISC_BUILD_JOBS:-2}"
ctest --test-dir build/fuzz -L fuzz --output-on-failure
