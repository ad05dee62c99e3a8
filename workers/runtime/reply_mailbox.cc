#include "workers/runtime/reply_mailbox.h"

namespace clisc::worker {

std::optional<wire::Envelope> ReplyMailbox::Waiter::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!arrived_.wait_for(lock, timeout, [this] { return !replies_.empty(); })) {
    return std::nullopt;
  }
  wire::Envelope reply = std::move(replies_.front());
  replies_.pop_front();
  return reply;
}

void ReplyMailbox::Waiter::Push(const wire::Envelope& reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.push_back(reply);
  }
  arrived_.notify_one();
}

std::shared_ptr<ReplyMailbox::Waiter> ReplyMailbox::Register(std::string path) {
  auto waiter = std::make_shared<Waiter>(path);
  std::lock_guard<std::mutex> lock(mu_);
  waiters_.emplace(std::move(path), waiter);
  return waiter;
}

void ReplyMailbox::Unregister(const std::shared_ptr<Waiter>& waiter) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [begin, end] = waiters_.equal_range(waiter->path());
  for (auto it = begin; it != end; ++it) {
    if (it->second == waiter) {
      waiters_.erase(it);
      return;
    }
  }
}

bool ReplyMailbox::Deliver(const wire::Envelope& reply) {
  const std::string* path = nullptr;
  if (reply.has_artifact_chunk()) {
    path = &reply.artifact_chunk().path();
  } else if (reply.has_artifact_put_ack()) {
    path = &reply.artifact_put_ack().path();
  } else {
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto [begin, end] = waiters_.equal_range(*path);
  bool delivered = false;
  for (auto it = begin; it != end; ++it) {
    it->second->Push(reply);
    delivered = true;
  }
  return delivered;
}

}  // namespace clisc::worker
