// Ledger: the per-task transitions of the lease cycle (lease, complete, fail, expire), single and
// batched. A batch is one transaction; each item is checked on its own, and a refused item
// leaves the ledger untouched, so a batch behaves like the same calls made one by one.
#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "coordinator/ledger.h"
#include "coordinator/ledger_internal.h"
#include "coordinator/sqlite_db.h"

namespace clisc {

using ledger_internal::CodeName;
using ledger_internal::Payload;
using sqlite::ScopedStatement;
using sqlite::Transaction;

namespace {

// The lease fields every transition out of `leased` checks.
struct LeaseView {
  RunId run_id = 0;
  TaskState state = TaskState::kPending;
  int attempt = 0;
  int attempt_base = 0;
  int max_attempts = 1;
  std::optional<std::string> lease_worker;
  int64_t not_before_ms = 0;
  std::optional<std::string> case_id;
};

StatusOr<std::optional<LeaseView>> ReadLeaseView(sqlite::Database& db, TaskId task) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db.Prepare("SELECT run_id, state, attempt, attempt_base, max_attempts, "
                              "lease_worker, not_before_ms, case_id FROM tasks WHERE id = ?"));
  q->Bind(1, task);
  ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::optional<LeaseView>();
  LeaseView v;
  v.run_id = q->Int(0);
  ASSIGN_OR_RETURN(v.state, ParseTaskState(q->Text(1)));
  v.attempt = static_cast<int>(q->Int(2));
  v.attempt_base = static_cast<int>(q->Int(3));
  v.max_attempts = static_cast<int>(q->Int(4));
  v.lease_worker = q->OptionalText(5);
  v.not_before_ms = q->Int(6);
  v.case_id = q->OptionalText(7);
  return std::optional<LeaseView>(std::move(v));
}

// Why a report for (attempt, worker) does not match the task's current lease; OK if it does.
// This is the fence: only the holder of the newest lease may move a leased task on.
Status CheckFence(TaskId task, const std::optional<LeaseView>& view, int attempt,
                  const std::optional<std::string>& worker) {
  std::string name = "task " + std::to_string(task);
  if (!view.has_value()) return NotFoundError("no " + name + " in the ledger");
  if (view->state != TaskState::kLeased) {
    return FailedPreconditionError(name + " is " + std::string(TaskStateName(view->state)) +
                                   ", not leased (stale attempt " + std::to_string(attempt) + ")");
  }
  if (attempt != view->attempt) {
    return FailedPreconditionError(name + ": stale attempt " + std::to_string(attempt) +
                                   ", current lease is attempt " + std::to_string(view->attempt));
  }
  if (worker.has_value() && view->lease_worker != worker) {
    return FailedPreconditionError(name + " attempt " + std::to_string(attempt) + " is leased to " +
                                   view->lease_worker.value_or("nobody") + ", not " + *worker);
  }
  return OkStatus();
}

Status ValidateArtifact(const ArtifactRecord& a) {
  if (a.name.empty()) return InvalidArgumentError("artifact without a name");
  const std::string& p = a.relative_path;
  if (p.empty() || p.front() == '/' || p == ".." || p.rfind("../", 0) == 0 ||
      p.find("/../") != std::string::npos || p.find('\0') != std::string::npos) {
    return InvalidArgumentError("artifact " + a.name + ": path '" + p +
                                "' must stay inside the artifact store");
  }
  if (a.size_bytes < 0) return InvalidArgumentError("artifact " + a.name + ": negative size");
  bool hex = a.sha256.size() == 64;
  for (char c : a.sha256)
    hex = hex && (std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'));
  if (!hex)
    return InvalidArgumentError("artifact " + a.name + ": sha256 must be 64 lower-case hex digits");
  return OkStatus();
}

}  // namespace

// ---- Lease ------------------------------------------------------------------------------------

