#include "workers/runtime/slot_pool.h"

#include <algorithm>

namespace clisc::worker {

SlotPool::SlotPool(size_t max_threads) : max_threads_(std::max<size_t>(1, max_threads)) {}

SlotPool::~SlotPool() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return unfinished_ == 0; });
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

void SlotPool::Submit(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(job));
  ++unfinished_;
  if (waiting_threads_ < queue_.size() && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { ThreadMain(); });
  } else {
    work_ready_.notify_one();
  }
}

size_t SlotPool::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unfinished_;
}

bool SlotPool::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_for(lock, timeout, [this] { return unfinished_ == 0; });
}

void SlotPool::ThreadMain() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ++waiting_threads_;
    work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --waiting_threads_;
    if (queue_.empty()) return;  // stopping
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // captured state dies outside the lock
    lock.lock();
    if (--unfinished_ == 0) idle_.notify_all();
  }
}

}  // namespace clisc::worker
