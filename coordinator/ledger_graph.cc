// Ledger: transitions that reach beyond one task: blocking what a failure takes down, lifting
// blocks whose cause is gone, cancellation and invalidation of whole subgraphs.
#include <utility>

#include "coordinator/ledger.h"
#include "coordinator/ledger_internal.h"
#include "coordinator/sqlite_db.h"

namespace clisc {

using ledger_internal::Payload;
using sqlite::ScopedStatement;
using sqlite::Transaction;

namespace {

// An open task that must be blocked, with the reason; NULL reason rows are filtered out.
constexpr std::string_view kBlockCandidatesSql =
    "SELECT id, reason FROM (SELECT t.id AS id, COALESCE("
    " (SELECT 'case ' || c.case_id || ' excluded: ' || COALESCE(c.excluded_reason, '')"
    "  FROM cases c WHERE c.run_id = t.run_id AND c.case_id = t.case_id"
    "  AND c.state = 'excluded'),"
    " (SELECT 'upstream ' || d.task_key || ' ' || d.state || COALESCE(': ' || d.error_message, '')"
    "  FROM task_deps e JOIN tasks d ON d.id = e.depends_on WHERE e.task_id = t.id"
    "  AND d.state IN ('failed', 'blocked', 'cancelled') AND NOT " CLISC_LEDGER_WAIVED_EDGE
    "  LIMIT 1)) AS reason"
    " FROM tasks t WHERE t.run_id = ? AND t.state IN ('pending', 'leased'))"
    " WHERE reason IS NOT NULL ORDER BY id";

// Blocked tasks whose every cause is gone: case active (or none) and no bad dependency.
constexpr std::string_view kUnblockCandidatesSql =
    "SELECT t.id FROM tasks t WHERE t.run_id = ? AND t.state = 'blocked'"
    " AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.run_id = t.run_id"
    "  AND c.case_id = t.case_id AND c.state = 'excluded')"
    " AND NOT EXISTS (SELECT 1 FROM task_deps e JOIN tasks d ON d.id = e.depends_on"
    "  WHERE e.task_id = t.id AND d.state IN ('failed', 'blocked', 'cancelled')"
    "  AND NOT " CLISC_LEDGER_WAIVED_EDGE
    ")"
    " ORDER BY t.id";

StatusOr<std::vector<TaskId>> ReadIds(sqlite::Statement& q) {
  std::vector<TaskId> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return ids;
    ids.push_back(q.Int(0));
  }
}

}  // namespace

Status Ledger::MoveTask(RunId run, TaskId task, TaskState to, std::string_view event_kind,
                        std::string_view reason, int64_t now, GraphEffects* effects) {
  ASSIGN_OR_RETURN(TaskRecord t, GetTask(task));
  if (t.state == TaskState::kLeased) {
    // The worker keeps running until it reports; its attempt is over and the report is fenced.
    RETURN_IF_ERROR(CloseAttempt(task, t.attempt, AttemptOutcome::kRevoked,
                                 AbortedError(std::string(reason)), now));
    effects->revoked_leases.push_back({task, t.attempt, t.lease_worker.value_or("")});
  }
  switch (to) {
    case TaskState::kBlocked:
    case TaskState::kCancelled: {
      ASSIGN_OR_RETURN(ScopedStatement update,
                       db_->Prepare("UPDATE tasks SET state = ?, lease_worker = NULL, "
                                    "lease_deadline_ms = NULL, error_code = ?, error_message = ?, "
                                    "updated_ms = ?, finished_ms = ? WHERE id = ?"));
      bool blocked = to == TaskState::kBlocked;
      update->BindAll(TaskStateName(to), blocked ? "FAILED_PRECONDITION" : "CANCELLED", reason, now,
                      now, task);
      RETURN_IF_ERROR(update->Run());
      (blocked ? effects->blocked : effects->cancelled).push_back(task);
      break;
    }
    case TaskState::kPending: {
      // A fresh budget from the current attempt number: numbers are never reused (fencing).
      ASSIGN_OR_RETURN(ScopedStatement update,
                       db_->Prepare("UPDATE tasks SET state = 'pending', attempt_base = attempt, "
                                    "not_before_ms = 0, lease_worker = NULL, "
                                    "lease_deadline_ms = NULL, outputs_json = NULL, "
                                    "error_code = NULL, error_message = NULL, updated_ms = ?, "
                                    "finished_ms = NULL WHERE id = ?"));
      update->BindAll(now, task);
      RETURN_IF_ERROR(update->Run());
      ASSIGN_OR_RETURN(ScopedStatement drop,
                       db_->Prepare("DELETE FROM artifacts WHERE task_id = ?"));
      drop->Bind(1, task);
      RETURN_IF_ERROR(drop->Run());
      effects->reset.push_back(task);
      break;
    }
    default:
      return InternalError("MoveTask cannot move a task to " + std::string(TaskStateName(to)));
  }
  return AppendEvent(run, event_kind, task, std::nullopt,
                     Payload({{"from", TaskStateName(t.state)}, {"reason", reason}}));
}

