// A scripted coordinator for the worker tests: a real ROUTER socket on a free loopback port that
// the test drives message by message. While it waits it answers for the coordinator's liveness
// by sending heartbeats to the last worker that said hello (unless told to stay silent).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/wire/frame_codec.h"
#include "common/wire/router_framing.h"
#include "common/wire/zmq_socket.h"
#include "schemas/clisc.pb.h"
#include "tests/support/child_process.h"

namespace clisc::worker_test {

using Body = wire::Envelope::BodyCase;
using SteadyClock = std::chrono::steady_clock;

struct Received {
  std::string identity;
  wire::Envelope envelope;
  SteadyClock::time_point at;
};

class FakeCoordinator {
 public:
  // `before_bind` runs on the context first (a CURVE test starts its ZAP handler there);
  // `options` configure the ROUTER socket.
  explicit FakeCoordinator(
      ZmqSocketOptions options = {},
      const std::function<void(const std::shared_ptr<ZmqContext>&)>& before_bind = nullptr) {
    auto context = ZmqContext::Create();
    EXPECT_TRUE(context.ok()) << context.status().ToString();
    context_ = *context;
    if (before_bind) before_bind(context_);
    auto socket = ZmqSocket::Open(context_, ZmqSocketType::kRouter, options);
    EXPECT_TRUE(socket.ok()) << socket.status().ToString();
    socket_.emplace(std::move(*socket));
    Status bound = socket_->Bind("tcp://127.0.0.1:*");
    EXPECT_TRUE(bound.ok()) << bound.ToString();
    auto endpoint = socket_->LastEndpoint();
    EXPECT_TRUE(endpoint.ok());
    endpoint_ = *endpoint;
  }

  const std::string& endpoint() const { return endpoint_; }
  // The identity heartbeats go to (set by ExpectHello; cleared by silence).
  void set_peer(std::string identity) { peer_ = std::move(identity); }
  const std::string& peer() const { return peer_; }
  void set_silent(bool silent) { silent_ = silent; }
  void set_heartbeat_interval_ms(int ms) { heartbeat_interval_ms_ = ms; }

  void Send(const std::string& identity, wire::Envelope envelope,
            uint32_t version = kProtocolVersion) {
    envelope.set_protocol_version(version);
    envelope.set_seq(++seq_);
    SendRaw(identity, {"", EncodeFrame(envelope)});
  }
  void SendRaw(const std::string& identity, std::vector<std::string> frames) {
    frames.insert(frames.begin(), identity);
    Status sent = socket_->Send(frames);
    EXPECT_TRUE(sent.ok()) << sent.ToString();
  }

  // The next valid message from any worker, or nullopt after `timeout`.
  std::optional<Received> Receive(std::chrono::milliseconds timeout) {
    const auto end = SteadyClock::now() + timeout;
    while (true) {
      MaybeHeartbeat();
      const auto now = SteadyClock::now();
      if (now >= end) return std::nullopt;
      const int slice = static_cast<int>(std::min<int64_t>(
          10, std::chrono::duration_cast<std::chrono::milliseconds>(end - now).count() + 1));
      auto frames = socket_->Receive(slice, 4);
      EXPECT_TRUE(frames.ok()) << frames.status().ToString();
      if (!frames.ok() || !frames->has_value()) continue;
      std::vector<std::string_view> views((*frames)->begin(), (*frames)->end());
      auto routed = ParseRouterFrames(views);
      EXPECT_TRUE(routed.ok()) << routed.status().ToString();
      if (!routed.ok()) continue;
      auto envelope = DecodeFrame(routed->payload.data(), routed->payload.size());
      EXPECT_TRUE(envelope.ok()) << "the worker sent an invalid frame: "
                                 << envelope.status().ToString();
      if (!envelope.ok()) continue;
      Received received{std::string(routed->identity), std::move(*envelope), SteadyClock::now()};
      log_.push_back(received);
      return received;
    }
  }

  // The next message with body `body`; the ones skipped on the way are kept in log().
  std::optional<Received> WaitFor(Body body, std::chrono::milliseconds timeout) {
    const auto end = SteadyClock::now() + timeout;
    while (SteadyClock::now() < end) {
      auto received =
          Receive(std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now()));
      if (received && received->envelope.body_case() == body) return received;
    }
    return std::nullopt;
  }

  // Everything received so far, in order.
  const std::vector<Received>& log() const { return log_; }
  std::vector<Received> LogOf(Body body) const {
    std::vector<Received> out;
    for (const Received& r : log_) {
      if (r.envelope.body_case() == body) out.push_back(r);
    }
    return out;
  }
  void ClearLog() { log_.clear(); }

