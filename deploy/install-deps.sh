#!/usr/bin/env bash
# Installs every build, test and runtime dependency of clisc from Debian 12's archive.
# Idempotent: packages already present are left alone, so a second run is quick.
# Run as root (or through sudo). Usage: deploy/install-deps.sh [--with-bench]
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git clang-format
  # numerics and models
  libtorch-dev libopenblas0-pthread
  # medical imaging IO
  libinsighttoolkit5-dev zlib1g-dev libpng-dev
  # distributed runtime
  libzmq3-dev cppzmq-dev libhiredis-dev redis-server
  libsqlite3-dev sqlite3 protobuf-compiler libprotobuf-dev
  # support libraries
  libboost-dev libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libicu-dev
  # tests, and the frame decoder's fuzz target (libFuzzer comes with clang's runtime)
  libgtest-dev libgmock-dev clang libclang-rt-14-dev
  # real brain anatomy for the synthetic data (Colin27)
  mricron-data
  # python tooling used by bench/ and fixture checks
  python3 python3-numpy python3-scipy python3-nibabel
  chromium fonts-dejavu-core  # headless render check of the run report (tests/e2e)
  # deployment tests: a private one-node Slurm for deploy/slurm (tests/e2e/slurm), offline
  # validation of deploy/k8s (tests/e2e/k8s), shell script lint; systemd-analyze comes with systemd
  slurm-wlm munge python3-yaml python3-jsonschema shellcheck systemd
)

if [[ "${1:-}" == "--with-bench" ]]; then
  # bench/runtime: Celery's Redis transport and result backend need python3-redis (only
  # suggested by python3-celery); python3-distributed brings dask-scheduler and dask-worker.
  packages+=(python3-torch python3-celery python3-redis python3-distributed hyperfine)
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    echo "install-deps: run as root or install sudo" >&2; exit 1
  fi
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# redis-server's package starts a system instance; the project runs its own on chosen ports.
# The munge, slurmctld and slurmd packages enable system services too: the Slurm test runs its own
# daemons with private keys, ports and state, so the system ones are stopped and disabled.
for service in slurmctld slurmd munge; do
  if [[ " ${missing[*]} " == *" ${service} "* || " ${missing[*]} " == *" slurm-wlm "* ]]; then
    "${sudo_cmd[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done
echo "install-deps: done"