Status Ledger::PropagateBlocks(RunId run, int64_t now, GraphEffects* effects, bool* changed) {
  while (true) {
    bool progress = false;
    // 1. A per-case task that failed or got blocked takes its case out of the run.
    struct Exclusion {
      std::string case_id;
      TaskId task;
      std::string reason;
    };
    std::vector<Exclusion> exclusions;
    {
      ASSIGN_OR_RETURN(
          ScopedStatement q,
          // With one MIN() aggregate, SQLite takes the bare columns from the row holding the
          // minimum: the reason names the case's first failed task.
          db_->Prepare("SELECT c.case_id, MIN(t.id), 'task ' || t.task_key || ' ' || t.state || "
                       "COALESCE(': ' || t.error_message, '') FROM cases c JOIN tasks t "
                       "ON t.run_id = c.run_id AND t.case_id = c.case_id WHERE c.run_id = ? "
                       "AND c.state = 'active' AND t.state IN ('failed', 'blocked') "
                       "GROUP BY c.case_id ORDER BY c.case_id"));
      q->Bind(1, run);
      while (true) {
        ASSIGN_OR_RETURN(bool row, q->Step());
        if (!row) break;
        exclusions.push_back({q->Text(0), q->Int(1), q->Text(2)});
      }
    }
    for (const Exclusion& x : exclusions) {
      ASSIGN_OR_RETURN(ScopedStatement update,
                       db_->Prepare("UPDATE cases SET state = 'excluded', excluded_reason = ?, "
                                    "excluded_by_task = ?, updated_ms = ? "
                                    "WHERE run_id = ? AND case_id = ?"));
      update->BindAll(x.reason, x.task, now, run, x.case_id);
      RETURN_IF_ERROR(update->Run());
      RETURN_IF_ERROR(AppendEvent(run, "case_excluded", x.task, std::nullopt,
                                  Payload({{"case", x.case_id}, {"reason", x.reason}})));
      effects->excluded_cases.push_back(x.case_id);
      progress = true;
    }
    // 2. Open tasks of excluded cases, and open tasks downstream of a failure, are blocked.
    std::vector<std::pair<TaskId, std::string>> blocks;
    {
      ASSIGN_OR_RETURN(ScopedStatement q, db_->Prepare(kBlockCandidatesSql));
      q->Bind(1, run);
      while (true) {
        ASSIGN_OR_RETURN(bool row, q->Step());
        if (!row) break;
        blocks.emplace_back(q->Int(0), q->Text(1));
      }
    }
    for (const auto& [task, reason] : blocks) {
      RETURN_IF_ERROR(
          MoveTask(run, task, TaskState::kBlocked, "task_blocked", reason, now, effects));
      progress = true;
    }
    if (!progress) return OkStatus();
    *changed = true;
  }
}

Status Ledger::LiftStaleBlocks(RunId run, int64_t now, GraphEffects* effects, bool* changed) {
  while (true) {
    bool progress = false;
    // Cases excluded by a task that is no longer failed or blocked (retried, invalidated,
    // superseded) come back; PropagateBlocks excludes them again if another task still fails.
    std::vector<std::string> restored;
    {
      ASSIGN_OR_RETURN(ScopedStatement q,
                       db_->Prepare("SELECT c.case_id FROM cases c JOIN tasks x "
                                    "ON x.id = c.excluded_by_task WHERE c.run_id = ? "
                                    "AND c.state = 'excluded' "
                                    "AND x.state NOT IN ('failed', 'blocked') ORDER BY c.case_id"));
      q->Bind(1, run);
      while (true) {
        ASSIGN_OR_RETURN(bool row, q->Step());
        if (!row) break;
        restored.push_back(q->Text(0));
      }
    }
    for (const std::string& case_id : restored) {
      ASSIGN_OR_RETURN(ScopedStatement update,
                       db_->Prepare("UPDATE cases SET state = 'active', excluded_reason = NULL, "
                                    "excluded_by_task = NULL, updated_ms = ? "
                                    "WHERE run_id = ? AND case_id = ?"));
      update->BindAll(now, run, case_id);
      RETURN_IF_ERROR(update->Run());
      RETURN_IF_ERROR(AppendEvent(run, "case_restored", std::nullopt, std::nullopt,
                                  Payload({{"case", case_id}})));
      effects->restored_cases.push_back(case_id);
      progress = true;
    }
    std::vector<TaskId> unblock;
    {
      ASSIGN_OR_RETURN(ScopedStatement q, db_->Prepare(kUnblockCandidatesSql));
      q->Bind(1, run);
      ASSIGN_OR_RETURN(unblock, ReadIds(*q));
    }
    for (TaskId task : unblock) {
      RETURN_IF_ERROR(MoveTask(run, task, TaskState::kPending, "task_unblocked",
                               "the failure that blocked it is gone", now, effects));
      progress = true;
    }
    if (!progress) return OkStatus();
    *changed = true;
  }
}

