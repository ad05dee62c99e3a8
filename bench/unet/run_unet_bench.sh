#!/usr/bin/env bash
# The 3D U-Net in C++ (LibTorch) and in Python (Debian's python3-torch) side by side, in the same
# environment (OPENBLAS_CORETYPE from deploy/env.sh, the same thread count), and a table with the
# ratio C++ / Python (below 1: C++ is faster).
# Usage: bench/unet/run_unet_bench.sh [BUILD_DIR]   (default build/release; needs unet_bench built)
# Environment: THREADS (2), STEPS (1: timed SGD steps; a 128^3 step takes tens of seconds on two
# threads here), WARMUP (1), REPEATS (1 inference run).
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build/release}"
bench="$build/bench/unet_bench"
[[ -x "$bench" ]] || { echo "no $bench: cmake --build $build --target unet_bench" >&2; exit 1; }
source deploy/env.sh
threads="${THREADS:-2}" steps="${STEPS:-1}" warmup="${WARMUP:-1}" repeats="${REPEATS:-1}"
export OMP_NUM_THREADS="$threads"
python=/usr/bin/python3
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "$python has no torch (apt-get install python3-torch)" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "C++:    $bench --threads $threads --steps $steps --warmup $warmup --repeats $repeats" >&2
"$bench" --threads "$threads" --steps "$steps" --warmup "$warmup" --repeats "$repeats" \
  step train inference > "$out/cpp.jsonl"
echo "Python: bench/unet/unet_step.py --threads $threads --steps $steps --warmup $warmup" >&2
"$python" bench/unet/unet_step.py --threads "$threads" --steps "$steps" --warmup "$warmup" \
  --repeats "$repeats" > "$out/py.json"

"$python" - "$out/cpp.jsonl" "$out/py.json" "$threads" "$steps" <<'EOF'
import json, os, platform, sys
cpp = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    cpp[row['section']] = row
py = json.load(open(sys.argv[2]))
threads, steps = sys.argv[3], sys.argv[4]
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
            if l.startswith('model name')), '?')
print(f"machine: {cpu}, {os.cpu_count()} cores; threads {threads}; "
      f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; python torch {py['torch']}")
rows = [
    ('SGD step 128^3 batch 2 (raw UNet3d / unet_3D)', cpp['step']['step_seconds_median'],
     py['step_seconds_median']),
    ('SGD step via the trainer (mean_step_seconds)', cpp['train']['mean_step_seconds'],
     py['step_seconds_median']),
    ('  trainer loader wait per step', cpp['train']['mean_loader_wait_seconds'], None),
    (f"sliding window 240x240x155 ({py['inference_windows']} windows, batch 2)",
     cpp['inference']['inference_seconds_median'], py['inference_seconds_median']),
]
print(f"| {'measurement':<52} | {'C++ s':>8} | {'Python s':>8} | {'C++/Py':>6} |")
print(f"|{'-' * 54}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
for name, c, p in rows:
    ps = f"{p:8.2f}" if p is not None else f"{'':>8}"
    ratio = f"{c / p:6.2f}" if p else f"{'':>6}"
    print(f"| {name:<52} | {c:8.2f} | {ps} | {ratio} |")
EOF
