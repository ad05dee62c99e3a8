// The adapter between libzmq's CURVE/ZAP C API and the project's sockets: CURVE options on a
// socket and the ZAP handler thread that enforces the allow-list. The ZAP handler needs a REP
// socket, which the ZmqSocket adapter does not offer, so this file talks to libzmq directly.
// Key files live in curve_keys.cc.
#include "common/wire/curve_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "common/wire/curve_key_text.h"

namespace clisc {
namespace {

using namespace curve_internal;

// RFC 27: the endpoint libzmq asks, and the only protocol version it speaks.
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr std::string_view kZapVersion = "1.0";
// Any non-empty domain: libzmq passes it to the handler, which serves one policy for all of them.
constexpr std::string_view kZapDomain = "clisc";
// ZMQ_ZAP_ENFORCE_DOMAIN, a draft option of libzmq 4.3 (zmq.h names it only under
// ZMQ_BUILD_DRAFT_API). Without it a CURVE server whose context has no ZAP handler lets every
// client with a well-formed key in; with it such a server refuses everyone.
constexpr int kZmqZapEnforceDomain = 93;

// ---- Socket options. ----

Status SetOption(void* socket, int option, const void* value, size_t size, std::string_view name) {
  if (zmq_setsockopt(socket, option, value, size) != 0) {
    return InvalidArgumentError("zmq_setsockopt " + std::string(name) + ": " +
                                zmq_strerror(zmq_errno()));
  }
  return OkStatus();
}

Status SetKey(void* socket, int option, const std::string& z85, std::string_view name) {
  return SetOption(socket, option, z85.data(), z85.size(), name);
}

}  // namespace

Status EnableCurveServer(void* raw_socket, const CurveKeyPair& server_keys) {
  RETURN_IF_ERROR(RequireCurve());
  RETURN_IF_ERROR(ValidateZ85Key(server_keys.secret_z85, "CURVE server secret key"));
  const int one = 1;
  RETURN_IF_ERROR(SetOption(raw_socket, ZMQ_CURVE_SERVER, &one, sizeof(one), "ZMQ_CURVE_SERVER"));
  RETURN_IF_ERROR(
      SetKey(raw_socket, ZMQ_CURVE_SECRETKEY, server_keys.secret_z85, "ZMQ_CURVE_SECRETKEY"));
  RETURN_IF_ERROR(SetOption(raw_socket, ZMQ_ZAP_DOMAIN, kZapDomain.data(), kZapDomain.size(),
                            "ZMQ_ZAP_DOMAIN"));
  // Fail closed where the library allows it; a libzmq without draft options still enforces the
  // allow-list as long as the CurveAuthenticator runs.
  if (zmq_setsockopt(raw_socket, kZmqZapEnforceDomain, &one, sizeof(one)) != 0) {
    LogDebug("curve_zap_enforce_domain_unavailable", {{"error", zmq_strerror(zmq_errno())}});
  }
  return OkStatus();
}

Status EnableCurveClient(void* raw_socket, const CurveKeyPair& client_keys,
                         std::string_view server_public_z85) {
  RETURN_IF_ERROR(RequireCurve());
  RETURN_IF_ERROR(ValidateZ85Key(server_public_z85, "CURVE server public key"));
  RETURN_IF_ERROR(ValidateZ85Key(client_keys.public_z85, "CURVE client public key"));
  RETURN_IF_ERROR(ValidateZ85Key(client_keys.secret_z85, "CURVE client secret key"));
  RETURN_IF_ERROR(SetKey(raw_socket, ZMQ_CURVE_SERVERKEY, std::string(server_public_z85),
                         "ZMQ_CURVE_SERVERKEY"));
  RETURN_IF_ERROR(
      SetKey(raw_socket, ZMQ_CURVE_PUBLICKEY, client_keys.public_z85, "ZMQ_CURVE_PUBLICKEY"));
  return SetKey(raw_socket, ZMQ_CURVE_SECRETKEY, client_keys.secret_z85, "ZMQ_CURVE_SECRETKEY");
}

// ---- The ZAP handler. ----

class CurveAuthenticator::Impl {
 public:
  Impl(std::shared_ptr<ZmqContext> context, std::set<std::string> allowed, void* zap_socket,
       void* stop_receiver, void* stop_sender)
      : context_(std::move(context)),
        allowed_keys_(std::move(allowed)),
        zap_socket_(zap_socket),
        stop_receiver_(stop_receiver),
        stop_sender_(stop_sender) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Impl() { Stop(); }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (!thread_.joinable()) return;
    stop_requested_.store(true);
    // Wakes the poll at once; if the context is terminating the send fails, but then the poll
    // fails with ETERM too, and the flag covers everything else within one poll period.
    zmq_send(stop_sender_, "", 0, ZMQ_DONTWAIT);
    thread_.join();
    zmq_close(stop_sender_);
    stop_sender_ = nullptr;
    LogInfo("curve_auth_stopped",
            {{"allowed", allowed_count_.load()}, {"denied", denied_count_.load()}});
  }

  uint64_t allowed() const { return allowed_count_.load(); }
  uint64_t denied() const { return denied_count_.load(); }

