#include "workers/runtime/reconnect_backoff.h"

#include <algorithm>

namespace clisc::worker {

ReconnectBackoff::ReconnectBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                   uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      base_(initial_),
      random_(seed) {}

std::chrono::milliseconds ReconnectBackoff::Next() {
  const int64_t base = base_.count();
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  const std::chrono::milliseconds delay(jitter(random_));
  base_ = std::min(max_, base_ * 2);
  ++failures_;
  return delay;
}

void ReconnectBackoff::Reset() {
  base_ = initial_;
  failures_ = 0;
}

}  // namespace clisc::worker
