#!/usr/bin/env bash
# Builds bench/models/models_bench against the LibTorch inside a Python torch installation (a
# CUDA wheel on a GPU machine), where Debian's CPU-only libtorch-dev does not apply. Only the
# network code is compiled; header-only dependencies come from INCLUDE_DIR (default
# .devicebuild/include: spdlog, fmt, nlohmann), which the caller provides.
# Usage: bench/models/build_with_python_libtorch.sh OUT_BINARY [INCLUDE_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: $0 OUT_BINARY [INCLUDE_DIR]}"
extra_include="${2:-.devicebuild/include}"
python="${PYTHON:-python3}"
torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
abi="$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
cxx="${CXX:-g++}"
flags=(-std=c++20 -O2 -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI="$abi" -DFMT_HEADER_ONLY
       -I. -I"$extra_include" -isystem "$torch_dir/include"
       -isystem "$torch_dir/include/torch/csrc/api/include")
sources=(common/status.cc common/logging.cc common/pil_resample.cc
         workers/models/compute_device.cc workers/models/checkpoint_reader.cc
         workers/models/pickle_reader.cc workers/models/sam/*.cc
         workers/models/clip/clip_config.cc workers/models/clip/clip_model.cc
         workers/models/unet/unet3d.cc bench/models/models_bench.cc)
objdir="$(mktemp -d)"
trap 'rm -rf "$objdir"' EXIT
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  "$cxx ${flags[*]} -c {} -o $objdir/\$(echo {} | tr / _).o"
libs=(-L"$torch_dir/lib" -Wl,-rpath,"$torch_dir/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10)
[[ -e "$torch_dir/lib/libtorch_cuda.so" ]] && libs+=(-ltorch_cuda -lc10_cuda)
"$cxx" "$objdir"/*.o -o "$out" "${libs[@]}" -Wl,--as-needed -lpthread
echo "built $out against $torch_dir (torch $("$python" -c 'import torch; print(torch.__version__)'))"
