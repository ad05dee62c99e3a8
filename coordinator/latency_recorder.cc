#include "coordinator/latency_recorder.h"

#include <algorithm>
#include <cmath>

namespace clisc {

void LatencyRecorder::Started(int64_t task_id, int attempt, SteadyTime when) {
  started_[Key(task_id, attempt)] = when;
}

void LatencyRecorder::Finished(int64_t task_id, int attempt, SteadyTime when) {
  auto it = started_.find(Key(task_id, attempt));
  if (it == started_.end()) return;
  const double ms = std::chrono::duration<double, std::milli>(when - it->second).count();
  started_.erase(it);
  ++count_;
  total_ms_ += ms;
  if (samples_ms_.size() < reservoir_size_) {
    samples_ms_.push_back(ms);
    return;
  }
  // Reservoir sampling: every sample so far has the same chance to be kept.
  std::uniform_int_distribution<uint64_t> pick(0, count_ - 1);
  const uint64_t slot = pick(random_);
  if (slot < reservoir_size_) samples_ms_[slot] = ms;
}

void LatencyRecorder::Forget(int64_t task_id, int attempt) {
  started_.erase(Key(task_id, attempt));
}

double LatencyRecorder::QuantileMs(double q) const {
  if (samples_ms_.empty()) return 0.0;
  std::vector<double> sorted = samples_ms_;
  const size_t rank = std::min(sorted.size() - 1,
                               static_cast<size_t>(std::ceil(q * sorted.size())) -
                                   (q > 0 ? 1 : 0));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank),
                   sorted.end());
  return sorted[rank];
}

}  // namespace clisc
