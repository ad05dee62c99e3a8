// What task threads need to know about the IO thread's connection to the coordinator, published
// through atomics: the IO thread writes, task threads read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace clisc::worker {

class SessionState {
 public:
  // Bumped by every HelloAck: a request sent under an older generation may have been lost with
  // the old connection and is worth sending again.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::chrono::milliseconds heartbeat_interval() const {
    return std::chrono::milliseconds(heartbeat_interval_ms_.load(std::memory_order_relaxed));
  }
  // Largest data payload of one artifact chunk the coordinator accepts.
  uint64_t max_chunk_bytes() const { return max_chunk_bytes_.load(std::memory_order_relaxed); }

  void StartSession(std::chrono::milliseconds heartbeat_interval, uint64_t max_chunk_bytes) {
    heartbeat_interval_ms_.store(heartbeat_interval.count(), std::memory_order_relaxed);
    max_chunk_bytes_.store(max_chunk_bytes, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  void set_heartbeat_interval(std::chrono::milliseconds interval) {
    heartbeat_interval_ms_.store(interval.count(), std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> heartbeat_interval_ms_{1000};
  std::atomic<uint64_t> max_chunk_bytes_{uint64_t{4} << 20};
};

}  // namespace clisc::worker
