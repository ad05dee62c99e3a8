// The threads that run tasks. Threads are started on demand up to `max_threads` and then kept,
// so a busy worker pays for thread creation once rather than per task (the no-op benchmark
// measures exactly that overhead). Admission (how many tasks may run at once) is decided by the
// caller; the pool only executes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace clisc::worker {

class SlotPool {
 public:
  explicit SlotPool(size_t max_threads);
  // Waits for every submitted job to finish.
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  void Submit(std::function<void()> job);
  // Jobs submitted and not finished yet.
  size_t pending() const;
  // Waits up to `timeout` for every job to finish; false when some are still running.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  void ThreadMain();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  size_t waiting_threads_ = 0;
  size_t unfinished_ = 0;
  bool stopping_ = false;
};

}  // namespace clisc::worker
