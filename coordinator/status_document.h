// The status document of a run: one JSON object that `clisc status`, the coordinator's
// /api/status and /metrics, and the Redis mirror all serve. The coordinator builds it with its
// live view (workers, heartbeats, progress); `clisc status --ledger` builds it from the ledger
// file alone.
//
// Schema 1 (times are milliseconds since the Unix epoch; ages are milliseconds before
// generated_ms):
//   schema        1
//   generated_ms  when the document was built
//   source        "coordinator" | "ledger"; a reader that got it from Redis sets "redis"
//   reader        (optional, set by readers only) {address, read_ms, mirrored_ms (Redis only)}
//   run           {name, id, state, state_reason, created_ms, updated_ms, config_fingerprint}
//   totals        {pending, leased, succeeded, failed, blocked, cancelled, total}
//   stages        [{stage, total, pending, leased, succeeded, failed, blocked, cancelled,
//                   done_fraction, rate_per_s, eta_s}] in plan order (first task id)
//                   done_fraction: share of tasks that need no more work (not pending/leased);
//                   rate_per_s: succeeded / (last - first finish), null below 2 finished;
//                   eta_s: (pending + leased) / rate_per_s; 0 when nothing is open; null when
//                   unknown
//   cases         {active, excluded}
//   workers       [{id, roles, device, slots, hostname, state, alive, last_heartbeat_ms,
//                   age_ms, running: [{task_id, task_key, stage, case_id, attempt, fraction,
//                   message}]}]; fraction and message are null without a progress report
//                   (always without the live view: the ledger knows leases, not progress)
//   failures      [{task_id, task_key, stage, case_id, state, error_code, error_message}],
//                 failed and blocked tasks by task id, at most kMaxListedFailures
//   failures_total  how many there are in all
//   scheduler     (live only) {open_tasks, ready, delayed, waiting, leased, workers_alive}
//   coordinator   (live only) {coordinator_id, pid, started_ms, uptime_ms, endpoint,
//                   http_endpoint, redis_state, frames_dropped: {reason: count},
//                   counters: {name: count}, gauges: {name: value}}
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "coordinator/ledger.h"
#include "coordinator/scheduler.h"

namespace clisc {

inline constexpr int kStatusSchemaVersion = 1;
inline constexpr size_t kMaxListedFailures = 50;

// The latest progress report of a running attempt.
struct LiveTaskProgress {
  TaskId task_id = 0;
  int attempt = 0;
  double fraction = 0;
  std::string message;
  int64_t updated_ms = 0;
};

struct LiveCoordinatorInfo {
  std::string coordinator_id;
  int64_t pid = 0;
  int64_t started_ms = 0;
  std::string endpoint;
  std::string http_endpoint;
  std::string redis_state;                                       // "off", "connected", "down"
  std::vector<std::pair<std::string, uint64_t>> frames_dropped;  // reason -> count
  // frames_received, results_duplicate, results_stale, tasks_assigned, ... (free-form)
  std::map<std::string, uint64_t> counters;
  std::map<std::string, double> gauges;  // e.g. roundtrip_p50_ms, roundtrip_p99_ms
};

// What only the running coordinator knows.
struct LiveView {
  SchedulerSnapshot scheduler;
  std::vector<WorkerView> workers;
  std::unordered_map<TaskId, LiveTaskProgress> progress;
  LiveCoordinatorInfo coordinator;
};

// The status document of one run: from the ledger alone (`live` null: `clisc status --ledger`)
// or with the live view. Costs a few GROUP BY queries plus one lookup per running task, so the
// coordinator can afford it about once a second on large runs; without the live view the leased
// tasks are found by reading the run's task list.
StatusOr<nlohmann::json> BuildStatusDocument(Ledger& ledger, RunId run, const LiveView* live,
                                             int64_t now_ms);

}  // namespace clisc
