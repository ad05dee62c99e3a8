#include "workers/runtime/recent_results.h"

namespace clisc::worker {

void RecentResults::Add(wire::TaskResult result, Clock::time_point now) {
  DropExpired(now);
  if (max_results_ == 0) return;
  while (entries_.size() >= max_results_) entries_.pop_front();
  entries_.push_back({now, std::move(result)});
}

std::vector<wire::TaskResult> RecentResults::Current(Clock::time_point now) {
  DropExpired(now);
  std::vector<wire::TaskResult> results;
  results.reserve(entries_.size());
  for (const Entry& entry : entries_) results.push_back(entry.result);
  return results;
}

std::vector<std::pair<std::string, uint32_t>> RecentResults::Leases(Clock::time_point now,
                                                                   size_t max) const {
  std::vector<std::pair<std::string, uint32_t>> leases;
  for (auto it = entries_.rbegin(); it != entries_.rend() && leases.size() < max; ++it) {
    if (now - it->added > keep_for_) break;
    leases.emplace_back(it->result.task_id(), it->result.attempt());
  }
  return leases;
}

void RecentResults::DropExpired(Clock::time_point now) {
  while (!entries_.empty() && now - entries_.front().added > keep_for_) entries_.pop_front();
}

}  // namespace clisc::worker
