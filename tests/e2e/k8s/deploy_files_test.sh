#!/usr/bin/env bash
# Offline checks of the deployment files in deploy/: the Kubernetes manifests against strict
# schemas (and deliberately broken copies, which must fail), the run config they carry, the
# systemd unit (systemd-analyze verify) and the Slurm script (bash -n, shellcheck).
# Usage: deploy_files_test.sh [CLISC_BINARY]
# Exit status: 0 passed, 1 failed, 77 skipped (python3-yaml or python3-jsonschema missing) unless
# CLISC_REQUIRE_FIXTURES=1 (CI), where a missing prerequisite fails the test.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../../.." && pwd)
clisc=${1:-}
python=/usr/bin/python3
validator=$here/validate_manifests.py
manifests=$source_dir/deploy/k8s

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
skip_or_fail() {
  if [[ ${CLISC_REQUIRE_FIXTURES:-0} == 1 ]]; then
    echo "FAIL: $* (CLISC_REQUIRE_FIXTURES=1: required in CI; deploy/install-deps.sh installs it)" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit 77
}

"$python" -c 'import yaml, jsonschema' 2>/dev/null ||
  skip_or_fail "python3-yaml and python3-jsonschema are needed to validate deploy/k8s"

work=$(mktemp -d "${TMPDIR:-/tmp}/clisc-deploy-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- Kubernetes manifests -------------------------------------------------------------------------
if "$python" "$validator" "$manifests" >"$work/valid.out" 2>&1; then
  echo "deploy/k8s: $(grep -c '^valid' "$work/valid.out") objects valid"
else
  cat "$work/valid.out" >&2
  fail "deploy/k8s does not validate"
fi

# A broken copy must fail, and the report must name what is wrong. Each case: a Python statement
# that edits `text` (the file's content), the file, and a word the report must contain.
expect_invalid() {
  local name=$1 file=$2 edit=$3 expected=$4
  rm -rf "$work/broken" && cp -r "$manifests" "$work/broken"
  "$python" - "$work/broken/$file" "$edit" <<'EOF'
import sys
path, edit = sys.argv[1], sys.argv[2]
text = open(path).read()
before = text
exec(edit)
if text == before:
    sys.exit(f"the edit changed nothing in {path}")
open(path, "w").write(text)
EOF
  if "$python" "$validator" "$work/broken" >"$work/broken.out" 2>&1; then
    fail "broken copy '$name' passed validation"
  elif ! grep -q -- "$expected" "$work/broken.out"; then
    cat "$work/broken.out" >&2
    fail "broken copy '$name' failed without naming '$expected'"
  else
    echo "broken copy '$name' rejected: $(grep -m 1 INVALID "$work/broken.out")"
  fi
}
expect_invalid "misspelt field" worker.yaml \
  'text = text.replace("terminationGracePeriodSeconds:", "terminationGracePeriodSecond:")' \
  terminationGracePeriodSecond
expect_invalid "misplaced field" coordinator.yaml \
  'text = text.replace("          readinessProbe:", "          readinessProbes:", 1)' \
  readinessProbes
expect_invalid "wrong type" worker.yaml \
  'text = text.replace("replicas: 2", "replicas: two")' "is not of type 'integer'"
expect_invalid "missing required field" redis.yaml \
  'text = text.replace("        - name: redis\n          image:", "        - image:")' \
  "'name' is a required property"
expect_invalid "unknown kind" storage.yaml \
  'text = text.replace("kind: PersistentVolumeClaim", "kind: PersistentVolumeClaimm", 1)' \
  "unsupported apiVersion/kind"
expect_invalid "dangling claim" worker.yaml \
  'text = text.replace("claimName: clisc-work", "claimName: clisc-wrk")' \
  "no PersistentVolumeClaim clisc-wrk"
expect_invalid "selector mismatch" coordinator.yaml \
  'text = text.replace("      app.kubernetes.io/name: clisc-coordinator\n  template", "      app.kubernetes.io/name: clisc-coord\n  template")' \
  "does not match the pod labels"
expect_invalid "missing resource file" kustomization.yaml \
  'text = text.replace("  - worker.yaml", "  - workers.yaml")' "resource workers.yaml does not exist"

# The run config inside the ConfigMap is a valid clisc config.
if [[ -n $clisc ]]; then
  "$python" -c 'import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["data"]["config.yaml"], end="")' \
    "$manifests/configmap.yaml" >"$work/config.yaml"
  if "$clisc" config validate "$work/config.yaml" >"$work/config.out" 2>&1; then
    echo "deploy/k8s/configmap.yaml: the run config validates"
  else
    cat "$work/config.out" >&2
    fail "the run config in deploy/k8s/configmap.yaml does not validate"
  fi
fi

# kustomize renders the directory (kubectl's built-in kustomize works offline), where present.
if command -v kubectl >/dev/null; then
  if kubectl kustomize "$manifests" >"$work/rendered.yaml" 2>"$work/kustomize.err"; then
    grep -q 'image: registry.example.com/clisc:latest' "$work/rendered.yaml" ||
      fail "kubectl kustomize did not apply the images override"
    echo "kubectl kustomize deploy/k8s: $(grep -c '^kind:' "$work/rendered.yaml") objects"
  else
    cat "$work/kustomize.err" >&2
    fail "kubectl kustomize deploy/k8s failed"
  fi
else
  echo "note: no kubectl; kustomize rendering not checked"
fi

# --- systemd unit ---------------------------------------------------------------------------------
# systemd-analyze verify reports problems as output (its exit status stays 0 for unknown keys and
# bad values), so any output fails. A template is verified through an instance.
unit=$source_dir/deploy/systemd/clisc-worker@.service
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/units"
  cp "$unit" "$work/units/clisc-worker@0.service"
  out=$(systemd-analyze verify "$work/units/clisc-worker@0.service" 2>&1)
  if [[ $? != 0 || -n $out ]]; then
    echo "$out" >&2
    fail "systemd-analyze verify reports problems in clisc-worker@.service"
  else
    echo "systemd-analyze verify clisc-worker@.service: clean"
  fi
  sed 's/^TimeoutStopSec=.*/TimeoutStopSec=ninety/' "$unit" >"$work/units/clisc-worker@1.service"
  out=$(systemd-analyze verify "$work/units/clisc-worker@1.service" 2>&1)
  [[ -n $out ]] || fail "systemd-analyze verify accepted a broken unit; the check proves nothing"
else
  echo "note: no systemd-analyze; the systemd unit is not verified"
fi
grep -q '^EnvironmentFile=/etc/clisc/worker.env$' "$unit" || fail "the unit does not read worker.env"

# --- Slurm script ---------------------------------------------------------------------------------
sbatch_script=$source_dir/deploy/slurm/clisc.sbatch
bash -n "$sbatch_script" || fail "deploy/slurm/clisc.sbatch has a syntax error"
if command -v shellcheck >/dev/null; then
  if shellcheck -x -S warning "$sbatch_script" "$source_dir"/tests/e2e/slurm/*.sh \
      "$here"/*.sh >"$work/shellcheck.out" 2>&1; then
    echo "shellcheck: clean"
  else
    cat "$work/shellcheck.out" >&2
    fail "shellcheck reports problems"
  fi
else
  echo "note: no shellcheck; the shell scripts were only syntax-checked"
fi

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "PASS: deployment files"