  // Waits for a Hello and answers it with a HelloAck; returns the Hello.
  std::optional<Received> AcceptHello(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                      uint32_t interval_ms = 100, uint32_t liveness = 5) {
    auto hello = WaitFor(Body::kHello, timeout);
    if (!hello) return std::nullopt;
    wire::Envelope ack;
    wire::HelloAck* body = ack.mutable_hello_ack();
    body->set_coordinator_id("fake-coordinator");
    body->set_protocol_version(kProtocolVersion);
    body->set_heartbeat_interval_ms(interval_ms);
    body->set_heartbeat_liveness(liveness);
    body->set_max_frame_bytes(uint64_t{64} << 20);
    body->set_run_id("test-run");
    Send(hello->identity, ack);
    set_peer(hello->identity);
    heartbeat_interval_ms_ = static_cast<int>(interval_ms);
    return hello;
  }

  void Assign(const std::string& task_id, uint32_t attempt, const std::string& role,
              const std::string& params_json, uint64_t deadline_ms = 0,
              const std::vector<wire::ArtifactRef>& inputs = {},
              const std::vector<wire::ExpectedOutput>& outputs = {}) {
    wire::Envelope envelope;
    wire::TaskAssign* assign = envelope.mutable_task_assign();
    assign->set_task_id(task_id);
    assign->set_attempt(attempt);
    assign->set_role(role);
    assign->set_stage("test_stage");
    assign->set_case_id("case-1");
    assign->set_params_json(params_json);
    assign->set_deadline_ms(deadline_ms);
    assign->set_run_id("test-run");
    for (const auto& input : inputs) *assign->add_inputs() = input;
    for (const auto& output : outputs) *assign->add_expected_outputs() = output;
    Send(peer_, envelope);
  }

  void Cancel(const std::string& task_id, uint32_t attempt) {
    wire::Envelope envelope;
    envelope.mutable_task_cancel()->set_task_id(task_id);
    envelope.mutable_task_cancel()->set_attempt(attempt);
    envelope.mutable_task_cancel()->set_reason("test cancels it");
    Send(peer_, envelope);
  }

  void Disconnect(bool draining, const std::string& reason = "run finished") {
    wire::Envelope envelope;
    envelope.mutable_disconnect()->set_sender_id("fake-coordinator");
    envelope.mutable_disconnect()->set_reason(reason);
    envelope.mutable_disconnect()->set_draining(draining);
    Send(peer_, envelope);
  }

  // The result for (task_id, attempt), already received (since the last ClearLog) or arriving
  // within `timeout`.
  std::optional<wire::TaskResult> WaitForResult(const std::string& task_id, uint32_t attempt,
                                                std::chrono::milliseconds timeout) {
    for (const Received& r : log_) {
      if (r.envelope.has_task_result() && r.envelope.task_result().task_id() == task_id &&
          r.envelope.task_result().attempt() == attempt) {
        return r.envelope.task_result();
      }
    }
    const auto end = SteadyClock::now() + timeout;
    while (SteadyClock::now() < end) {
      auto received =
          WaitFor(Body::kTaskResult,
                  std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now()));
      if (received && received->envelope.task_result().task_id() == task_id &&
          received->envelope.task_result().attempt() == attempt) {
        return received->envelope.task_result();
      }
    }
    return std::nullopt;
  }

 private:
  void MaybeHeartbeat() {
    if (silent_ || peer_.empty()) return;
    const auto now = SteadyClock::now();
    if (now < next_heartbeat_) return;
    next_heartbeat_ = now + std::chrono::milliseconds(heartbeat_interval_ms_);
    wire::Envelope heartbeat;
    heartbeat.mutable_heartbeat()->set_sender_id("fake-coordinator");
    heartbeat.set_protocol_version(kProtocolVersion);
    heartbeat.set_seq(++seq_);
    std::vector<std::string> frames{peer_, "", EncodeFrame(heartbeat)};
    (void)socket_->Send(frames);  // the peer may be gone: that is what some tests are about
  }

  std::shared_ptr<ZmqContext> context_;
  std::optional<ZmqSocket> socket_;
  std::string endpoint_;
  std::string peer_;
  bool silent_ = false;
  int heartbeat_interval_ms_ = 100;
  SteadyClock::time_point next_heartbeat_{};
  uint64_t seq_ = 0;
  std::vector<Received> log_;
};

// A per-test temporary directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("clisc-worker-test-" + std::to_string(getpid()) + "-" + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The built `clisc` binary as a child process, its output captured in a file.
using testutil::ChildProcess;

}  // namespace clisc::worker_test