Status Ledger::LeaseOne(const LeaseRequest& request, int64_t now, StatusOr<LeaseGrant>* out) {
  // State, backoff and the dependencies still gating the task, in one statement: leasing is
  // the hottest path of the coordinator.
  RunId run = 0;
  TaskState state = TaskState::kPending;
  int attempt = 0;
  int64_t not_before = 0;
  int64_t unmet = 0;
  {
    ASSIGN_OR_RETURN(ScopedStatement q,
                     db_->Prepare("SELECT t.run_id, t.state, t.attempt, t.not_before_ms, "
                                  "(SELECT COUNT(*) FROM task_deps e "
                                  "JOIN tasks d ON d.id = e.depends_on "
                                  "WHERE e.task_id = t.id AND d.state <> 'succeeded' "
                                  "AND NOT " CLISC_LEDGER_WAIVED_EDGE ") "
                                  "FROM tasks t WHERE t.id = ?"));
    q->Bind(1, request.task_id);
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) {
      *out = NotFoundError("no task " + std::to_string(request.task_id) + " in the ledger");
      return OkStatus();
    }
    run = q->Int(0);
    ASSIGN_OR_RETURN(state, ParseTaskState(q->Text(1)));
    attempt = static_cast<int>(q->Int(2));
    not_before = q->Int(3);
    unmet = q->Int(4);
  }
  if (state != TaskState::kPending) {
    *out = FailedPreconditionError("task " + std::to_string(request.task_id) + " is " +
                                   std::string(TaskStateName(state)) + ", not pending");
    return OkStatus();
  }
  if (not_before > now) {
    *out = FailedPreconditionError("task " + std::to_string(request.task_id) +
                                   " backs off for another " + std::to_string(not_before - now) +
                                   " ms");
    return OkStatus();
  }
  if (unmet > 0) {
    *out = FailedPreconditionError("task " + std::to_string(request.task_id) + " waits for " +
                                   std::to_string(unmet) + " unfinished dependencies");
    return OkStatus();
  }
  ++attempt;
  {
    ASSIGN_OR_RETURN(ScopedStatement update,
                     db_->Prepare("UPDATE tasks SET state = 'leased', attempt = ?, "
                                  "lease_worker = ?, lease_deadline_ms = ?, updated_ms = ? "
                                  "WHERE id = ?"));
    update->BindAll(attempt, request.worker_id, request.deadline_ms, now, request.task_id);
    RETURN_IF_ERROR(update->Run());
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement insert,
                     db_->Prepare("INSERT INTO attempts (task_id, attempt, worker_id, started_ms, "
                                  "outcome) VALUES (?, ?, ?, ?, 'running')"));
    insert->BindAll(request.task_id, attempt, request.worker_id, now);
    RETURN_IF_ERROR(insert->Run());
  }
  // Built by hand: this payload is written for every lease.
  std::string payload = "{\"attempt\":" + std::to_string(attempt);
  if (request.deadline_ms.has_value()) {
    payload += ",\"deadline_ms\":" + std::to_string(*request.deadline_ms);
  }
  payload += "}";
  RETURN_IF_ERROR(AppendEvent(run, "task_leased", request.task_id, request.worker_id, payload));
  *out = LeaseGrant{request.task_id, attempt, request.worker_id, request.deadline_ms};
  return OkStatus();
}

StatusOr<LeaseGrant> Ledger::Lease(const LeaseRequest& request) {
  ASSIGN_OR_RETURN(std::vector<StatusOr<LeaseGrant>> grants, LeaseBatch({request}));
  return std::move(grants.front());
}

StatusOr<std::vector<StatusOr<LeaseGrant>>> Ledger::LeaseBatch(
    const std::vector<LeaseRequest>& requests) {
  int64_t now = clock_->NowMs();
  std::vector<StatusOr<LeaseGrant>> grants;
  grants.reserve(requests.size());
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  for (const LeaseRequest& request : requests) {
    StatusOr<LeaseGrant> grant = InternalError("not processed");
    RETURN_IF_ERROR(LeaseOne(request, now, &grant));
    grants.push_back(std::move(grant));
  }
  RETURN_IF_ERROR(tx.Commit());
  return grants;
}

// ---- Complete ---------------------------------------------------------------------------------

