// How long a task waits before its next attempt after a retryable failure or a lost lease:
// exponential backoff with a cap, optionally shortened by a jitter that is a pure function of
// (task, attempt), so a restarted coordinator and a test compute the same delay.
#pragma once

#include <cstdint>

namespace clisc {

struct RetryPolicy {
  int64_t initial_delay_ms = 1000;  // after the first failed attempt
  double multiplier = 2.0;          // growth per further failed attempt
  int64_t max_delay_ms = 60'000;    // cap
  // Fraction in [0, 1]: the delay is reduced by up to this share. Spreads retries of tasks that
  // failed together (a dead worker) so they do not all come back at the same instant.
  double jitter = 0.0;

  // Delay after attempt `attempt` (1-based) of task `task_id` failed.
  int64_t DelayMs(int64_t task_id, int attempt) const;
};

}  // namespace clisc
