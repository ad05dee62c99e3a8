// Routes the coordinator's artifact replies (ArtifactChunk, ArtifactPutAck), which arrive on the
// IO thread, to the task threads waiting for them. Replies name only the artifact path, so
// waiters register by path; every waiter on that path sees the reply and keeps what matches its
// own request (two tasks fetching the same input at the same offset can share a chunk).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "schemas/clisc.pb.h"

namespace clisc::worker {

class ReplyMailbox {
 public:
  class Waiter {
   public:
    explicit Waiter(std::string path) : path_(std::move(path)) {}
    const std::string& path() const { return path_; }
    // The next reply for this path, or nullopt when none came within `timeout`.
    std::optional<wire::Envelope> WaitFor(std::chrono::milliseconds timeout);

   private:
    friend class ReplyMailbox;
    void Push(const wire::Envelope& reply);

    const std::string path_;
    std::mutex mu_;
    std::condition_variable arrived_;
    std::deque<wire::Envelope> replies_;
  };

  std::shared_ptr<Waiter> Register(std::string path);
  void Unregister(const std::shared_ptr<Waiter>& waiter);
  // IO thread: hands an ArtifactChunk or ArtifactPutAck to every waiter on its path. False when
  // nobody waits for it (a late reply to a request that timed out).
  bool Deliver(const wire::Envelope& reply);

 private:
  std::mutex mu_;
  std::multimap<std::string, std::shared_ptr<Waiter>> waiters_;
};

}  // namespace clisc::worker
