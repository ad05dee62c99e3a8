// Value types of the ledger: states, the records it stores and the requests that change them.
// Free of SQLite and protobuf, so the scheduler and the status service depend only on these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc {

using RunId = int64_t;
using TaskId = int64_t;

enum class TaskState { kPending, kLeased, kSucceeded, kFailed, kBlocked, kCancelled };
enum class RunState { kRunning, kSucceeded, kFailed, kCancelled };
enum class CaseState { kActive, kExcluded };
enum class AttemptOutcome { kRunning, kSucceeded, kFailed, kLost, kRevoked };
enum class WorkerState { kAlive, kDead, kGone };

// Lower-case names as stored in the ledger ("pending", "leased", ...), and back.
std::string_view TaskStateName(TaskState state);
std::string_view RunStateName(RunState state);
std::string_view CaseStateName(CaseState state);
std::string_view AttemptOutcomeName(AttemptOutcome outcome);
std::string_view WorkerStateName(WorkerState state);
StatusOr<TaskState> ParseTaskState(std::string_view name);
StatusOr<RunState> ParseRunState(std::string_view name);
StatusOr<CaseState> ParseCaseState(std::string_view name);
StatusOr<AttemptOutcome> ParseAttemptOutcome(std::string_view name);
StatusOr<WorkerState> ParseWorkerState(std::string_view name);
// Parses an Abseil-style code name ("UNAVAILABLE"); unknown names give kUnknown.
StatusCode ParseStatusCodeName(std::string_view name);

// Pending and leased tasks are open: the scheduler still has to drive them somewhere.
inline bool IsOpen(TaskState state) {
  return state == TaskState::kPending || state == TaskState::kLeased;
}

struct RunRecord {
  RunId id = 0;
  std::string name;
  std::string config_yaml;
  std::string config_fingerprint;
  RunState state = RunState::kRunning;
  std::string state_reason;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// What the planner asks for. Dependencies name other tasks of the same run by key; they must be
// in the same upsert call or already in the ledger.
struct TaskSpec {
  std::string task_key;
  std::string stage;
  std::optional<std::string> case_id;  // nullopt: a global task (reduce, training)
  int round = 0;
  std::string role;
  std::string params_json = "{}";
  int max_attempts = 3;
  std::vector<std::string> depends_on;
};

struct TaskRecord {
  TaskId id = 0;
  RunId run_id = 0;
  std::string task_key;
  std::string stage;
  std::optional<std::string> case_id;
  int round = 0;
  std::string role;
  std::string params_json;
  TaskState state = TaskState::kPending;
  int attempt = 0;       // number of the latest lease (the fencing token)
  int attempt_base = 0;  // attempt when the current retry budget began
  int max_attempts = 1;  // leases allowed in the current budget
  int64_t not_before_ms = 0;
  std::optional<std::string> lease_worker;
  std::optional<int64_t> lease_deadline_ms;
  std::optional<std::string> outputs_json;
  std::optional<std::string> error_code;
  std::optional<std::string> error_message;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  std::optional<int64_t> finished_ms;
};

// An open task as the scheduler needs it after a restart: the record plus the dependencies that
// still gate it (not succeeded, and not waived because their case was excluded).
struct OpenTask {
  TaskRecord task;
  std::vector<TaskId> unmet_deps;
};

struct ArtifactRecord {
  std::string name;           // the output's role in the stage, e.g. "mask"
  std::string relative_path;  // under the artifact store root
  int64_t size_bytes = 0;
  std::string sha256;  // 64 lower-case hex digits
};

// An artifact a task reads: an output of one of its dependencies.
struct InputArtifact {
  TaskId producer = 0;
  std::string stage;                   // the producer's stage
  std::optional<std::string> case_id;  // the producer's case
  ArtifactRecord artifact;
};

// An artifact of a succeeded task of a run (the resume-time integrity check walks these).
struct RunArtifact {
  TaskId task_id = 0;
  ArtifactRecord artifact;
};

struct AttemptRecord {
  TaskId task_id = 0;
  int attempt = 0;
  std::string worker_id;
  int64_t started_ms = 0;
  std::optional<int64_t> ended_ms;
  AttemptOutcome outcome = AttemptOutcome::kRunning;
  std::optional<std::string> error_code;
  std::optional<std::string> error_message;
};

struct CaseRecord {
  std::string case_id;
  CaseState state = CaseState::kActive;
  std::string excluded_reason;
};

struct WorkerRecord {
  std::string id;
  std::vector<std::string> roles;
  std::string device;
  int slots = 1;
  std::string hostname;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
  WorkerState state = WorkerState::kAlive;
};

struct EventRecord {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::optional<RunId> run_id;
  std::string kind;
  std::optional<TaskId> task_id;
  std::optional<std::string> worker_id;
  std::string payload_json;
};

// ---- Transition requests -------------------------------------------------------------------

struct LeaseRequest {
  TaskId task_id = 0;
  std::string worker_id;
  std::optional<int64_t> deadline_ms;  // hard limit on the lease; nullopt: heartbeats only
};

struct LeaseGrant {
  TaskId task_id = 0;
  int attempt = 0;
  std::string worker_id;
  std::optional<int64_t> deadline_ms;
};

// A worker's success report; accepted only for the task's current attempt (fencing).
struct Completion {
  TaskId task_id = 0;
  int attempt = 0;
  std::string worker_id;
  std::string outputs_json = "{}";
  std::vector<ArtifactRecord> artifacts;
};

// A worker's failure report. Retryable failures go back to pending after retry_delay_ms unless
// the budget is spent; others fail the task terminally.
struct FailureReport {
  TaskId task_id = 0;
  int attempt = 0;
  std::string worker_id;
  Status error;
  bool retryable = false;
  int64_t retry_delay_ms = 0;
};

// A lease given up on: its worker died, stopped answering, or restarted without the task.
struct LeaseExpiry {
  TaskId task_id = 0;
  int attempt = 0;
  std::string reason;
  int64_t retry_delay_ms = 0;
};

struct LeaseRef {
  TaskId task_id = 0;
  int attempt = 0;
  std::string worker_id;
};

// Side effects of a transition on the rest of the graph, so the scheduler can follow.
struct GraphEffects {
  std::vector<TaskId> blocked;
  std::vector<TaskId> cancelled;
  std::vector<TaskId> reset;  // back to pending (invalidation, retry of failed tasks)
  std::vector<std::string> excluded_cases;
  std::vector<std::string> restored_cases;
  std::vector<LeaseRef> revoked_leases;  // leases ended under a running worker

