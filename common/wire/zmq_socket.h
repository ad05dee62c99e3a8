// The adapter around libzmq: every ZeroMQ call of the project goes through these two classes, and
// every libzmq error comes back as a Status naming the call and the endpoint. Sockets are not
// thread-safe (libzmq's rule): each belongs to the thread that uses it; threads talk to each other
// over inproc PAIR sockets.
//
// Safe defaults for a socket that faces the network: bounded high-water marks, a hard size limit
// on incoming messages (ZMQ_MAXMSGSIZE, so a peer cannot make us allocate more than that),
// ROUTER_MANDATORY (a send to a peer that is gone fails instead of vanishing), no linger on close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc {

enum class ZmqSocketType { kRouter, kDealer, kPair };

struct ZmqSocketOptions {
  int send_hwm = 100'000;  // messages queued per peer before sends would block
  int recv_hwm = 100'000;
  // Larger incoming messages make libzmq drop the connection; keep it at the frame limit plus
  // room for the routing frames.
  int64_t max_message_bytes = (int64_t{64} << 20) + 4096;
  int linger_ms = 0;
  bool router_mandatory = true;  // ROUTER only
  std::string routing_id;        // DEALER only: empty lets libzmq pick one
  int reconnect_interval_ms = 100;
  int reconnect_interval_max_ms = 5000;
  // TCP keepalive, so a peer behind a dead link is noticed by the OS too.
  bool tcp_keepalive = true;
  // Runs on the raw socket after the options above and before bind/connect (CurveZMQ keys).
  std::function<Status(void* raw_socket)> configure;
};

// A libzmq context; outlives every socket made from it.
class ZmqContext {
 public:
  static StatusOr<std::shared_ptr<ZmqContext>> Create(int io_threads = 1);
  ~ZmqContext();
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;
  void* raw() const { return context_; }

 private:
  explicit ZmqContext(void* context) : context_(context) {}
  void* context_;
};

class ZmqSocket {
 public:
  static StatusOr<ZmqSocket> Open(const std::shared_ptr<ZmqContext>& context, ZmqSocketType type,
                                  const ZmqSocketOptions& options = {});
  ZmqSocket(ZmqSocket&& other) noexcept;
  ZmqSocket& operator=(ZmqSocket&& other) noexcept;
  ~ZmqSocket();

  Status Bind(const std::string& endpoint);
  Status Connect(const std::string& endpoint);
  // The endpoint actually bound (resolves "tcp://127.0.0.1:*" to its port).
  StatusOr<std::string> LastEndpoint() const;

  // One whole multipart message, or nullopt when none is waiting (`timeout_ms` 0) or none came
  // within `timeout_ms` (-1 waits forever). A message with more than `max_parts` parts is read
  // to its end and returned with only its first max_parts + 1 parts, so the caller's framing
  // check sees that it was too long without this call allocating for all of it.
  StatusOr<std::optional<std::vector<std::string>>> Receive(int timeout_ms = 0,
                                                            size_t max_parts = 8);
  // Sends a multipart message without blocking. UNAVAILABLE when it cannot go now: the peer is
  // unknown or gone (ROUTER_MANDATORY) or its queue is full; the message is then dropped.
  Status Send(std::span<const std::string> parts);
  Status Send(std::initializer_list<std::string_view> parts);

  void* raw() const { return socket_; }
  int type_code() const;

 private:
  ZmqSocket(std::shared_ptr<ZmqContext> context, void* socket, ZmqSocketType type)
      : context_(std::move(context)), socket_(socket), type_(type) {}
  Status SendParts(std::span<const std::string_view> parts);
  void Close();

  std::shared_ptr<ZmqContext> context_;
  void* socket_ = nullptr;
  ZmqSocketType type_ = ZmqSocketType::kDealer;
};

// Waits until at least one of `sockets` has a message, or `timeout_ms` passes (-1: forever).
// Returns one flag per socket. An interrupted wait (a signal) returns all false.
StatusOr<std::vector<bool>> PollReadable(std::span<ZmqSocket* const> sockets, int timeout_ms);

}  // namespace clisc
