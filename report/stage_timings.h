// Per-stage timings of a run, read from its ledger (W/ledger.db) without writing to it: tasks per
// stage by state, wall time from the first attempt's start to the last attempt's end, the summed
// time of every attempt, and failed, lost and retried attempts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace clisc::report {

struct StageTimingRow {
  std::string stage;
  int64_t tasks = 0;
  int64_t succeeded = 0, failed = 0, blocked = 0, cancelled = 0, open = 0;
  int64_t attempts = 0;
  int64_t failed_attempts = 0, lost_attempts = 0;
  int64_t retries = 0;  // attempts beyond the first of each task
  std::optional<int64_t> first_start_ms, last_end_ms;
  int64_t task_time_ms = 0;  // summed over finished attempts
  std::optional<int64_t> wall_ms() const {
    if (!first_start_ms || !last_end_ms) return std::nullopt;
    return *last_end_ms - *first_start_ms;
  }
};

struct RunLedgerSummary {
  std::string run_name;
  std::string state;  // running | succeeded | failed | cancelled
  std::string state_reason;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  std::optional<int64_t> last_activity_ms;  // the latest attempt end
  std::vector<StageTimingRow> stages;       // in plan order (first task id of the stage)
};

// Reads the run `run_name` (or, when the ledger has no such run, its first run). NOT_FOUND for a
// missing file or a ledger without runs; the SQLite errors otherwise.
StatusOr<RunLedgerSummary> ReadRunLedger(const std::filesystem::path& ledger_path,
                                         const std::string& run_name = "clisc");

}  // namespace clisc::report
