// Progress lines of `clisc run` from the coordinator's status document (/api/status): one line
// when a stage finishes, and a line with the overall count and what is running (with the
// workers' own progress messages, e.g. "epoch 2/3 loss 0.41") when that changes, at most every
// few seconds, so a long training shows life without flooding the terminal.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace clisc::cli {

class RunProgressPrinter {
 public:
  // `resuming`: stages already finished at the first document are not announced again.
  RunProgressPrinter(std::ostream& out, std::chrono::steady_clock::time_point start, bool resuming,
                     std::chrono::milliseconds min_interval = std::chrono::seconds(5));

  // Prints what changed since the previous document.
  void Update(const nlohmann::json& status);

  // "[  1:02:03]": time since start.
  std::string Elapsed() const;

 private:
  std::ostream& out_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::milliseconds min_interval_;
  std::chrono::steady_clock::time_point last_line_{};
  std::string last_activity_;
  bool seed_silently_;
  std::map<std::string, bool> stage_done_;
};

}  // namespace clisc::cli
