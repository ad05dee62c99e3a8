// Ledger: read-only queries for the scheduler, `clisc status` and tests.
#include <utility>

#include "coordinator/ledger.h"
#include "coordinator/ledger_internal.h"
#include "coordinator/sqlite_db.h"

namespace clisc {

using ledger_internal::kTaskColumns;
using ledger_internal::ReadTask;
using sqlite::ScopedStatement;

namespace {

std::vector<std::string> SplitRoles(const std::string& joined) {
  std::vector<std::string> roles;
  size_t start = 0;
  while (start < joined.size()) {
    size_t comma = joined.find(',', start);
    if (comma == std::string::npos) comma = joined.size();
    if (comma > start) roles.push_back(joined.substr(start, comma - start));
    start = comma + 1;
  }
  return roles;
}

}  // namespace

StatusOr<TaskRecord> Ledger::GetTask(TaskId task) {
  ASSIGN_OR_RETURN(ScopedStatement q, db_->Prepare("SELECT " + std::string(kTaskColumns) +
                                                   " FROM tasks t WHERE t.id = ?"));
  q->Bind(1, task);
  ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return NotFoundError("no task " + std::to_string(task) + " in the ledger");
  return ReadTask(*q);
}

StatusOr<std::optional<TaskRecord>> Ledger::FindTask(RunId run, std::string_view task_key) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT " + std::string(kTaskColumns) +
                                " FROM tasks t WHERE t.run_id = ? AND t.task_key = ?"));
  q->BindAll(run, task_key);
  ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::optional<TaskRecord>();
  ASSIGN_OR_RETURN(TaskRecord t, ReadTask(*q));
  return std::optional<TaskRecord>(std::move(t));
}

StatusOr<std::vector<TaskRecord>> Ledger::ListTasks(RunId run) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT " + std::string(kTaskColumns) +
                                " FROM tasks t WHERE t.run_id = ? ORDER BY t.id"));
  q->Bind(1, run);
  std::vector<TaskRecord> tasks;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return tasks;
    ASSIGN_OR_RETURN(TaskRecord t, ReadTask(*q));
    tasks.push_back(std::move(t));
  }
}

StatusOr<std::vector<AttemptRecord>> Ledger::ListAttempts(TaskId task) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT task_id, attempt, worker_id, started_ms, ended_ms, "
                                "outcome, error_code, error_message FROM attempts "
                                "WHERE task_id = ? ORDER BY attempt"));
  q->Bind(1, task);
  std::vector<AttemptRecord> attempts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return attempts;
    AttemptRecord a;
    a.task_id = q->Int(0);
    a.attempt = static_cast<int>(q->Int(1));
    a.worker_id = q->Text(2);
    a.started_ms = q->Int(3);
    a.ended_ms = q->OptionalInt(4);
    ASSIGN_OR_RETURN(a.outcome, ParseAttemptOutcome(q->Text(5)));
    a.error_code = q->OptionalText(6);
    a.error_message = q->OptionalText(7);
    attempts.push_back(std::move(a));
  }
}

StatusOr<std::vector<ArtifactRecord>> Ledger::ListArtifacts(TaskId task) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT name, relative_path, size_bytes, sha256 FROM artifacts "
                                "WHERE task_id = ? ORDER BY name"));
  q->Bind(1, task);
  std::vector<ArtifactRecord> artifacts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return artifacts;
    artifacts.push_back({q->Text(0), q->Text(1), q->Int(2), q->Text(3)});
  }
}

StatusOr<std::vector<InputArtifact>> Ledger::ListInputArtifacts(TaskId task) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT t.id, t.stage, t.case_id, a.name, a.relative_path, "
                                "a.size_bytes, a.sha256 FROM task_deps d "
                                "JOIN tasks t ON t.id = d.depends_on "
                                "JOIN artifacts a ON a.task_id = t.id "
                                "WHERE d.task_id = ? ORDER BY t.id, a.name"));
  q->Bind(1, task);
  std::vector<InputArtifact> inputs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return inputs;
    InputArtifact input;
    input.producer = q->Int(0);
    input.stage = q->Text(1);
    if (!q->IsNull(2)) input.case_id = q->Text(2);
    input.artifact = {q->Text(3), q->Text(4), q->Int(5), q->Text(6)};
    inputs.push_back(std::move(input));
  }
}

StatusOr<std::vector<RunArtifact>> Ledger::ListRunArtifacts(RunId run) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT a.task_id, a.name, a.relative_path, a.size_bytes, "
                                "a.sha256 FROM artifacts a JOIN tasks t ON t.id = a.task_id "
                                "WHERE t.run_id = ? AND t.state = 'succeeded' "
                                "ORDER BY a.task_id, a.name"));
  q->Bind(1, run);
  std::vector<RunArtifact> artifacts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return artifacts;
    artifacts.push_back({q->Int(0), {q->Text(1), q->Text(2), q->Int(3), q->Text(4)}});
  }
}