 private:
  static constexpr int kPollPeriodMs = 250;
  static constexpr size_t kMaxRequestParts = 16;
  // A denied key is logged when first seen and then at most once per period, with the number of
  // denials in between; the table is bounded so that a flood of fresh keys cannot grow it.
  static constexpr std::chrono::seconds kDenialLogPeriod{60};
  static constexpr size_t kMaxTrackedDenials = 4096;

  struct DenialLog {
    std::chrono::steady_clock::time_point last_logged;
    uint64_t unlogged = 0;
  };

  struct Verdict {
    bool allowed = false;
    std::string status_text;
    std::string user_id;
  };

  void Run() {
    zmq_pollitem_t items[] = {{zap_socket_, 0, ZMQ_POLLIN, 0}, {stop_receiver_, 0, ZMQ_POLLIN, 0}};
    while (!stop_requested_.load()) {
      const int ready = zmq_poll(items, 2, kPollPeriodMs);
      if (ready < 0) {
        if (zmq_errno() == EINTR) continue;
        if (zmq_errno() != ETERM) {
          LogError("curve_auth_poll_failed", {{"error", zmq_strerror(zmq_errno())}});
        }
        break;
      }
      if (items[1].revents & ZMQ_POLLIN) break;
      if ((items[0].revents & ZMQ_POLLIN) && !HandleRequest()) break;
    }
    zmq_close(zap_socket_);
    zmq_close(stop_receiver_);
  }

  // Answers one request; false when the socket can no longer be used (context terminating).
  bool HandleRequest() {
    std::vector<std::string> parts;
    bool more = true;
    while (more) {
      zmq_msg_t message;
      zmq_msg_init(&message);
      if (zmq_msg_recv(&message, zap_socket_, 0) < 0) {
        const int err = zmq_errno();
        zmq_msg_close(&message);
        if (err == EINTR) continue;
        if (err != ETERM) LogError("curve_auth_receive_failed", {{"error", zmq_strerror(err)}});
        return false;
      }
      if (parts.size() < kMaxRequestParts) {
        parts.emplace_back(static_cast<const char*>(zmq_msg_data(&message)),
                           zmq_msg_size(&message));
      }
      more = zmq_msg_more(&message) != 0;
      zmq_msg_close(&message);
    }
    const Verdict verdict = Judge(parts);
    // A REP socket must answer every request, even one it cannot parse.
    const std::string request_id = parts.size() > 1 ? parts[1] : std::string();
    const std::string reply[] = {
        std::string(kZapVersion), request_id,      verdict.allowed ? "200" : "400",
        verdict.status_text,      verdict.user_id, ""};
    for (size_t i = 0; i < std::size(reply); ++i) {
      const int flags = i + 1 < std::size(reply) ? ZMQ_SNDMORE : 0;
      if (zmq_send(zap_socket_, reply[i].data(), reply[i].size(), flags) < 0) {
        const int err = zmq_errno();
        if (err != ETERM) LogError("curve_auth_reply_failed", {{"error", zmq_strerror(err)}});
        return err != ETERM;
      }
    }
    return true;
  }

  // Request frames (RFC 27): version, request id, domain, address, identity, mechanism,
  // credentials...
  Verdict Judge(const std::vector<std::string>& parts) {
    if (parts.size() < 6 || parts[0] != kZapVersion) {
      return Deny("malformed ZAP request", "", "", "malformed");
    }
    const std::string& address = parts[3];
    const std::string& mechanism = parts[5];
    if (mechanism != "CURVE") {
      return Deny("mechanism " + mechanism + " is not allowed", "", address, mechanism);
    }
    if (parts.size() < 7 || parts[6].size() != kBinaryKeyLength) {
      return Deny("malformed CURVE credentials", "", address, "malformed");
    }
    std::string key = Z85Encode(parts[6]);
    if (!allowed_keys_.count(key)) {
      return Deny("CURVE public key is not on the allow-list", key, address, key);
    }
    allowed_count_.fetch_add(1);
    if (logged_allowed_keys_.insert(key).second) {
      LogInfo("curve_peer_allowed", {{"key", key}, {"address", address}});
    }
    return {true, "OK", std::move(key)};
  }

  Verdict Deny(std::string reason, const std::string& key, const std::string& address,
               const std::string& log_key) {
    denied_count_.fetch_add(1);
    const auto now = std::chrono::steady_clock::now();
    auto it = denial_log_.find(log_key);
    if (it == denial_log_.end()) {
      if (denial_log_.size() >= kMaxTrackedDenials) denial_log_.clear();
      denial_log_.emplace(log_key, DenialLog{now, 0});
      LogWarn("curve_peer_denied", {{"key", key}, {"address", address}, {"reason", reason}});
    } else if (now - it->second.last_logged >= kDenialLogPeriod) {
      LogWarn("curve_peer_denied", {{"key", key},
                                    {"address", address},
                                    {"reason", reason},
                                    {"denials_since_last_log", it->second.unlogged + 1}});
      it->second = DenialLog{now, 0};
    } else {
      ++it->second.unlogged;
    }
    return {false, std::move(reason), ""};
  }