Status Ledger::CloseAttempt(TaskId task, int attempt, AttemptOutcome outcome, const Status& error,
                            int64_t now) {
  ASSIGN_OR_RETURN(ScopedStatement update,
                   db_->Prepare("UPDATE attempts SET ended_ms = ?, outcome = ?, error_code = ?, "
                                "error_message = ? WHERE task_id = ? AND attempt = ? "
                                "AND outcome = 'running'"));
  update->Bind(1, now);
  update->Bind(2, AttemptOutcomeName(outcome));
  if (error.ok()) {
    update->Bind(3, nullptr);
    update->Bind(4, nullptr);
  } else {
    update->Bind(3, CodeName(error));
    update->Bind(4, error.message());
  }
  update->Bind(5, task);
  update->Bind(6, attempt);
  return update->Run();
}

Status Ledger::CompleteOne(const Completion& c, int64_t now, Status* out) {
  for (const ArtifactRecord& a : c.artifacts) {
    Status valid = ValidateArtifact(a);
    if (!valid.ok()) {
      *out = valid.WithContext("task " + std::to_string(c.task_id));
      return OkStatus();
    }
  }
  ASSIGN_OR_RETURN(std::optional<LeaseView> view, ReadLeaseView(*db_, c.task_id));
  *out = CheckFence(c.task_id, view, c.attempt, c.worker_id);
  if (!out->ok()) return OkStatus();
  {
    ASSIGN_OR_RETURN(ScopedStatement update,
                     db_->Prepare("UPDATE tasks SET state = 'succeeded', outputs_json = ?, "
                                  "lease_worker = NULL, lease_deadline_ms = NULL, "
                                  "error_code = NULL, error_message = NULL, updated_ms = ?, "
                                  "finished_ms = ? WHERE id = ?"));
    update->BindAll(c.outputs_json, now, now, c.task_id);
    RETURN_IF_ERROR(update->Run());
  }
  RETURN_IF_ERROR(CloseAttempt(c.task_id, c.attempt, AttemptOutcome::kSucceeded, OkStatus(), now));
  if (!c.artifacts.empty()) {
    ASSIGN_OR_RETURN(ScopedStatement insert,
                     db_->Prepare("INSERT INTO artifacts (task_id, name, relative_path, "
                                  "size_bytes, sha256, attempt, created_ms) VALUES "
                                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (task_id, name) DO "
                                  "UPDATE SET relative_path = ?3, size_bytes = ?4, sha256 = ?5, "
                                  "attempt = ?6, created_ms = ?7"));
    for (const ArtifactRecord& a : c.artifacts) {
      insert->BindAll(c.task_id, a.name, a.relative_path, a.size_bytes, a.sha256, c.attempt, now);
      RETURN_IF_ERROR(insert->Run());
      insert->Reset();
    }
  }
  // Built by hand: this payload is written for every success.
  RETURN_IF_ERROR(AppendEvent(view->run_id, "task_succeeded", c.task_id, c.worker_id,
                              "{\"attempt\":" + std::to_string(c.attempt) +
                                  ",\"artifacts\":" + std::to_string(c.artifacts.size()) + "}"));
  return OkStatus();
}

Status Ledger::Complete(const Completion& completion) {
  ASSIGN_OR_RETURN(std::vector<Status> results, CompleteBatch({completion}));
  return results.front();
}

StatusOr<std::vector<Status>> Ledger::CompleteBatch(const std::vector<Completion>& completions) {
  int64_t now = clock_->NowMs();
  std::vector<Status> results;
  results.reserve(completions.size());
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  for (const Completion& c : completions) {
    Status result;
    RETURN_IF_ERROR(CompleteOne(c, now, &result));
    results.push_back(std::move(result));
  }
  RETURN_IF_ERROR(tx.Commit());
  return results;
}

// ---- Fail and expire --------------------------------------------------------------------------

