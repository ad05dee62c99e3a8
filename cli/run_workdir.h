// The workdir of `clisc run`: one run's ledger, plan, effective config, logs, artifacts and report
// in one folder, which is also the run's artifact root. The folder is locked while a `clisc run`
// uses it (a second one on the same workdir is refused, naming the holder), and `run.json` records
// the dataset it was started on, so a later command resumes the same run and not another one.
//
//   W/run.json      {format, run, data, config_source, created, sessions: [{started, mode, ...}]}
//   W/config.yaml   the effective config of the latest session (overrides applied)
//   W/plan.json     the task graph with identity keys (coordinator/task_identity.h)
//   W/ledger.db     the SQLite ledger (run name "clisc")
//   W/logs/         coordinator.log, worker-<i>.log (appended across sessions)
//   W/cases/ ...    artifacts (README, "Artifact layout"); W/report/ the report
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace clisc::cli {

inline constexpr const char* kRunName = "clisc";

class RunWorkdir {
 public:
  // Creates the folder (and logs/) if needed and locks it. FAILED_PRECONDITION when another
  // process holds the lock, or when `must_resume` and there is no run to resume.
  static StatusOr<RunWorkdir> Open(const std::filesystem::path& root, bool must_resume);

  RunWorkdir(RunWorkdir&& other) noexcept;
  RunWorkdir& operator=(RunWorkdir&&) = delete;
  ~RunWorkdir();

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path ledger() const { return root_ / "ledger.db"; }
  std::filesystem::path plan() const { return root_ / "plan.json"; }
  std::filesystem::path config() const { return root_ / "config.yaml"; }
  std::filesystem::path logs() const { return root_ / "logs"; }
  std::filesystem::path report() const { return root_ / "report"; }

  // True when a run was started here before (its ledger exists).
  bool resuming() const { return resuming_; }
  // The dataset recorded by an earlier session; empty for a new workdir.
  std::filesystem::path recorded_data() const;

  // Records this session in run.json: the dataset (FAILED_PRECONDITION when it differs from the
  // recorded one), the config source and the mode.
  Status RecordSession(const std::filesystem::path& data, const std::string& config_source,
                       const std::string& mode);
  // Records the splits the plan used (ids per split), for the report.
  Status RecordSplits(const std::vector<std::string>& train, const std::vector<std::string>& valid,
                      const std::vector<std::string>& test);
  // Marks the latest session's end with the run state it left.
  Status RecordSessionEnd(const std::string& outcome);

 private:
  RunWorkdir(std::filesystem::path root, int lock_fd, bool resuming, nlohmann::json record);
  Status WriteRecord();

  std::filesystem::path root_;
  int lock_fd_ = -1;
  bool resuming_ = false;
  nlohmann::json record_;
};

}  // namespace clisc::cli
