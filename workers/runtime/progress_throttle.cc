#include "workers/runtime/progress_throttle.h"

namespace clisc::worker {

std::optional<wire::Progress> ProgressThrottle::Offer(wire::Progress report,
                                                      Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry& entry = entries_[Key(report.task_id(), report.attempt())];
  if (!entry.held &&
      (entry.last_sent == Clock::time_point::min() || now - entry.last_sent >= min_interval_)) {
    entry.last_sent = now;
    return report;
  }
  entry.held = std::move(report);
  return std::nullopt;
}

std::vector<wire::Progress> ProgressThrottle::TakeDue(Clock::time_point now) {
  std::vector<wire::Progress> due;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [key, entry] : entries_) {
    if (entry.held && now - entry.last_sent >= min_interval_) {
      due.push_back(std::move(*entry.held));
      entry.held.reset();
      entry.last_sent = now;
    }
  }
  return due;
}

std::optional<wire::Progress> ProgressThrottle::Finish(const std::string& task_id,
                                                       uint32_t attempt) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key(task_id, attempt));
  if (it == entries_.end()) return std::nullopt;
  std::optional<wire::Progress> held = std::move(it->second.held);
  entries_.erase(it);
  return held;
}

}  // namespace clisc::worker
