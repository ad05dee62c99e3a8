// Delays between attempts to reach the coordinator: exponential (100 ms doubling to 5 s) with
// jitter, so that a cluster of workers whose coordinator restarted does not reconnect in
// lockstep.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace clisc::worker {

class ReconnectBackoff {
 public:
  ReconnectBackoff(std::chrono::milliseconds initial = std::chrono::milliseconds(100),
                   std::chrono::milliseconds max = std::chrono::milliseconds(5000),
                   uint64_t seed = std::random_device{}());

  // The wait before the next attempt: uniform in [base / 2, base], after which base doubles
  // (up to max).
  std::chrono::milliseconds Next();
  // After a successful connection.
  void Reset();
  // Delays handed out since the last Reset().
  uint32_t failures() const { return failures_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds base_;
  uint32_t failures_ = 0;
  std::mt19937_64 random_;
};

}  // namespace clisc::worker
