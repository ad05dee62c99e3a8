// Time as the runtime sees it. Everything that leases, expires or backs off asks a Clock, so the
// lease, heartbeat and retry logic is tested with FakeClock and no sleeping (the seam LevelDB's
// Env gives its file and time calls).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace clisc {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. Wall time, not a steady clock: the ledger stores these
  // values (lease deadlines, backoff) and a restarted coordinator compares against them, so they
  // must mean the same thing in every process. A wall clock stepping back only delays retries.
  virtual int64_t NowMs() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Time that moves only when a test says so. Safe to read from several threads.
class FakeClock final : public Clock {
 public:
  // A fixed, realistic start (2024-01-01T00:00:00Z) so stored times look like real ones.
  static constexpr int64_t kDefaultStartMs = 1'704'067'200'000;

  explicit FakeClock(int64_t start_ms = kDefaultStartMs) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(std::memory_order_relaxed); }
  void AdvanceMs(int64_t delta_ms) { now_ms_.fetch_add(delta_ms, std::memory_order_relaxed); }
  void SetMs(int64_t now_ms) { now_ms_.store(now_ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace clisc
