// The scheduling core of the coordinator: which task goes to which worker, when a worker is dead,
// when a failed task runs again, and when the run is over. Pure logic over the ledger, with the
// ledger's clock as its only view of time; no sockets (the coordinator process calls in with what
// arrives on the wire and sends what comes back).
//
// Memory mirrors the ledger's open tasks (pending and leased): a ready queue per role (every
// dependency done, backoff over), a delay queue (backoff not over), the tasks still waiting for
// dependencies, and the worker registry. Every change is made in the ledger first and applied in
// memory only once committed, so the ledger stays the source of truth; rare graph-wide changes
// (terminal failures, cancellation, invalidation, re-planning) simply reload the open tasks.
//
// Restart: a Scheduler built over an existing ledger resumes exactly. Finished tasks are never
// redone (they are not loaded). Pending tasks are queued again. Leased tasks keep their lease for
// `restart_grace_ms`: a worker that reconnects in that time and reports the attempt as still
// running keeps it, and its result is accepted; a lease nobody claims expires (attempt recorded
// as lost) and the task runs again. Long training tasks are thus not thrown away because the
// coordinator restarted, and a worker that died with the coordinator costs one grace period.
//
// Errors: a call that returns an error (the ledger was busy or failed) has changed neither the
// ledger nor memory, and may be retried as is. Per-item refusals (stale results) come back as
// FAILED_PRECONDITION items.
//
// Not thread-safe: one coordinator loop drives it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "coordinator/clock.h"
#include "coordinator/ledger.h"
#include "coordinator/retry_policy.h"

namespace clisc {

struct SchedulerOptions {
  int64_t heartbeat_interval_ms = 1000;
  int missed_heartbeats = 3;  // a worker silent for interval x missed is dead
  // How long a lease found in the ledger at start-up waits for its worker to come back.
  int64_t restart_grace_ms = 10'000;
  // Hard limit on one lease, whatever the heartbeats say (a hung task); 0: none.
  int64_t lease_timeout_ms = 0;
  RetryPolicy retry;
  // The run fails when fewer active cases remain (only for runs that have cases).
  int min_cases = 1;
  // Mark the run succeeded as soon as no task is open. Off for a coordinator that plans in
  // phases (it calls Finish() itself after the last phase).
  bool finish_when_idle = true;
  // How often a worker's heartbeats refresh workers.last_seen_ms in the ledger; heartbeats
  // themselves stay in memory (a write per heartbeat would cost more than the tasks).
  int64_t worker_touch_interval_ms = 10'000;
  // Whether AssignWork counts as a heartbeat. True for workers that ask for work; false for a
  // coordinator that pushes work to every registered worker on its own, where a worker that
  // vanished without a goodbye would otherwise stay alive forever.
  bool assign_counts_as_heartbeat = true;
};

struct RunningAttempt {
  TaskId task_id = 0;
  int attempt = 0;
};

// A worker's hello (first contact or reconnect), with what it is still running.
struct WorkerHello {
  std::string id;
  std::vector<std::string> roles;
  std::string device;
  int slots = 1;
  std::string hostname;
  std::vector<RunningAttempt> running;
};

struct HelloReply {
  std::vector<RunningAttempt> adopted;  // still leased to this worker: keep going
  std::vector<RunningAttempt> abandon;  // no longer this worker's: stop, the result is void
};

struct Assignment {
  TaskId task_id = 0;
  int attempt = 0;  // the fencing token the result must carry
  std::string task_key;
  std::string stage;
  std::optional<std::string> case_id;
  int round = 0;
  std::string role;
  std::string params_json;
  std::optional<int64_t> lease_deadline_ms;
};

struct TaskFailure {
  TaskId task_id = 0;
  int attempt = 0;
  std::string worker_id;
  Status error;  // retryable when error.IsRetryable()
};

struct TickReport {
  std::vector<std::string> dead_workers;
  std::vector<LeaseRef> expired_leases;
};

struct SchedulerSnapshot {
  RunState run_state = RunState::kRunning;
  size_t open_tasks = 0;
  size_t ready = 0;    // could be leased now
  size_t delayed = 0;  // backing off
  size_t waiting = 0;  // dependencies not done
  size_t leased = 0;
  size_t workers_alive = 0;
};

struct WorkerView {
  std::string id;
  std::vector<std::string> roles;
  int slots = 0;
  bool alive = false;
  int64_t last_heartbeat_ms = 0;
  std::vector<TaskId> leases;
};

class Scheduler {
 public:
  // Loads the run's open tasks from the ledger (which must outlive the scheduler).
  static StatusOr<std::unique_ptr<Scheduler>> Create(Ledger* ledger, RunId run,
                                                     const SchedulerOptions& options = {});

