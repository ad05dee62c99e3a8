// Ledger: planning (idempotent upsert of a task graph) and loading the open part of a run.
#include <set>
#include <unordered_map>
#include <utility>

#include "coordinator/ledger.h"
#include "coordinator/ledger_internal.h"
#include "coordinator/sqlite_db.h"

namespace clisc {

using ledger_internal::kTaskColumns;
using ledger_internal::Payload;
using ledger_internal::ReadTask;
using sqlite::ScopedStatement;
using sqlite::Transaction;

namespace {

Status ValidateSpecs(const std::vector<TaskSpec>& specs) {
  std::set<std::string_view> keys;
  for (const TaskSpec& s : specs) {
    if (s.task_key.empty() || s.stage.empty() || s.role.empty()) {
      return InvalidArgumentError("task spec '" + s.task_key + "' needs a key, a stage and a role");
    }
    if (s.max_attempts < 1) {
      return InvalidArgumentError("task " + s.task_key + ": max_attempts must be at least 1");
    }
    if (s.case_id.has_value() && s.case_id->empty()) {
      return InvalidArgumentError("task " + s.task_key + ": empty case id (use none for global)");
    }
    if (!keys.insert(s.task_key).second) {
      return InvalidArgumentError("task key " + s.task_key + " appears twice in one plan");
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<UpsertResult> Ledger::UpsertTasks(RunId run, const std::vector<TaskSpec>& specs,
                                           const UpsertOptions& options) {
  RETURN_IF_ERROR(ValidateSpecs(specs));
  int64_t now = clock_->NowMs();
  UpsertResult result;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(*db_));
  RETURN_IF_ERROR(GetRun(run).status());

  {
    ASSIGN_OR_RETURN(ScopedStatement add_case,
                     db_->Prepare("INSERT OR IGNORE INTO cases (run_id, case_id, state, "
                                  "updated_ms) VALUES (?, ?, 'active', ?)"));
    std::set<std::string_view> seen;
    for (const TaskSpec& s : specs) {
      if (!s.case_id.has_value() || !seen.insert(*s.case_id).second) continue;
      add_case->BindAll(run, *s.case_id, now);
      RETURN_IF_ERROR(add_case->Run());
      add_case->Reset();
    }
  }

  // Tasks, in plan order. `position` says where each key sits, so dependencies can be required
  // to point backwards (or to tasks already in the ledger): that keeps the graph acyclic.
  std::unordered_map<std::string_view, size_t> position;
  std::vector<bool> existed(specs.size(), false);
  for (size_t i = 0; i < specs.size(); ++i) {
    const TaskSpec& s = specs[i];
    ASSIGN_OR_RETURN(std::optional<TaskRecord> found, FindTask(run, s.task_key));
    TaskId id = 0;
    if (!found.has_value()) {
      ASSIGN_OR_RETURN(
          ScopedStatement insert,
          db_->Prepare("INSERT INTO tasks (run_id, task_key, stage, case_id, round, "
                       "role, params_json, state, max_attempts, created_ms, "
                       "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)"));
      insert->BindAll(run, s.task_key, s.stage, s.case_id, s.round, s.role, s.params_json,
                      s.max_attempts, now, now);
      RETURN_IF_ERROR(insert->Run());
      id = db_->LastInsertRowId();
      RETURN_IF_ERROR(AppendEvent(run, "task_created", id, std::nullopt,
                                  Payload({{"key", s.task_key},
                                           {"stage", s.stage},
                                           {"case", s.case_id.value_or("")},
                                           {"role", s.role}})));
      ++result.inserted;
    } else {
      id = found->id;
      existed[i] = true;
      bool reset = found->state == TaskState::kCancelled ||
                   (options.retry_failed &&
                    (found->state == TaskState::kFailed || found->state == TaskState::kBlocked));
      if (reset) {
        RETURN_IF_ERROR(MoveTask(run, id, TaskState::kPending, "task_replanned", "planned again",
                                 now, &result.effects));
        ++result.reset;
      } else {
        ++result.reused;
      }
    }
    position.emplace(s.task_key, i);
    result.task_ids.push_back(id);
  }

  {
    ASSIGN_OR_RETURN(ScopedStatement add_dep,
                     db_->Prepare("INSERT OR IGNORE INTO task_deps (task_id, depends_on) "
                                  "VALUES (?, ?)"));
    for (size_t i = 0; i < specs.size(); ++i) {
      for (const std::string& dep_key : specs[i].depends_on) {
        TaskId dep_id = 0;
        auto it = position.find(dep_key);
        if (it != position.end()) {
          if (it->second >= i) {
            return InvalidArgumentError("task " + specs[i].task_key + " depends on " + dep_key +
                                        ", which the plan lists later: list dependencies first");
          }
          dep_id = result.task_ids[it->second];
        } else {
          ASSIGN_OR_RETURN(std::optional<TaskRecord> dep, FindTask(run, dep_key));
          if (!dep.has_value()) {
            return InvalidArgumentError("task " + specs[i].task_key + " depends on unknown task " +
                                        dep_key);
          }
          dep_id = dep->id;
        }
        add_dep->BindAll(result.task_ids[i], dep_id);
        RETURN_IF_ERROR(add_dep->Run());
        add_dep->Reset();
        if (existed[i] && db_->Changes() > 0) {
          // Same key, new inputs: the planner built the key from something else than the inputs.
          return FailedPreconditionError("task " + specs[i].task_key +
                                         " exists with other dependencies; its key must change");
        }
      }
    }
  }

  if (options.replace_plan) {
    // Whatever of the old plan has not succeeded is superseded; succeeded tasks stay, so a
    // later plan that returns to their keys reuses them.
    std::set<TaskId> planned(result.task_ids.begin(), result.task_ids.end());
    std::vector<TaskId> stale;
    {
      ASSIGN_OR_RETURN(ScopedStatement q,
                       db_->Prepare("SELECT id FROM tasks WHERE run_id = ? AND state IN "
                                    "('pending', 'leased', 'failed', 'blocked') ORDER BY id"));
      q->Bind(1, run);
      while (true) {
        ASSIGN_OR_RETURN(bool row, q->Step());
        if (!row) break;
        if (planned.count(q->Int(0)) == 0) stale.push_back(q->Int(0));
      }
    }
    for (TaskId id : stale) {
      RETURN_IF_ERROR(MoveTask(run, id, TaskState::kCancelled, "task_superseded",
                               "superseded by a new plan", now, &result.effects));
      ++result.superseded;
    }
  }

  RETURN_IF_ERROR(ReconcileBlocks(run, now, &result.effects));
  if (result.inserted > 0 || result.reset > 0 || !result.effects.reset.empty()) {
    RETURN_IF_ERROR(ReopenRunIfFinished(run, now));
  }
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

StatusOr<std::vector<OpenTask>> Ledger::LoadOpenTasks(RunId run) {
  std::vector<OpenTask> open;
  std::unordered_map<TaskId, size_t> index;
  {
    ASSIGN_OR_RETURN(ScopedStatement q,
                     db_->Prepare("SELECT " + std::string(kTaskColumns) +
                                  " FROM tasks t WHERE t.run_id = ? "
                                  "AND t.state IN ('pending', 'leased') ORDER BY t.id"));
    q->Bind(1, run);
    while (true) {
      ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) break;
      ASSIGN_OR_RETURN(TaskRecord t, ReadTask(*q));
      index.emplace(t.id, open.size());
      open.push_back(OpenTask{std::move(t), {}});
    }
  }
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT e.task_id, e.depends_on FROM task_deps e "
                                "JOIN tasks t ON t.id = e.task_id "
                                "JOIN tasks d ON d.id = e.depends_on "
                                "WHERE t.run_id = ? AND t.state IN ('pending', 'leased') "
                                "AND d.state <> 'succeeded' AND NOT " CLISC_LEDGER_WAIVED_EDGE
                                " ORDER BY e.task_id, e.depends_on"));
  q->Bind(1, run);
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) break;
    auto it = index.find(q->Int(0));
    if (it != index.end()) open[it->second].unmet_deps.push_back(q->Int(1));
  }
  return open;
}

}  // namespace clisc