  std::shared_ptr<ZmqContext> context_;  // outlives the sockets below
  const std::set<std::string> allowed_keys_;
  void* zap_socket_;     // handler thread only
  void* stop_receiver_;  // handler thread only
  void* stop_sender_;    // Stop() only
  std::thread thread_;
  std::mutex stop_mutex_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<uint64_t> allowed_count_{0};
  std::atomic<uint64_t> denied_count_{0};
  std::set<std::string> logged_allowed_keys_;              // handler thread only
  std::unordered_map<std::string, DenialLog> denial_log_;  // handler thread only
};

StatusOr<std::unique_ptr<CurveAuthenticator>> CurveAuthenticator::Start(
    std::shared_ptr<ZmqContext> context, std::set<std::string> allowed_public_keys) {
  RETURN_IF_ERROR(RequireCurve());
  if (context == nullptr) return InvalidArgumentError("CurveAuthenticator needs a ZeroMQ context");
  for (const std::string& key : allowed_public_keys) {
    RETURN_IF_ERROR(ValidateZ85Key(key, "allow-list entry"));
  }
  if (allowed_public_keys.empty()) {
    LogWarn("curve_auth_empty_allow_list", {{"effect", "every CURVE client will be refused"}});
  }
  // The sockets are made here, so that a failure is reported to the caller, and handed to the
  // handler thread (thread creation is the memory barrier libzmq asks for when a socket moves).
  std::vector<void*> sockets;
  auto fail = [&sockets](Status status) {
    for (void* socket : sockets) zmq_close(socket);
    return status;
  };
  const int zero = 0;
  auto open = [&](int type, const char* what) -> void* {
    void* socket = zmq_socket(context->raw(), type);
    if (socket != nullptr) {
      zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
      sockets.push_back(socket);
    } else {
      LogError("curve_auth_socket_failed",
               {{"socket", what}, {"error", zmq_strerror(zmq_errno())}});
    }
    return socket;
  };
  void* zap_socket = open(ZMQ_REP, "zap");
  void* stop_receiver = open(ZMQ_PAIR, "stop_receiver");
  void* stop_sender = open(ZMQ_PAIR, "stop_sender");
  if (zap_socket == nullptr || stop_receiver == nullptr || stop_sender == nullptr) {
    return fail(UnavailableError(std::string("zmq_socket for the ZAP handler: ") +
                                 zmq_strerror(zmq_errno())));
  }
  if (zmq_bind(zap_socket, kZapEndpoint) != 0) {
    const int err = zmq_errno();
    return fail(
        err == EADDRINUSE
            ? AlreadyExistsError(std::string("zmq_bind ") + kZapEndpoint +
                                 ": a ZAP handler already runs in this ZeroMQ context")
            : UnavailableError(std::string("zmq_bind ") + kZapEndpoint + ": " + zmq_strerror(err)));
  }
  static std::atomic<uint64_t> instance{0};
  const std::string stop_endpoint = "inproc://clisc.curve_auth.stop." + std::to_string(::getpid()) +
                                    "." + std::to_string(instance.fetch_add(1));
  if (zmq_bind(stop_receiver, stop_endpoint.c_str()) != 0 ||
      zmq_connect(stop_sender, stop_endpoint.c_str()) != 0) {
    return fail(UnavailableError("inproc control socket " + stop_endpoint + ": " +
                                 zmq_strerror(zmq_errno())));
  }
  const size_t allowed_count = allowed_public_keys.size();
  auto impl = std::make_unique<Impl>(std::move(context), std::move(allowed_public_keys), zap_socket,
                                     stop_receiver, stop_sender);
  LogInfo("curve_auth_started", {{"allowed_keys", allowed_count}, {"domain", kZapDomain}});
  return std::unique_ptr<CurveAuthenticator>(new CurveAuthenticator(std::move(impl)));
}

CurveAuthenticator::CurveAuthenticator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CurveAuthenticator::~CurveAuthenticator() { Stop(); }

uint64_t CurveAuthenticator::allowed() const { return impl_->allowed(); }

uint64_t CurveAuthenticator::denied() const { return impl_->denied(); }

void CurveAuthenticator::Stop() {
  if (impl_) impl_->Stop();
}

StatusOr<std::function<Status(void*)>> CurveClientFromFiles(
    const std::filesystem::path& server_key_file, const std::filesystem::path& client_key_file,
    std::string_view flag) {
  ASSIGN_OR_RETURN(CurveKeyPair server, ReadCurveKeyFile(server_key_file));
  ASSIGN_OR_RETURN(CurveKeyPair client, ReadCurveKeyFile(client_key_file));
  if (client.secret_z85.empty()) {
    return InvalidArgumentError(std::string(flag) + " " + client_key_file.string() +
                                " holds no secret key; pass the client's .key file, not a .pub");
  }
  return std::function<Status(void*)>(
      [client, server_public = server.public_z85](void* raw_socket) {
        return EnableCurveClient(raw_socket, client, server_public);
      });
}

}  // namespace clisc