  // ---- Workers -----------------------------------------------------------------------------
  // Registers a worker or takes it back after a reconnect, reconciling its leases with what it
  // says it runs: leases it no longer runs are expired at once.
  StatusOr<HelloReply> RegisterWorker(const WorkerHello& hello);
  // NOT_FOUND for an unknown worker and FAILED_PRECONDITION for one declared dead: either way
  // it must say hello again.
  Status Heartbeat(std::string_view worker_id);
  // A worker leaving on purpose: its leases expire now.
  Status RemoveWorker(std::string_view worker_id, std::string_view reason);
  // Leases up to the worker's free slots of ready tasks in its roles, oldest first, in one
  // ledger transaction. Counts as a heartbeat (unless options say otherwise).
  StatusOr<std::vector<Assignment>> AssignWork(std::string_view worker_id);
  // The same for every worker that asked for work since the last call, in one transaction
  // (group commit): what the coordinator loop should call once per poll. Unknown or dead
  // workers get their error in their slot and do not hold up the others.
  StatusOr<std::vector<StatusOr<std::vector<Assignment>>>> AssignWorkBatch(
      const std::vector<std::string>& worker_ids);
  // Declares silent workers dead and expires their leases, expires leases past their deadline
  // or restart grace, and moves tasks whose backoff is over to the ready queues.
  StatusOr<TickReport> Tick();
  // When Tick() next has something to do (a backoff ends, a lease or a worker may expire).
  std::optional<int64_t> NextWakeupMs() const;

  // ---- Results (fenced: only the current attempt of the current lease counts) ----------------
  Status ReportSuccess(const Completion& completion);
  // Many results in one ledger transaction; per item OK or why it was refused.
  StatusOr<std::vector<Status>> ReportSuccessBatch(const std::vector<Completion>& completions);
  // Retryable errors go back to pending after the backoff (or fail when the budget is spent);
  // others fail the task, block its dependents and exclude its case.
  Status ReportFailure(const TaskFailure& failure);

  // ---- Run control -------------------------------------------------------------------------
  StatusOr<UpsertResult> Plan(const std::vector<TaskSpec>& specs,
                              const UpsertOptions& options = {});
  StatusOr<GraphEffects> CancelTask(TaskId task, std::string_view reason);
  StatusOr<GraphEffects> CancelRun(std::string_view reason);
  StatusOr<GraphEffects> Invalidate(TaskId task, std::string_view reason);
  // Takes a case out of the run (an operator's decision, a reject found late): its open tasks
  // are blocked and global tasks stop waiting for it.
  StatusOr<GraphEffects> ExcludeCase(std::string_view case_id, std::string_view reason);
  // Marks the run succeeded when no task is open (for finish_when_idle = false).
  Status Finish();

  RunId run() const { return run_; }
  RunState run_state() const { return run_state_; }
  bool idle() const { return tasks_.empty(); }
  SchedulerSnapshot Snapshot() const;
  std::vector<WorkerView> Workers() const;

 private:
  struct TaskEntry {
    TaskRecord record;
    int unmet = 0;                   // dependencies not yet succeeded (nor waived)
    std::vector<TaskId> dependents;  // open tasks waiting for this one
    int64_t expiry_ms = 0;           // leased: when the lease expires regardless (0: never)
    bool orphan = false;             // leased to a worker that has not said hello since start
  };
  struct Worker {
    WorkerRecord info;
    bool alive = true;
    int64_t last_heartbeat_ms = 0;
    int64_t last_touch_ms = 0;
    std::set<TaskId> leases;
  };

  Scheduler(Ledger* ledger, RunId run, const SchedulerOptions& options);

  // Rebuilds the in-memory view from the ledger's open tasks.
  Status Reload();
  // After failures, cancellations and successes: fail the run when it can no longer end well,
  // or finish it when nothing is left.
  Status CheckRunOutcome();
  void Enqueue(TaskEntry& entry);
  void Unqueue(const TaskEntry& entry);
  void SetExpiry(TaskEntry& entry, int64_t expiry_ms);
  void ForgetLease(TaskEntry& entry);
  void PromoteDue(int64_t now);
  void OnSucceeded(TaskId task);
  // Expires leases through the ledger and applies the outcome.
  Status ExpireLeases(const std::vector<std::pair<TaskId, std::string>>& leases,
                      TickReport* report);
  // Applies per-task outcomes of FailBatch / ExpireLeases (pending: requeue; failed: reload).
  Status ApplyFailResult(const std::vector<TaskId>& tasks, const FailResult& result);
  Status CheckFence(TaskId task, int attempt, std::string_view worker) const;
  void TouchWorker(Worker& worker, int64_t now);
  // Picks up to the worker's free slots of ready tasks, skipping those already in `taken`.
  void PickTasks(const Worker& worker, std::set<TaskId>& taken, std::vector<TaskId>* picks);
  int64_t DeadAfterMs() const {
    return options_.heartbeat_interval_ms * static_cast<int64_t>(options_.missed_heartbeats);
  }

  Ledger* ledger_;
  const Clock* clock_;
  RunId run_;
  SchedulerOptions options_;
  RunState run_state_ = RunState::kRunning;

  std::unordered_map<TaskId, TaskEntry> tasks_;    // open tasks only
  std::map<std::string, std::set<TaskId>> ready_;  // by role; ids ascend with plan order
  std::set<std::pair<int64_t, TaskId>> delayed_;   // (not_before_ms, task)
  std::set<std::pair<int64_t, TaskId>> expiries_;  // (expiry_ms, task) for leased tasks
  std::map<std::string, Worker, std::less<>> workers_;
};

}  // namespace clisc