StatusOr<std::vector<CaseRecord>> Ledger::ListCases(RunId run) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT case_id, state, excluded_reason FROM cases "
                                "WHERE run_id = ? ORDER BY case_id"));
  q->Bind(1, run);
  std::vector<CaseRecord> cases;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return cases;
    CaseRecord c;
    c.case_id = q->Text(0);
    ASSIGN_OR_RETURN(c.state, ParseCaseState(q->Text(1)));
    c.excluded_reason = q->Text(2);
    cases.push_back(std::move(c));
  }
}

StatusOr<std::vector<StageStateCount>> Ledger::CountByStageAndState(RunId run) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT stage, state, COUNT(*) FROM tasks WHERE run_id = ? "
                                "GROUP BY stage, state ORDER BY MIN(id), state"));
  q->Bind(1, run);
  std::vector<StageStateCount> counts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return counts;
    StageStateCount c;
    c.stage = q->Text(0);
    ASSIGN_OR_RETURN(c.state, ParseTaskState(q->Text(1)));
    c.count = q->Int(2);
    counts.push_back(std::move(c));
  }
}

StatusOr<std::vector<StageTiming>> Ledger::StageTimings(RunId run) {
  ASSIGN_OR_RETURN(
      ScopedStatement q,
      db_->Prepare("SELECT stage, COUNT(finished_ms), MIN(finished_ms), MAX(finished_ms) FROM ("
                   "SELECT id, stage, CASE WHEN state = 'succeeded' THEN finished_ms END "
                   "AS finished_ms FROM tasks WHERE run_id = ?) GROUP BY stage ORDER BY MIN(id)"));
  q->Bind(1, run);
  std::vector<StageTiming> timings;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return timings;
    StageTiming t;
    t.stage = q->Text(0);
    t.succeeded = q->Int(1);
    t.first_finished_ms = q->OptionalInt(2);
    t.last_finished_ms = q->OptionalInt(3);
    timings.push_back(std::move(t));
  }
}

StatusOr<std::vector<FailureRecord>> Ledger::ListFailures(RunId run) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT id, task_key, stage, case_id, state, error_code, "
                                "error_message FROM tasks WHERE run_id = ? "
                                "AND state IN ('failed', 'blocked') ORDER BY id"));
  q->Bind(1, run);
  std::vector<FailureRecord> failures;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return failures;
    FailureRecord f;
    f.task_id = q->Int(0);
    f.task_key = q->Text(1);
    f.stage = q->Text(2);
    f.case_id = q->OptionalText(3);
    ASSIGN_OR_RETURN(f.state, ParseTaskState(q->Text(4)));
    f.error_code = q->Text(5);
    f.error_message = q->Text(6);
    failures.push_back(std::move(f));
  }
}

StatusOr<std::vector<WorkerRecord>> Ledger::ListWorkers() {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT id, roles, device, slots, hostname, first_seen_ms, "
                                "last_seen_ms, state FROM workers ORDER BY id"));
  std::vector<WorkerRecord> workers;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return workers;
    WorkerRecord w;
    w.id = q->Text(0);
    w.roles = SplitRoles(q->Text(1));
    w.device = q->Text(2);
    w.slots = static_cast<int>(q->Int(3));
    w.hostname = q->Text(4);
    w.first_seen_ms = q->Int(5);
    w.last_seen_ms = q->Int(6);
    ASSIGN_OR_RETURN(w.state, ParseWorkerState(q->Text(7)));
    workers.push_back(std::move(w));
  }
}

StatusOr<std::vector<EventRecord>> Ledger::ListEvents(int64_t after_seq, int limit) {
  ASSIGN_OR_RETURN(ScopedStatement q,
                   db_->Prepare("SELECT seq, time_ms, run_id, kind, task_id, worker_id, "
                                "payload_json FROM events WHERE seq > ? ORDER BY seq LIMIT ?"));
  q->BindAll(after_seq, limit);
  std::vector<EventRecord> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) return events;
    EventRecord e;
    e.seq = q->Int(0);
    e.time_ms = q->Int(1);
    e.run_id = q->OptionalInt(2);
    e.kind = q->Text(3);
    e.task_id = q->OptionalInt(4);
    e.worker_id = q->OptionalText(5);
    e.payload_json = q->Text(6);
    events.push_back(std::move(e));
  }
}

StatusOr<RunHealth> Ledger::GetRunHealth(RunId run) {
  ASSIGN_OR_RETURN(
      ScopedStatement q,
      db_->Prepare("SELECT "
                   "(SELECT COUNT(*) FROM cases WHERE run_id = ?1 AND state = 'active'), "
                   "(SELECT COUNT(*) FROM cases WHERE run_id = ?1 AND state = 'excluded'), "
                   "(SELECT COUNT(*) FROM tasks WHERE run_id = ?1 "
                   " AND state IN ('pending', 'leased')), "
                   "(SELECT COUNT(*) FROM tasks WHERE run_id = ?1 AND case_id IS NULL "
                   " AND state IN ('failed', 'blocked'))"));
  q->Bind(1, run);
  ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return InternalError("run health query returned nothing");
  RunHealth h;
  h.active_cases = q->Int(0);
  h.excluded_cases = q->Int(1);
  h.open_tasks = q->Int(2);
  h.failed_global_tasks = q->Int(3);
  return h;
}

}  // namespace clisc
