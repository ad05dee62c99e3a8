// Keeps progress traffic to at most one report per lease every `min_interval` (a role may report
// every iteration) while never losing the latest report: one that arrives too soon is held and
// goes out when its window opens, or just before the task's result.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "schemas/clisc.pb.h"

namespace clisc::worker {

class ProgressThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ProgressThrottle(std::chrono::milliseconds min_interval = std::chrono::milliseconds(500))
      : min_interval_(min_interval) {}

  // Task thread: the report to send now, or nullopt when it is held back (replacing any report
  // held for the same lease).
  std::optional<wire::Progress> Offer(wire::Progress report, Clock::time_point now);
  // IO thread: held reports whose window has opened.
  std::vector<wire::Progress> TakeDue(Clock::time_point now);
  // Task thread, before posting the result: the held report of the lease, if any; forgets the
  // lease.
  std::optional<wire::Progress> Finish(const std::string& task_id, uint32_t attempt);

 private:
  struct Entry {
    Clock::time_point last_sent = Clock::time_point::min();
    std::optional<wire::Progress> held;
  };
  using Key = std::pair<std::string, uint32_t>;

  const std::chrono::milliseconds min_interval_;
  std::mutex mu_;
  std::map<Key, Entry> entries_;
};

}  // namespace clisc::worker
