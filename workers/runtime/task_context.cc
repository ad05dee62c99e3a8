#include <algorithm>
#include <thread>

#include "workers/runtime/role.h"

namespace clisc::worker {

TaskContext::TaskContext(TaskSpec spec, const ArtifactStore* store, std::string device,
                         std::shared_ptr<const LeaseControl> control, ProgressSink progress)
    : spec_(std::move(spec)),
      store_(store),
      device_(std::move(device)),
      control_(std::move(control)),
      progress_(std::move(progress)) {}

void TaskContext::ReportProgress(double fraction, std::string message,
                                 std::map<std::string, double> metrics) {
  if (progress_) progress_(fraction, std::move(message), std::move(metrics));
}

bool TaskContext::SleepFor(std::chrono::milliseconds duration) const {
  // Short steps keep a cancelled or expired task from holding its slot for long.
  constexpr auto kStep = std::chrono::milliseconds(10);
  const auto end = std::chrono::steady_clock::now() + duration;
  while (!cancelled()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kStep, end - now));
  }
  return false;
}

}  // namespace clisc::worker
