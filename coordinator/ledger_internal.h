// Shared by the ledger's .cc files only: column lists, row readers, SQL fragments and helpers.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "coordinator/ledger_types.h"
#include "coordinator/sqlite_db.h"

namespace clisc::ledger_internal {

// Columns read by ReadTask, in order; qualified with the alias "t".
inline constexpr std::string_view kTaskColumns =
    "t.id, t.run_id, t.task_key, t.stage, t.case_id, t.round, t.role, t.params_json, t.state, "
    "t.attempt, t.attempt_base, t.max_attempts, t.not_before_ms, t.lease_worker, "
    "t.lease_deadline_ms, t.outputs_json, t.error_code, t.error_message, t.created_ms, "
    "t.updated_ms, t.finished_ms";

// True for an edge (t depends on d) that no longer gates t: t is global and d belongs to an
// excluded case. Expects aliases t (dependent) and d (dependency).
#define CLISC_LEDGER_WAIVED_EDGE                                                    \
  "(t.case_id IS NULL AND d.case_id IS NOT NULL AND EXISTS (SELECT 1 FROM cases c " \
  "WHERE c.run_id = d.run_id AND c.case_id = d.case_id AND c.state = 'excluded'))"

// Reads a row selected with kTaskColumns starting at column `first`.
StatusOr<TaskRecord> ReadTask(const sqlite::Statement& row, int first = 0);

// JSON text of an event payload.
// Error messages can carry bytes that are not UTF-8 (file names, a worker's text); dump() would
// throw on them, so they are replaced rather than allowed to take the ledger down.
inline std::string Payload(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "CODE: message" pieces of a Status as stored in error_code / error_message.
inline std::string CodeName(const Status& s) { return std::string(StatusCodeName(s.code())); }

// A failure as FailOne records it: a worker's report, or a lease given up on (lost).
struct PendingFailure {
  TaskId task_id = 0;
  int attempt = 0;
  std::optional<std::string> worker_id;
  Status error;
  bool retryable = false;
  bool lost = false;
  int64_t retry_delay_ms = 0;
};

}  // namespace clisc::ledger_internal
