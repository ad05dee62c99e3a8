#include "report/stage_timings.h"

#include <map>
#include <system_error>

#include "coordinator/sqlite_db.h"

namespace clisc::report {
namespace {

constexpr char kFindRun[] =
    "SELECT id, name, state, COALESCE(state_reason, ''), created_ms, updated_ms FROM runs "
    "ORDER BY (name = ?1) DESC, id LIMIT 1";

constexpr char kTaskCounts[] =
    "SELECT stage, COUNT(*), SUM(state = 'succeeded'), SUM(state = 'failed'), "
    "SUM(state = 'blocked'), SUM(state = 'cancelled'), SUM(state = 'pending' OR state = 'leased') "
    "FROM tasks WHERE run_id = ?1 GROUP BY stage ORDER BY MIN(id)";

constexpr char kAttemptTimes[] =
    "SELECT t.stage, COUNT(*), COUNT(DISTINCT a.task_id), SUM(a.outcome = 'failed'), "
    "SUM(a.outcome = 'lost'), MIN(a.started_ms), MAX(a.ended_ms), "
    "SUM(CASE WHEN a.ended_ms IS NULL THEN 0 ELSE a.ended_ms - a.started_ms END) "
    "FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.run_id = ?1 GROUP BY t.stage";

}  // namespace

StatusOr<RunLedgerSummary> ReadRunLedger(const std::filesystem::path& ledger_path,
                                         const std::string& run_name) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(ledger_path, ec)) {
    return NotFoundError("no ledger at " + ledger_path.string());
  }
  // Read-only: the coordinator of a running run may hold the file; WAL lets both proceed.
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db,
                   sqlite::Database::OpenReadOnly(ledger_path.string()));
  db->SetBusyTimeout(5000);
  RunLedgerSummary summary;
  int64_t run_id = 0;
  {
    ASSIGN_OR_RETURN(sqlite::ScopedStatement find, db->Prepare(kFindRun));
    find->Bind(1, run_name);
    ASSIGN_OR_RETURN(bool row, find->Step());
    if (!row) return NotFoundError("the ledger " + ledger_path.string() + " holds no run");
    run_id = find->Int(0);
    summary.run_name = find->Text(1);
    summary.state = find->Text(2);
    summary.state_reason = find->Text(3);
    summary.created_ms = find->Int(4);
    summary.updated_ms = find->Int(5);
  }
  std::map<std::string, size_t> index;
  {
    ASSIGN_OR_RETURN(sqlite::ScopedStatement counts, db->Prepare(kTaskCounts));
    counts->Bind(1, run_id);
    while (true) {
      ASSIGN_OR_RETURN(bool row, counts->Step());
      if (!row) break;
      StageTimingRow stage;
      stage.stage = counts->Text(0);
      stage.tasks = counts->Int(1);
      stage.succeeded = counts->Int(2);
      stage.failed = counts->Int(3);
      stage.blocked = counts->Int(4);
      stage.cancelled = counts->Int(5);
      stage.open = counts->Int(6);
      index[stage.stage] = summary.stages.size();
      summary.stages.push_back(std::move(stage));
    }
  }
  ASSIGN_OR_RETURN(sqlite::ScopedStatement times, db->Prepare(kAttemptTimes));
  times->Bind(1, run_id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, times->Step());
    if (!row) break;
    auto it = index.find(times->Text(0));
    if (it == index.end()) continue;
    StageTimingRow& stage = summary.stages[it->second];
    stage.attempts = times->Int(1);
    stage.retries = stage.attempts - times->Int(2);
    stage.failed_attempts = times->Int(3);
    stage.lost_attempts = times->Int(4);
    stage.first_start_ms = times->OptionalInt(5);
    stage.last_end_ms = times->OptionalInt(6);
    stage.task_time_ms = times->Int(7);
    if (stage.last_end_ms &&
        (!summary.last_activity_ms || *stage.last_end_ms > *summary.last_activity_ms)) {
      summary.last_activity_ms = stage.last_end_ms;
    }
  }
  return summary;
}

}  // namespace clisc::report
