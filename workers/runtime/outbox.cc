#include "workers/runtime/outbox.h"

#include <atomic>
#include <string>

namespace clisc::worker {

StatusOr<std::unique_ptr<Outbox>> Outbox::Create(const std::shared_ptr<ZmqContext>& context) {
  static std::atomic<uint64_t> next_id{0};
  const std::string endpoint = "inproc://clisc-worker-outbox-" + std::to_string(next_id++);
  ASSIGN_OR_RETURN(ZmqSocket receiver, ZmqSocket::Open(context, ZmqSocketType::kPair));
  RETURN_IF_ERROR(receiver.Bind(endpoint));
  ASSIGN_OR_RETURN(ZmqSocket sender, ZmqSocket::Open(context, ZmqSocketType::kPair));
  RETURN_IF_ERROR(sender.Connect(endpoint));
  return std::unique_ptr<Outbox>(new Outbox(std::move(sender), std::move(receiver)));
}

void Outbox::Post(wire::Envelope message) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(message));
  // One wake-up per batch: the IO thread takes the whole queue when it wakes. A failed send
  // (queue full) only means a wake-up is already pending.
  if (was_empty) (void)wake_sender_.Send({std::string_view("w", 1)});
}

std::vector<wire::Envelope> Outbox::TakeAll() {
  // Drain the wake-ups first: a post that lands after this point either finds the queue
  // non-empty (and is taken below) or sends a fresh wake-up.
  while (true) {
    StatusOr<std::optional<std::vector<std::string>>> wake = wake_receiver_.Receive(0, 1);
    if (!wake.ok() || !wake->has_value()) break;
  }
  std::vector<wire::Envelope> taken;
  std::lock_guard<std::mutex> lock(mu_);
  taken.swap(queue_);
  return taken;
}

}  // namespace clisc::worker
