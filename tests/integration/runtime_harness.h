// Shared pieces of the runtime integration tests: a scratch directory, plan files, the command
// lines of real coordinator and worker processes, and a read of the final ledger.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/clock.h"
#include "coordinator/ledger.h"
#include "tests/support/child_process.h"

namespace clisc::testutil {

class Scratch {
 public:
  explicit Scratch(const std::string& tag) {
    std::string pattern = (std::filesystem::temp_directory_path() / (tag + "-XXXXXX")).string();
    path_ = mkdtemp(pattern.data());
  }
  ~Scratch() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(path_);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// `cases` cases x `stages` stages of write_artifact tasks; stage k of a case reads stage k-1's
// output of the same case.
inline nlohmann::json ArtifactChainPlan(int cases, int stages, int bytes, int task_ms) {
  nlohmann::json tasks = nlohmann::json::array();
  for (int s = 1; s <= stages; ++s) {
    for (int c = 0; c < cases; ++c) {
      const std::string case_id = "case" + std::to_string(c);
      const std::string key = "s" + std::to_string(s) + "/" + case_id;
      nlohmann::json task = {
          {"key", key},
          {"stage", "s" + std::to_string(s)},
          {"role", "write_artifact"},
          {"case", case_id},
          {"params",
           {{"bytes", bytes},
            {"ms", task_ms},
            {"outputs", {{{"name", "out"}, {"path", key + ".bin"}}}}}}};
      if (s > 1) task["deps"] = {"s" + std::to_string(s - 1) + "/" + case_id};
      tasks.push_back(std::move(task));
    }
  }
  return {{"tasks", tasks}};
}

inline nlohmann::json SleepPlan(int count, int task_ms) {
  nlohmann::json tasks = nlohmann::json::array();
  for (int i = 0; i < count; ++i) {
    tasks.push_back({{"key", "t" + std::to_string(i)},
                     {"stage", "sleep"},
                     {"role", "sleep"},
                     {"params", {{"ms", task_ms}}}});
  }
  return {{"tasks", tasks}};
}

inline void WriteJson(const std::filesystem::path& path, const nlohmann::json& doc) {
  std::ofstream(path) << doc.dump();
}

struct CoordinatorArgs {
  std::filesystem::path dir;
  int port = 0;
  std::string run = "it";
  std::vector<std::string> extra;
};

inline std::vector<std::string> CoordinatorCommand(const CoordinatorArgs& a) {
  std::vector<std::string> argv = {CLISC_BINARY,
                                   "coordinator",
                                   "--ledger",
                                   (a.dir / "ledger.db").string(),
                                   "--run",
                                   a.run,
                                   "--bind",
                                   "tcp://127.0.0.1:" + std::to_string(a.port),
                                   "--plan",
                                   (a.dir / "plan.json").string(),
                                   "--summary",
                                   (a.dir / "summary.json").string(),
                                   "--exit-when-done"};
  argv.insert(argv.end(), a.extra.begin(), a.extra.end());
  return argv;
}

inline std::vector<std::string> WorkerCommand(int port, const std::string& id,
                                              const std::string& roles,
                                              std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {CLISC_BINARY, "worker", "--connect",
                                   "tcp://127.0.0.1:" + std::to_string(port),
                                   "--roles", roles, "--id", id};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Succeeded tasks of the run in a ledger file (another connection; WAL lets it read while the
// coordinator writes). -1 when the ledger cannot be read yet.
inline int64_t CountSucceeded(const std::filesystem::path& ledger_path, const std::string& run) {
  static RealClock clock;
  if (!std::filesystem::exists(ledger_path)) return -1;
  StatusOr<std::unique_ptr<Ledger>> ledger = Ledger::Open(ledger_path.string(), &clock);
  if (!ledger.ok()) return -1;
  StatusOr<std::optional<RunId>> id = (*ledger)->FindRun(run);
  if (!id.ok() || !id->has_value()) return -1;
  StatusOr<std::vector<StageStateCount>> counts = (*ledger)->CountByStageAndState(**id);
  if (!counts.ok()) return -1;
  int64_t succeeded = 0;
  for (const StageStateCount& c : *counts) {
    if (c.state == TaskState::kSucceeded) succeeded += c.count;
  }
  return succeeded;
}

}  // namespace clisc::testutil
