// Messages from task threads to the IO thread, which alone owns the coordinator socket (libzmq
// sockets are single-threaded). Posting wakes the IO thread through an inproc PAIR socket that it
// polls next to the coordinator socket.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/status.h"
#include "common/wire/zmq_socket.h"
#include "schemas/clisc.pb.h"

namespace clisc::worker {

class Outbox {
 public:
  static StatusOr<std::unique_ptr<Outbox>> Create(const std::shared_ptr<ZmqContext>& context);

  // Any thread. `message` has a body; the IO thread stamps the header when it sends.
  void Post(wire::Envelope message);
  // IO thread: everything posted so far, oldest first.
  std::vector<wire::Envelope> TakeAll();
  // IO thread: readable when something was posted since the last TakeAll().
  ZmqSocket& wake_socket() { return wake_receiver_; }

 private:
  Outbox(ZmqSocket sender, ZmqSocket receiver)
      : wake_sender_(std::move(sender)), wake_receiver_(std::move(receiver)) {}

  std::mutex mu_;  // guards queue_ and wake_sender_ (used by every posting thread)
  std::vector<wire::Envelope> queue_;
  ZmqSocket wake_sender_;
  ZmqSocket wake_receiver_;
};

}  // namespace clisc::worker
