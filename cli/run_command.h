// `clisc run` as a function, shared by `clisc run` and `clisc demo`: plan the method over a
// dataset with identity keys, start (or resume) the run in a workdir with a coordinator and local
// workers (or the coordinator alone, for a cluster), show progress, and write the report.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

namespace clisc::cli {

struct RunRequest {
  std::string config_path;
  std::vector<std::string> overrides;  // --set KEY=VALUE, in order
  std::string data;                    // empty: data.root, or the dataset recorded in the workdir
  std::filesystem::path workdir;
  int workers = 1;  // local workers; 0 with coordinator_only
  bool must_resume = false;
  bool coordinator_only = false;
  std::string bind;    // empty: a free loopback port (local), tcp://0.0.0.0:5555 (cluster)
  std::string http;    // empty: a free loopback port (local), 0.0.0.0:8470 (cluster); "off"
  std::string redis;   // empty: runtime.redis_url
  std::string device;  // empty: the config's device
  // CurveZMQ for cluster mode: the coordinator's key file and the workers' allow-list.
  std::string curve_key, curve_allow;
  bool retry_failed = false;
  bool write_report = true;
};

// SIGINT and SIGTERM set the returned flag (for ExecuteRun's `stop`) instead of ending the process.
const std::atomic<bool>& InstallRunStopHandlers();

// Prints to stdout/stderr and returns the process exit code: 0 the run succeeded, 1 it failed or
// was interrupted, 2 bad arguments, config or dataset.
int ExecuteRun(const RunRequest& request, const std::atomic<bool>& stop);

}  // namespace clisc::cli
