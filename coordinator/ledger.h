// The ledger: a SQLite file that records every run, task, attempt, artifact, worker and event,
// and the source of truth a restarted coordinator resumes from.
//
// Every state transition is one transaction that also appends an event row, so the file never
// holds a transition without its history. Batch methods (LeaseBatch, CompleteBatch, FailBatch,
// ExpireLeases) group many transitions in one transaction: each item is checked on its own (a
// refused item changes nothing and reports why), and the commit is shared (group commit).
//
// Dependency rule: a task may be leased when every dependency has succeeded, except that a global
// task (no case) does not wait for a task of an excluded case: excluding a case drops it from
// everything downstream. A terminal failure of a per-case task excludes its case (and blocks the
// case's other open tasks); a terminal failure of a global task blocks everything downstream.
//
// One Ledger is one connection: use it from one thread at a time. Other processes (`clisc
// status`) may read the same file concurrently; WAL lets readers and the writer proceed together.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/clock.h"
#include "coordinator/ledger_types.h"

namespace clisc {

namespace sqlite {
class Database;
}

struct LedgerOptions {
  // With WAL, synchronous=NORMAL syncs only at checkpoints: a committed transaction survives a
  // crash of the coordinator process (our failure model: the OS still writes the WAL out), but
  // the last transactions may roll back on power loss or a kernel crash. FULL syncs the WAL on
  // every commit and survives those too, at the price of one fsync per transaction (batches
  // amortize it). Choose FULL where the ledger's host may lose power while workers keep
  // computing results nobody would then remember.
  bool sync_full = false;
  // How long a transaction waits for another connection's write lock before UNAVAILABLE.
  int busy_timeout_ms = 5000;
  // Migration text to apply instead of the embedded schemas/ledger.sql (tests only).
  std::optional<std::string> migrations_sql;
  // Open an existing file for queries only (`clisc status` beside a running coordinator): no
  // migrations, no journal-mode change, every write refused. The file must be at exactly this
  // build's schema version: an older file would be migrated by the coordinator, and a newer one
  // may mean columns this build reads differently.
  bool read_only = false;
};

namespace ledger_internal {
struct PendingFailure;  // ledger_internal.h
}  // namespace ledger_internal

class Ledger {
 public:
  // Opens `path`, creating it if needed, and brings its schema up to date. With
  // options.read_only: NOT_FOUND for a missing file, FAILED_PRECONDITION for a file whose schema
  // version differs from this build's.
  static StatusOr<std::unique_ptr<Ledger>> Open(const std::string& path, const Clock* clock,
                                                const LedgerOptions& options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // PRAGMA user_version after migrations: the number of the last migration block applied.
  int schema_version() const { return schema_version_; }
  const Clock& clock() const { return *clock_; }

  // ---- Runs and cases ----------------------------------------------------------------------
  // Returns the run named `name`, creating it. An existing run takes the new config (an event
  // records the change of fingerprint) and goes back to running.
  StatusOr<RunId> OpenRun(std::string_view name, std::string_view config_yaml,
                          std::string_view config_fingerprint);
  StatusOr<RunRecord> GetRun(RunId run);
  StatusOr<std::optional<RunId>> FindRun(std::string_view name);
  Status SetRunState(RunId run, RunState state, std::string_view reason);
  // Registers cases (idempotent). UpsertTasks also adds the cases its tasks name.
  Status AddCases(RunId run, const std::vector<std::string>& case_ids);
  // Excludes a case (ingest rejects, operator decisions) and blocks its open tasks.
  StatusOr<GraphEffects> ExcludeCase(RunId run, std::string_view case_id, std::string_view reason);

  // ---- Planning ----------------------------------------------------------------------------
  // Inserts the tasks and dependencies of a plan, idempotently by task key. An existing key is
  // reused as it stands (a succeeded task is not redone); cancelled ones, and with
  // options.retry_failed failed and blocked ones, go back to pending with a fresh budget.
  StatusOr<UpsertResult> UpsertTasks(RunId run, const std::vector<TaskSpec>& specs,
                                     const UpsertOptions& options = {});
  // Pending and leased tasks of the run with the dependencies that still gate them.
  StatusOr<std::vector<OpenTask>> LoadOpenTasks(RunId run);

  // ---- Transitions -------------------------------------------------------------------------
  // pending -> leased (attempt + 1) when the dependencies allow it and not_before has passed.
  StatusOr<LeaseGrant> Lease(const LeaseRequest& request);
  StatusOr<std::vector<StatusOr<LeaseGrant>>> LeaseBatch(const std::vector<LeaseRequest>& requests);
  // leased -> succeeded with outputs and artifacts. A report for any attempt but the current
  // lease's (or from another worker) is FAILED_PRECONDITION and changes nothing.
  Status Complete(const Completion& completion);
  StatusOr<std::vector<Status>> CompleteBatch(const std::vector<Completion>& completions);
  // leased -> pending after retry_delay_ms (retryable, budget left) or -> failed.
  StatusOr<FailResult> Fail(const FailureReport& report);
  StatusOr<FailResult> FailBatch(const std::vector<FailureReport>& reports);
  // leased -> pending (attempt recorded as lost), or -> failed when the budget is spent: a task
  // that keeps killing its workers must not be retried forever.
  StatusOr<FailResult> ExpireLeases(const std::vector<LeaseExpiry>& expiries);
  // The task and everything downstream of it that is still open -> cancelled.
  StatusOr<GraphEffects> CancelTask(TaskId task, std::string_view reason);
  // Every open task of the run -> cancelled; the run -> final_state (cancelled, or failed when
  // the scheduler gives up on it).
  StatusOr<GraphEffects> CancelRun(RunId run, std::string_view reason,
                                   RunState final_state = RunState::kCancelled);
  // A succeeded task whose artifact is missing or corrupt goes back to pending, and so does
  // everything downstream of it; their artifact rows are dropped.
  StatusOr<GraphEffects> Invalidate(TaskId task, std::string_view reason);

  // ---- Workers -----------------------------------------------------------------------------
  // Records a worker's hello: new, or back (alive again, with its current roles and slots).
  Status UpsertWorker(const WorkerRecord& worker);
  Status SetWorkerState(std::string_view worker_id, WorkerState state, std::string_view reason);
  // Updates last_seen (the scheduler calls it sparingly; heartbeats live in memory).
  Status TouchWorker(std::string_view worker_id);

  // ---- Queries -----------------------------------------------------------------------------
  StatusOr<TaskRecord> GetTask(TaskId task);
  StatusOr<std::optional<TaskRecord>> FindTask(RunId run, std::string_view task_key);
  StatusOr<std::vector<TaskRecord>> ListTasks(RunId run);
  StatusOr<std::vector<AttemptRecord>> ListAttempts(TaskId task);
  StatusOr<std::vector<ArtifactRecord>> ListArtifacts(TaskId task);
  // Outputs of the task's dependencies, by producer id then name.
  StatusOr<std::vector<InputArtifact>> ListInputArtifacts(TaskId task);
  // Outputs of every succeeded task of the run, by task id then name.
  StatusOr<std::vector<RunArtifact>> ListRunArtifacts(RunId run);
  StatusOr<std::vector<CaseRecord>> ListCases(RunId run);
  StatusOr<std::vector<StageStateCount>> CountByStageAndState(RunId run);
  // Per stage, in the order stages first appear by task id: succeeded tasks and when the first
  // and last of them finished (the status view's throughput and ETA).
  StatusOr<std::vector<StageTiming>> StageTimings(RunId run);
  StatusOr<std::vector<FailureRecord>> ListFailures(RunId run);
  StatusOr<std::vector<WorkerRecord>> ListWorkers();
  // Events with seq > after_seq, oldest first, at most `limit`.
  StatusOr<std::vector<EventRecord>> ListEvents(int64_t after_seq, int limit);
  StatusOr<RunHealth> GetRunHealth(RunId run);

 private:
  Ledger(std::unique_ptr<sqlite::Database> db, const Clock* clock, int schema_version);

  // Helpers that run inside the caller's transaction (defined next to their users).
  Status AppendEvent(std::optional<RunId> run, std::string_view kind, std::optional<TaskId> task,
                     std::optional<std::string_view> worker, const std::string& payload_json);
  Status LeaseOne(const LeaseRequest& request, int64_t now, StatusOr<LeaseGrant>* out);
  Status CompleteOne(const Completion& completion, int64_t now, Status* out);
  // Ends a leased task's attempt; on return *out is the new state or why nothing changed.
  Status FailOne(TaskId task, int attempt, const std::optional<std::string>& worker,
                 const Status& error, bool retryable, bool lost, int64_t retry_delay_ms,
                 int64_t now, StatusOr<TaskState>* out);
  Status CloseAttempt(TaskId task, int attempt, AttemptOutcome outcome, const Status& error,
                      int64_t now);
  // Moves one open or finished task to `to` (blocked, cancelled or pending), revoking its lease
  // if it holds one; records the event and the effect.
  Status MoveTask(RunId run, TaskId task, TaskState to, std::string_view event_kind,
                  std::string_view reason, int64_t now, GraphEffects* effects);
  // Brings blocked tasks and excluded cases in line with the failures that caused them: lifts
  // blocks whose cause is gone, then blocks what a failure or exclusion takes down (fixpoints).
  Status ReconcileBlocks(RunId run, int64_t now, GraphEffects* effects);
  Status LiftStaleBlocks(RunId run, int64_t now, GraphEffects* effects, bool* changed);
  Status PropagateBlocks(RunId run, int64_t now, GraphEffects* effects, bool* changed);
  // Records each failure (one FailOne each) and blocks what terminal failures gate, in one
  // transaction: the shared body of FailBatch and ExpireLeases.
  StatusOr<FailResult> FailMany(const std::vector<ledger_internal::PendingFailure>& failures);
  Status ReopenRunIfFinished(RunId run, int64_t now);
  StatusOr<std::vector<TaskId>> Downstream(TaskId task);

  std::unique_ptr<sqlite::Database> db_;
  const Clock* clock_;
  int schema_version_;
};

}  // namespace clisc
