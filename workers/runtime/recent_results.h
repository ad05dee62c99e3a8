// The protocol has no acknowledgement for TaskResult: a result sent just before the coordinator
// died may never reach its ledger. The worker therefore keeps what it sent during the last
// minute and sends it again after every new HelloAck; the coordinator ignores duplicates.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <vector>

#include "schemas/clisc.pb.h"

namespace clisc::worker {

class RecentResults {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RecentResults(std::chrono::milliseconds keep_for = std::chrono::seconds(60),
                         size_t max_results = 10'000)
      : keep_for_(keep_for), max_results_(max_results) {}

  // Past max_results the oldest result is forgotten.
  void Add(wire::TaskResult result, Clock::time_point now);
  // The results added within keep_for of `now`, oldest first; older ones are dropped.
  std::vector<wire::TaskResult> Current(Clock::time_point now);
  // (task_id, attempt) of the newest results still kept, at most `max`. A Hello lists them with
  // the running leases, so a coordinator that restarted before recording them keeps those
  // leases for the re-sent results instead of giving the tasks to someone else.
  std::vector<std::pair<std::string, uint32_t>> Leases(Clock::time_point now, size_t max) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Clock::time_point added;
    wire::TaskResult result;
  };
  void DropExpired(Clock::time_point now);

  std::chrono::milliseconds keep_for_;
  size_t max_results_;
  std::deque<Entry> entries_;
};

}  // namespace clisc::worker