Status Ledger::FailOne(TaskId task, int attempt, const std::optional<std::string>& worker,
                       const Status& error, bool retryable, bool lost, int64_t retry_delay_ms,
                       int64_t now, StatusOr<TaskState>* out) {
  ASSIGN_OR_RETURN(std::optional<LeaseView> view, ReadLeaseView(*db_, task));
  Status fence = CheckFence(task, view, attempt, worker);
  if (!fence.ok()) {
    *out = fence;
    return OkStatus();
  }
  Status cause =
      error.ok() ? Status(StatusCode::kUnknown, "failure reported without an error") : error;
  int used = view->attempt - view->attempt_base;
  bool retry = retryable && used < view->max_attempts;
  RETURN_IF_ERROR(CloseAttempt(task, attempt,
                               lost ? AttemptOutcome::kLost : AttemptOutcome::kFailed, cause, now));
  std::string message = cause.message();
  if (retryable && !retry) {
    message = "gave up after " + std::to_string(used) + " attempts; last: " + message;
  }
  {
    ASSIGN_OR_RETURN(ScopedStatement update,
                     db_->Prepare("UPDATE tasks SET state = ?, not_before_ms = ?, "
                                  "lease_worker = NULL, lease_deadline_ms = NULL, error_code = ?, "
                                  "error_message = ?, updated_ms = ?, finished_ms = ? "
                                  "WHERE id = ?"));
    update->Bind(1, retry ? "pending" : "failed");
    update->Bind(2, retry ? now + std::max<int64_t>(retry_delay_ms, 0) : view->not_before_ms);
    update->Bind(3, CodeName(cause));
    update->Bind(4, message);
    update->Bind(5, now);
    update->Bind(6, retry ? std::optional<int64_t>() : std::optional<int64_t>(now));
    update->Bind(7, task);
    RETURN_IF_ERROR(update->Run());
  }
  nlohmann::json payload = {{"attempt", attempt}, {"code", CodeName(cause)}, {"error", message}};
  std::string kind;
  if (retry) {
    payload["retry_in_ms"] = std::max<int64_t>(retry_delay_ms, 0);
    kind = lost ? "task_lease_lost" : "task_retry";
  } else {
    kind = "task_failed";
  }
  std::optional<std::string_view> worker_view;
  if (view->lease_worker.has_value()) worker_view = *view->lease_worker;
  RETURN_IF_ERROR(AppendEvent(view->run_id, kind, task, worker_view, Payload(payload)));
  *out = retry ? TaskState::kPending : TaskState::kFailed;
  return OkStatus();
}

StatusOr<FailResult> Ledger::Fail(const FailureReport& report) { return FailBatch({report}); }

StatusOr<FailResult> Ledger::FailMany(
    const std::vector<ledger_internal::PendingFailure>& failures) {
  int64_t now = clock_->NowMs();
  FailResult result;
  std::set<RunId> runs_with_failures;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  for (const ledger_internal::PendingFailure& f : failures) {
    StatusOr<TaskState> outcome = InternalError("not processed");
    RETURN_IF_ERROR(FailOne(f.task_id, f.attempt, f.worker_id, f.error, f.retryable, f.lost,
                            f.retry_delay_ms, now, &outcome));
    if (outcome.ok() && *outcome == TaskState::kFailed) {
      ASSIGN_OR_RETURN(std::optional<LeaseView> view, ReadLeaseView(*db_, f.task_id));
      runs_with_failures.insert(view->run_id);
    }
    result.outcomes.push_back(std::move(outcome));
  }
  for (RunId run : runs_with_failures) {
    bool changed = false;
    RETURN_IF_ERROR(PropagateBlocks(run, now, &result.effects, &changed));
  }
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

StatusOr<FailResult> Ledger::FailBatch(const std::vector<FailureReport>& reports) {
  std::vector<ledger_internal::PendingFailure> failures;
  failures.reserve(reports.size());
  for (const FailureReport& r : reports) {
    failures.push_back({r.task_id, r.attempt, r.worker_id, r.error, r.retryable,
                        /*lost=*/false, r.retry_delay_ms});
  }
  return FailMany(failures);
}

StatusOr<FailResult> Ledger::ExpireLeases(const std::vector<LeaseExpiry>& expiries) {
  std::vector<ledger_internal::PendingFailure> failures;
  failures.reserve(expiries.size());
  for (const LeaseExpiry& e : expiries) {
    failures.push_back({e.task_id, e.attempt, std::nullopt,
                        UnavailableError("lease lost: " + e.reason), /*retryable=*/true,
                        /*lost=*/true, e.retry_delay_ms});
  }
  return FailMany(failures);
}

}  // namespace clisc
