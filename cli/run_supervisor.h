// The processes of one `clisc run` session: the coordinator (always) and, in local mode, the
// workers. The supervisor restarts a worker that dies and a coordinator killed by a signal (both
// resume from the ledger), prints progress from the coordinator's status endpoint, and on SIGINT or
// SIGTERM stops everything cleanly so the next `clisc run` on the workdir resumes.
#pragma once

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/run_workdir.h"
#include "common/status.h"

namespace clisc::cli {

struct SupervisorOptions {
  std::filesystem::path binary;  // the clisc executable started for each process
  std::string bind;              // the coordinator's ZeroMQ endpoint
  std::string connect;           // the endpoint local workers connect to
  std::string http;              // the coordinator's status endpoint, host:port
  std::string redis_url;         // optional
  std::string curve_key, curve_allow;  // optional, both or none (cluster mode)
  bool retry_failed = false;
  // Local workers: one process each, all roles, one device each (empty: none given).
  std::vector<std::string> worker_devices;
  std::string roles = "prep,clip,cam,sam,trainer,reduce";
  int threads_per_worker = 0;  // 0: the library default
  int max_coordinator_restarts = 3;
  int max_worker_restarts = 5;  // per worker
};

struct SupervisedOutcome {
  bool succeeded = false;    // the coordinator ended with the run succeeded
  bool interrupted = false;  // stopped by a signal to `clisc run`
  std::string description;   // one line for the user
  nlohmann::json last_status;
};

// Runs the session until the run ends, `stop` is set, or a process cannot be kept alive.
StatusOr<SupervisedOutcome> SuperviseRun(const RunWorkdir& workdir,
                                         const SupervisorOptions& options,
                                         const std::atomic<bool>& stop, std::ostream& out);

// A TCP port on 127.0.0.1 that was free a moment ago.
StatusOr<int> PickFreeLoopbackPort();

}  // namespace clisc::cli
