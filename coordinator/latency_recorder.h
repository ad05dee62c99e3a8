// Round-trip times of tasks as the coordinator sees them (TaskAssign sent -> TaskResult read),
// for the status view, /metrics and the benchmark summary. Keeps a bounded reservoir of samples
// so memory stays flat on long runs while percentiles stay representative.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace clisc {

class LatencyRecorder {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  explicit LatencyRecorder(size_t reservoir_size = 200'000) : reservoir_size_(reservoir_size) {}

  void Started(int64_t task_id, int attempt, SteadyTime when);
  // Records the sample when the start is known; a result for an unknown start (sent before a
  // coordinator restart) is not a measurement.
  void Finished(int64_t task_id, int attempt, SteadyTime when);
  void Forget(int64_t task_id, int attempt);

  uint64_t count() const { return count_; }
  // Milliseconds at quantile q in [0, 1]; 0 with no samples.
  double QuantileMs(double q) const;
  double MeanMs() const { return count_ == 0 ? 0.0 : total_ms_ / static_cast<double>(count_); }

 private:
  static uint64_t Key(int64_t task_id, int attempt) {
    return (static_cast<uint64_t>(task_id) << 16) ^ static_cast<uint64_t>(attempt);
  }

  size_t reservoir_size_;
  std::unordered_map<uint64_t, SteadyTime> started_;
  std::vector<double> samples_ms_;
  uint64_t count_ = 0;
  double total_ms_ = 0;
  std::mt19937_64 random_{12345};
};

}  // namespace clisc