Status Ledger::ReconcileBlocks(RunId run, int64_t now, GraphEffects* effects) {
  bool changed = false;
  RETURN_IF_ERROR(LiftStaleBlocks(run, now, effects, &changed));
  return PropagateBlocks(run, now, effects, &changed);
}

StatusOr<std::vector<TaskId>> Ledger::Downstream(TaskId task) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("WITH RECURSIVE down(id) AS (SELECT ?1 UNION SELECT e.task_id "
                                "FROM task_deps e JOIN down ON e.depends_on = down.id) "
                                "SELECT id FROM down ORDER BY id"));
  q->Bind(1, task);
  return ReadIds(*q);
}

StatusOr<GraphEffects> Ledger::CancelTask(TaskId task, std::string_view reason) {
  int64_t now = clock_->NowMs();
  GraphEffects effects;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(TaskRecord root, GetTask(task));
  if (!IsOpen(root.state)) {
    return FailedPreconditionError("task " + root.task_key + " is " +
                                   std::string(TaskStateName(root.state)) + ", not open");
  }
  ASSIGN_OR_RETURN(std::vector<TaskId> down, Downstream(task));
  for (TaskId id : down) {
    ASSIGN_OR_RETURN(TaskRecord t, GetTask(id));
    if (!IsOpen(t.state)) continue;
    RETURN_IF_ERROR(
        MoveTask(root.run_id, id, TaskState::kCancelled, "task_cancelled",
                 id == task ? std::string(reason)
                            : "upstream " + root.task_key + " cancelled: " + std::string(reason),
                 now, &effects));
  }
  RETURN_IF_ERROR(tx.Commit());
  return effects;
}

StatusOr<GraphEffects> Ledger::CancelRun(RunId run, std::string_view reason, RunState final_state) {
  int64_t now = clock_->NowMs();
  GraphEffects effects;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(RunRecord record, GetRun(run));
  std::vector<TaskId> open;
  {
    ASSIGN_OR_RETURN(ScopedStatement q,
                     db_->Prepare("SELECT id FROM tasks WHERE run_id = ? "
                                  "AND state IN ('pending', 'leased') ORDER BY id"));
    q->Bind(1, run);
    ASSIGN_OR_RETURN(open, ReadIds(*q));
  }
  for (TaskId id : open) {
    RETURN_IF_ERROR(
        MoveTask(run, id, TaskState::kCancelled, "task_cancelled", reason, now, &effects));
  }
  if (record.state != final_state) {
    ASSIGN_OR_RETURN(ScopedStatement update,
                     db_->Prepare("UPDATE runs SET state = ?, state_reason = ?, updated_ms = ? "
                                  "WHERE id = ?"));
    update->BindAll(RunStateName(final_state), reason, now, run);
    RETURN_IF_ERROR(update->Run());
    RETURN_IF_ERROR(AppendEvent(run, "run_state", std::nullopt, std::nullopt,
                                Payload({{"from", RunStateName(record.state)},
                                         {"to", RunStateName(final_state)},
                                         {"reason", reason}})));
  }
  RETURN_IF_ERROR(tx.Commit());
  return effects;
}

StatusOr<GraphEffects> Ledger::Invalidate(TaskId task, std::string_view reason) {
  int64_t now = clock_->NowMs();
  GraphEffects effects;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(TaskRecord root, GetTask(task));
  if (root.state != TaskState::kSucceeded) {
    return FailedPreconditionError("task " + root.task_key + " is " +
                                   std::string(TaskStateName(root.state)) +
                                   "; only a succeeded task can be invalidated");
  }
  ASSIGN_OR_RETURN(std::vector<TaskId> down, Downstream(task));
  for (TaskId id : down) {
    ASSIGN_OR_RETURN(TaskRecord t, GetTask(id));
    // Pending tasks have nothing to undo; cancelled ones stay as the operator left them.
    if (t.state == TaskState::kPending || t.state == TaskState::kCancelled) continue;
    bool is_root = id == task;
    RETURN_IF_ERROR(
        MoveTask(root.run_id, id, TaskState::kPending, is_root ? "task_invalidated" : "task_reset",
                 is_root ? std::string(reason)
                         : "upstream " + root.task_key + " invalidated: " + std::string(reason),
                 now, &effects));
  }
  RETURN_IF_ERROR(ReconcileBlocks(root.run_id, now, &effects));
  RETURN_IF_ERROR(ReopenRunIfFinished(root.run_id, now));
  RETURN_IF_ERROR(tx.Commit());
  return effects;
}

}  // namespace clisc
