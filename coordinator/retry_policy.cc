#include "coordinator/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace clisc {

namespace {

// SplitMix64 finalizer: a well-mixed 64-bit value from (task, attempt) without global state.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

int64_t RetryPolicy::DelayMs(int64_t task_id, int attempt) const {
  if (initial_delay_ms <= 0) return 0;
  int exponent = std::max(attempt, 1) - 1;
  double delay =
      static_cast<double>(initial_delay_ms) * std::pow(std::max(multiplier, 1.0), exponent);
  delay = std::min(delay, static_cast<double>(std::max(max_delay_ms, initial_delay_ms)));
  double share = std::clamp(jitter, 0.0, 1.0);
  if (share > 0.0) {
    uint64_t bits =
        Mix(static_cast<uint64_t>(task_id) * 1'000'003ULL + static_cast<uint64_t>(attempt));
    double unit = static_cast<double>(bits >> 11) / static_cast<double>(1ULL << 53);  // [0, 1)
    delay *= 1.0 - share * unit;
  }
  return static_cast<int64_t>(delay);
}

}  // namespace clisc
