#!/usr/bin/env bash
# End-to-end test of deploy/slurm/clisc.sbatch on a private one-node Slurm on localhost.
# Usage: slurm_test.sh CLISC_BINARY
# 1. starts munged, slurmctld and slurmd of its own (tests/e2e/slurm/local_slurm.sh) in a
#    temporary directory, and stops them on exit, also on failure;
# 2. submits the script on synthetic data with tests/e2e/slurm/tiny.yaml and checks that the job
#    completes, that the run succeeded and that the evaluation has rows;
# 3. submits it again on the same workdir and checks that it resumes: it ends quickly and no
#    finished task was leased or run again.
# Exit status: 0 passed, 1 failed, 77 skipped (Slurm or munge missing, or not root) unless
# CLISC_REQUIRE_FIXTURES=1 (CI), where a missing prerequisite fails the test.
# CLISC_KEEP_TEST_DIR=1 keeps the temporary directory for inspection.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../../.." && pwd)
clisc=${1:?usage: slurm_test.sh CLISC_BINARY}
clisc_bin=$(cd "$(dirname "$clisc")" && pwd)
sbatch_script=$source_dir/deploy/slurm/clisc.sbatch
# shellcheck source-path=SCRIPTDIR
source "$here/local_slurm.sh"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip_or_fail() {
  if [[ ${CLISC_REQUIRE_FIXTURES:-0} == 1 ]]; then
    fail "$* (CLISC_REQUIRE_FIXTURES=1: required in CI; deploy/install-deps.sh installs it)"
  fi
  echo "SKIP: $*" >&2
  exit 77
}

for tool in munged mungekey munge slurmctld slurmd sbatch scontrol squeue sinfo scancel; do
  command -v "$tool" >/dev/null || skip_or_fail "$tool not found (Debian packages slurm-wlm, munge)"
done
for tool in sqlite3 python3; do
  command -v "$tool" >/dev/null || skip_or_fail "$tool not found"
done
[[ $(id -u) == 0 ]] || skip_or_fail "the private Slurm runs its daemons as root; run as root"
[[ -x $clisc ]] || fail "no clisc binary at $clisc"
"$clisc" run --help >/dev/null 2>&1 || fail "$clisc has no 'run' subcommand"