  bool empty() const {
    return blocked.empty() && cancelled.empty() && reset.empty() && excluded_cases.empty() &&
           restored_cases.empty() && revoked_leases.empty();
  }
};

// Result of FailBatch / ExpireLeases: per item the task's new state (pending: retry scheduled;
// failed: budget spent or terminal) or why the item was refused, plus the graph effects.
struct FailResult {
  std::vector<StatusOr<TaskState>> outcomes;
  GraphEffects effects;
};

struct UpsertOptions {
  // Give failed tasks (and the blocked tasks and cases they took down) a fresh retry budget.
  bool retry_failed = false;
  // Cancel open tasks of the run whose keys are not in this plan (superseded by a new config).
  bool replace_plan = false;
};

struct UpsertResult {
  std::vector<TaskId> task_ids;  // in the order of the specs
  int inserted = 0;
  int reused = 0;  // existing key, left as it was (a succeeded one is not redone)
  int reset = 0;   // existing key in cancelled/blocked/failed, back to pending
  int superseded = 0;
  GraphEffects effects;
};

// ---- Status queries ------------------------------------------------------------------------

struct StageStateCount {
  std::string stage;
  TaskState state = TaskState::kPending;
  int64_t count = 0;
};

// Succeeded tasks of one stage and the span in which they finished; the span is empty
// (nullopt) until a task of the stage succeeds.
struct StageTiming {
  std::string stage;
  int64_t succeeded = 0;
  std::optional<int64_t> first_finished_ms;
  std::optional<int64_t> last_finished_ms;
};

struct FailureRecord {
  TaskId task_id = 0;
  std::string task_key;
  std::string stage;
  std::optional<std::string> case_id;
  TaskState state = TaskState::kFailed;  // failed or blocked
  std::string error_code;
  std::string error_message;
};

struct RunHealth {
  int64_t active_cases = 0;
  int64_t excluded_cases = 0;
  int64_t open_tasks = 0;
  int64_t failed_global_tasks = 0;  // failed or blocked tasks without a case: the run cannot end
};

}  // namespace clisc
