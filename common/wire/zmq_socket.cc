#include "common/wire/zmq_socket.h"

#include <zmq.h>

#include <cerrno>
#include <cstring>

namespace clisc {
namespace {

Status ZmqError(std::string_view call, std::string_view what) {
  const int err = zmq_errno();
  std::string message = std::string(call) + (what.empty() ? "" : " " + std::string(what)) +
                        ": " + zmq_strerror(err);
  switch (err) {
    case EAGAIN:
    case EHOSTUNREACH:
    case ETERM:
      return UnavailableError(std::move(message));
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
      return InvalidArgumentError(std::move(message));
    case EADDRINUSE:
    case EADDRNOTAVAIL:
      return UnavailableError(std::move(message));
    default:
      return InternalError(std::move(message));
  }
}

Status SetInt(void* socket, int option, int value, std::string_view name) {
  if (zmq_setsockopt(socket, option, &value, sizeof(value)) != 0) {
    return ZmqError("zmq_setsockopt", name);
  }
  return OkStatus();
}

int ZmqTypeOf(ZmqSocketType type) {
  switch (type) {
    case ZmqSocketType::kRouter:
      return ZMQ_ROUTER;
    case ZmqSocketType::kDealer:
      return ZMQ_DEALER;
    case ZmqSocketType::kPair:
      return ZMQ_PAIR;
  }
  return ZMQ_PAIR;
}

}  // namespace

StatusOr<std::shared_ptr<ZmqContext>> ZmqContext::Create(int io_threads) {
  void* context = zmq_ctx_new();
  if (context == nullptr) return ZmqError("zmq_ctx_new", "");
  if (zmq_ctx_set(context, ZMQ_IO_THREADS, io_threads) != 0) {
    Status status = ZmqError("zmq_ctx_set", "ZMQ_IO_THREADS");
    zmq_ctx_term(context);
    return status;
  }
  // Signals are handled by the processes themselves (drain on SIGTERM); libzmq's blocking calls
  // then return EINTR, which the callers treat as "nothing yet".
  return std::shared_ptr<ZmqContext>(new ZmqContext(context));
}

ZmqContext::~ZmqContext() {
  while (zmq_ctx_term(context_) != 0 && zmq_errno() == EINTR) {
  }
}

StatusOr<ZmqSocket> ZmqSocket::Open(const std::shared_ptr<ZmqContext>& context,
                                    ZmqSocketType type, const ZmqSocketOptions& options) {
  void* raw = zmq_socket(context->raw(), ZmqTypeOf(type));
  if (raw == nullptr) return ZmqError("zmq_socket", "");
  ZmqSocket socket(context, raw, type);
  RETURN_IF_ERROR(SetInt(raw, ZMQ_LINGER, options.linger_ms, "ZMQ_LINGER"));
  RETURN_IF_ERROR(SetInt(raw, ZMQ_SNDHWM, options.send_hwm, "ZMQ_SNDHWM"));
  RETURN_IF_ERROR(SetInt(raw, ZMQ_RCVHWM, options.recv_hwm, "ZMQ_RCVHWM"));
  if (type != ZmqSocketType::kPair) {
    int64_t max_size = options.max_message_bytes;
    if (zmq_setsockopt(raw, ZMQ_MAXMSGSIZE, &max_size, sizeof(max_size)) != 0) {
      return ZmqError("zmq_setsockopt", "ZMQ_MAXMSGSIZE");
    }
    RETURN_IF_ERROR(
        SetInt(raw, ZMQ_RECONNECT_IVL, options.reconnect_interval_ms, "ZMQ_RECONNECT_IVL"));
    RETURN_IF_ERROR(SetInt(raw, ZMQ_RECONNECT_IVL_MAX, options.reconnect_interval_max_ms,
                           "ZMQ_RECONNECT_IVL_MAX"));
    RETURN_IF_ERROR(SetInt(raw, ZMQ_TCP_KEEPALIVE, options.tcp_keepalive ? 1 : 0,
                           "ZMQ_TCP_KEEPALIVE"));
  }
  if (type == ZmqSocketType::kRouter && options.router_mandatory) {
    RETURN_IF_ERROR(SetInt(raw, ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY"));
  }
  if (type == ZmqSocketType::kDealer && !options.routing_id.empty()) {
    if (zmq_setsockopt(raw, ZMQ_ROUTING_ID, options.routing_id.data(),
                       options.routing_id.size()) != 0) {
      return ZmqError("zmq_setsockopt", "ZMQ_ROUTING_ID");
    }
  }
  if (options.configure) RETURN_IF_ERROR(options.configure(raw));
  return socket;
}

ZmqSocket::ZmqSocket(ZmqSocket&& other) noexcept
    : context_(std::move(other.context_)), socket_(other.socket_), type_(other.type_) {
  other.socket_ = nullptr;
}

ZmqSocket& ZmqSocket::operator=(ZmqSocket&& other) noexcept {
  if (this != &other) {
    Close();
    context_ = std::move(other.context_);
    socket_ = other.socket_;
    type_ = other.type_;
    other.socket_ = nullptr;
  }
  return *this;
}

ZmqSocket::~ZmqSocket() { Close(); }

void ZmqSocket::Close() {
  if (socket_ != nullptr) {
    zmq_close(socket_);
    socket_ = nullptr;
  }
}

int ZmqSocket::type_code() const { return ZmqTypeOf(type_); }

Status ZmqSocket::Bind(const std::string& endpoint) {
  if (zmq_bind(socket_, endpoint.c_str()) != 0) return ZmqError("zmq_bind", endpoint);
  return OkStatus();
}

Status ZmqSocket::Connect(const std::string& endpoint) {
  if (zmq_connect(socket_, endpoint.c_str()) != 0) return ZmqError("zmq_connect", endpoint);
  return OkStatus();
}

StatusOr<std::string> ZmqSocket::LastEndpoint() const {
  char buffer[512];
  size_t size = sizeof(buffer);
  if (zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, buffer, &size) != 0) {
    return ZmqError("zmq_getsockopt", "ZMQ_LAST_ENDPOINT");
  }
  return std::string(buffer, size > 0 ? strnlen(buffer, size) : 0);
}

StatusOr<std::optional<std::vector<std::string>>> ZmqSocket::Receive(int timeout_ms,
                                                                     size_t max_parts) {
  if (timeout_ms != 0) {
    zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
    const int ready = zmq_poll(&item, 1, timeout_ms);
    if (ready < 0) {
      if (zmq_errno() == EINTR) return std::optional<std::vector<std::string>>();
      return ZmqError("zmq_poll", "");
    }
    if (ready == 0) return std::optional<std::vector<std::string>>();
  }
  std::vector<std::string> parts;
  bool more = true;
  bool first = true;
  while (more) {
    zmq_msg_t message;
    zmq_msg_init(&message);
    // Only the first part may be absent; the rest of a multipart message arrives atomically.
    const int size = zmq_msg_recv(&message, socket_, first ? ZMQ_DONTWAIT : 0);
    if (size < 0) {
      const int err = zmq_errno();
      zmq_msg_close(&message);
      if (first && (err == EAGAIN || err == EINTR)) {
        return std::optional<std::vector<std::string>>();
      }
      errno = err;
      return ZmqError("zmq_msg_recv", "");
    }
    first = false;
    if (parts.size() <= max_parts) {
      parts.emplace_back(static_cast<const char*>(zmq_msg_data(&message)), zmq_msg_size(&message));
    }
    more = zmq_msg_more(&message) != 0;
    zmq_msg_close(&message);
  }
  return std::optional<std::vector<std::string>>(std::move(parts));
}

Status ZmqSocket::SendParts(std::span<const std::string_view> parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    const int flags = ZMQ_DONTWAIT | (i + 1 < parts.size() ? ZMQ_SNDMORE : 0);
    if (zmq_send(socket_, parts[i].data(), parts[i].size(), flags) < 0) {
      // libzmq sends a multipart message atomically: a failure on the first part sends nothing,
      // and later parts cannot fail once the first was queued.
      return ZmqError("zmq_send", "");
    }
  }
  return OkStatus();
}

Status ZmqSocket::Send(std::span<const std::string> parts) {
  std::vector<std::string_view> views(parts.begin(), parts.end());
  return SendParts(views);
}

Status ZmqSocket::Send(std::initializer_list<std::string_view> parts) {
  return SendParts(std::span<const std::string_view>(parts.begin(), parts.size()));
}

StatusOr<std::vector<bool>> PollReadable(std::span<ZmqSocket* const> sockets, int timeout_ms) {
  std::vector<zmq_pollitem_t> items;
  items.reserve(sockets.size());
  for (ZmqSocket* socket : sockets) items.push_back({socket->raw(), 0, ZMQ_POLLIN, 0});
  std::vector<bool> readable(sockets.size(), false);
  const int ready = zmq_poll(items.data(), static_cast<int>(items.size()), timeout_ms);
  if (ready < 0) {
    if (zmq_errno() == EINTR) return readable;
    return ZmqError("zmq_poll", "");
  }
  for (size_t i = 0; i < items.size(); ++i) readable[i] = (items[i].revents & ZMQ_POLLIN) != 0;
  return readable;
}

}  // namespace clisc