test_dir=$(mktemp -d "${TMPDIR:-/tmp}/clisc-slurm-test.XXXXXX")
cleanup() {
  local status=$?
  local_slurm_stop "$test_dir"
  if [[ $status != 0 && $status != 77 ]]; then
    for f in "$test_dir"/job-*.out "$test_dir"/work/logs/*.log; do
      [[ -f $f ]] || continue
      echo "---- last lines of $f" >&2
      tail -n 30 "$f" >&2
    done
    local_slurm_show_logs "$test_dir"
  fi
  if [[ ${CLISC_KEEP_TEST_DIR:-0} == 1 ]]; then echo "kept $test_dir"; else rm -rf "$test_dir"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$clisc" config validate "$here/tiny.yaml" || fail "tests/e2e/slurm/tiny.yaml does not validate"
"$clisc" synth --out "$test_dir/data" --cases 6 --size half --seed 1 >/dev/null ||
  fail "clisc synth failed"

local_slurm_start "$test_dir" || fail "the private Slurm did not start"

workdir=$test_dir/work
ledger=$workdir/ledger.db
export CLISC_BIN=$clisc_bin CLISC_CONFIG=$here/tiny.yaml CLISC_DATA=$test_dir/data
export CLISC_WORKDIR=$workdir
CLISC_PORT=$(local_slurm_free_port)
CLISC_HTTP=127.0.0.1:$(local_slurm_free_port)
export CLISC_PORT CLISC_HTTP
# Workers that never hear the coordinator's leave message (the resumed run has nothing to do) are
# stopped soon after it ends.
export CLISC_WORKER_GRACE_S=5
export CLISC_DRAIN_MS=10000

# Submits the script and waits for the job; prints the job id.
submit() {
  local name=$1 limit=$2 out
  out=$(cd "$test_dir" && timeout "$limit" sbatch --wait --parsable --job-name="$name" \
    --cpus-per-task="$(nproc)" --output="$test_dir/job-$name.out" "$sbatch_script")
  local status=$?
  echo "${out%%;*}"
  return $status
}

job_field() {  # job_field JOBID FIELD -> the value of FIELD=... in scontrol's record of the job
  scontrol show job "$1" -o 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

expect_completed() {  # expect_completed JOBID NAME
  local state exit_code
  state=$(job_field "$1" JobState)
  exit_code=$(job_field "$1" ExitCode)
  [[ $state == COMPLETED && $exit_code == 0:0 ]] ||
    fail "job $2 ($1) ended $state with exit code $exit_code"
  grep -q "JobId=$1 .*JobState=COMPLETED" "$test_dir/slurm/jobcomp.txt" ||
    fail "the job completion log has no COMPLETED record of job $1"
}

ledger_query() { sqlite3 -batch -noheader "$ledger" "$1"; }

# --- first submission: the whole method --------------------------------------------------------
start=$(date +%s)
job1=$(submit first 300) || fail "sbatch --wait of the first job failed (job '$job1')"
echo "first job $job1 took $(($(date +%s) - start)) s"
expect_completed "$job1" first
grep -q "clisc run exited with status 0" "$test_dir/job-first.out" ||
  fail "the job log does not show clisc run succeeding"

evaluation=$workdir/report/data/evaluation.json
[[ -f $evaluation ]] || fail "no $evaluation"
python3 - "$evaluation" <<'EOF' || fail "evaluation.json has no rows"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc.get("rows")
if not isinstance(rows, list) or not rows:
    sys.exit(1)
print(f"evaluation.json: {len(rows)} rows")
EOF
[[ -f $ledger ]] || fail "no ledger at $ledger"
run_state=$(ledger_query "SELECT state FROM runs WHERE name = 'clisc';")
[[ $run_state == succeeded ]] || fail "the ledger's run state is '$run_state', not succeeded"
tasks=$(ledger_query "SELECT count(*) FROM tasks t JOIN runs r ON r.id = t.run_id
                      WHERE r.name = 'clisc' AND t.state = 'succeeded';")
((tasks > 0)) || fail "no succeeded tasks in the ledger"
leased_before=$(ledger_query "SELECT count(*) FROM events WHERE kind = 'task_leased';")
succeeded_before=$(ledger_query "SELECT count(*) FROM events WHERE kind = 'task_succeeded';")
workers=$(ledger_query "SELECT count(*) FROM workers;")
echo "ledger: $tasks tasks succeeded, $leased_before leases, $workers worker(s)"

# --- second submission on the same workdir: resumes, nothing to redo ---------------------------
start=$(date +%s)
job2=$(submit resume 120) || fail "sbatch --wait of the resubmitted job failed (job '$job2')"
took=$(($(date +%s) - start))
echo "resubmitted job $job2 took $took s"
expect_completed "$job2" resume
((took <= 60)) || fail "the resubmitted job took $took s; a resumed finished run should be quick"
grep -q "resuming" "$test_dir/job-resume.out" || fail "the resubmitted job did not resume"

leased_after=$(ledger_query "SELECT count(*) FROM events WHERE kind = 'task_leased';")
succeeded_after=$(ledger_query "SELECT count(*) FROM events WHERE kind = 'task_succeeded';")
[[ $leased_after == "$leased_before" ]] ||
  fail "the resumed run leased tasks again ($leased_before leases before, $leased_after after)"
[[ $succeeded_after == "$succeeded_before" ]] ||
  fail "the resumed run redid finished tasks ($succeeded_before before, $succeeded_after after)"
redone=$(ledger_query "SELECT t.task_key || ' x' || count(*) FROM events e
                       JOIN tasks t ON t.id = e.task_id
                       WHERE e.kind = 'task_succeeded' GROUP BY t.id HAVING count(*) > 1;")
[[ -z $redone ]] || fail "tasks that succeeded more than once: $redone"
run_state=$(ledger_query "SELECT state FROM runs WHERE name = 'clisc';")
[[ $run_state == succeeded ]] || fail "after the resume the run state is '$run_state'"
[[ -f $evaluation ]] || fail "the resumed run lost $evaluation"

echo "PASS: Slurm job $job1 ran the method ($tasks tasks), job $job2 resumed it in $took s"
