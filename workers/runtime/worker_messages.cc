// Worker: what the coordinator says (dispatch of incoming frames) and what the worker says
// back (hello, heartbeats, results, goodbyes), all on the IO thread.
#include <set>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/wire/frame_codec.h"
#include "common/wire/protocol_version.h"
#include "common/wire/router_framing.h"
#include "common/wire/wire_error.h"
#include "workers/runtime/worker.h"

namespace clisc::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Messages read per turn before timers and the outbox get their turn.
constexpr int kMaxMessagesPerTurn = 10'000;

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string RefusalName(wire::Refused::Reason code) {
  const std::string& name = wire::Refused::Reason_Name(code);
  return name.empty() ? std::to_string(static_cast<int>(code)) : name;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Incoming

void Worker::ReadMessages() {
  for (int i = 0; i < kMaxMessagesPerTurn && socket_ && !exit_code_; ++i) {
    StatusOr<std::optional<std::vector<std::string>>> frames = socket_->Receive(0, 4);
    if (!frames.ok()) {
      LogWarn("receive_failed", {{"error", frames.status().message()}});
      return;
    }
    if (!frames->has_value()) return;
    HandleFrames(**frames);
  }
}

void Worker::HandleFrames(const std::vector<std::string>& frames) {
  std::vector<std::string_view> views(frames.begin(), frames.end());
  FrameError reason{};
  StatusOr<std::string_view> payload = ParseDealerFrames(views, &reason);
  if (!payload.ok()) return DropFrame(reason, payload.status());
  StatusOr<wire::Envelope> envelope =
      DecodeFrame(payload->data(), payload->size(), FrameLimits(), &reason);
  if (!envelope.ok()) {
    if (reason == FrameError::kProtocolVersionMismatch) return HandleForeignVersion(*payload);
    return DropFrame(reason, envelope.status());
  }
  last_heard_ = Clock::now();
  Dispatch(*envelope);
}

void Worker::HandleForeignVersion(std::string_view payload) {
  // A coordinator of another version answers in its own version; its refusal (or its ack, which
  // this build could not follow) must still end the process with a clear message rather than
  // leave the worker saying hello forever.
  wire::Envelope theirs;
  if (!theirs.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return DropFrame(FrameError::kProtocolVersionMismatch,
                     InvalidArgumentError("frame of another protocol version"));
  }
  if (theirs.has_refused()) return OnRefused(theirs.refused(), theirs.protocol_version());
  if (theirs.has_hello_ack()) {
    const std::string message = "the coordinator speaks protocol version " +
                                std::to_string(theirs.protocol_version()) +
                                ", this worker speaks version " + std::to_string(kProtocolVersion) +
                                "; run the same clisc release on both";
    LogError("protocol_version_mismatch", {{"coordinator_version", theirs.protocol_version()},
                                           {"worker_version", kProtocolVersion},
                                           {"message", message}});
    leases_.CancelAll();
    return Exit(1, message);
  }
  DropFrame(FrameError::kProtocolVersionMismatch,
            InvalidArgumentError("frame of protocol version " +
                                 std::to_string(theirs.protocol_version())));
}

void Worker::DropFrame(FrameError reason, const Status& why) {
  drops_.Record(reason);
  const Clock::time_point now = Clock::now();
  // The first drop and then one line per interval: a confused peer must not flood the log.
  if (drops_.total() == 1 || now - last_drop_log_ >= options_.retry_log_interval) {
    last_drop_log_ = now;
    LogWarn("frame_dropped", {{"reason", FrameErrorName(reason)},
                              {"error", why.message()},
                              {"dropped_total", drops_.total()}});
  } else {
    LogDebug("frame_dropped", {{"reason", FrameErrorName(reason)}, {"error", why.message()}});
  }
}

void Worker::Dispatch(const wire::Envelope& envelope) {
  using Body = wire::Envelope::BodyCase;
  switch (envelope.body_case()) {
    case Body::kHelloAck:
      return OnHelloAck(envelope.hello_ack());
    case Body::kRefused:
      return OnRefused(envelope.refused(), envelope.protocol_version());
    case Body::kHeartbeat:
      return;  // a sign of life, already noted
    case Body::kDisconnect:
      return OnDisconnect(envelope.disconnect());
    case Body::kTaskAssign:
      return OnAssign(envelope.task_assign());
    case Body::kTaskCancel:
      return OnCancel(envelope.task_cancel());
    case Body::kArtifactChunk:
    case Body::kArtifactPutAck:
      if (!mailbox_.Deliver(envelope)) {
        LogDebug("artifact_reply_unclaimed",
                 {{"path", envelope.has_artifact_chunk() ? envelope.artifact_chunk().path()
                                                         : envelope.artifact_put_ack().path()}});
      }
      return;
    default:
      return DropFrame(FrameError::kUnknownMessageType,
                       InvalidArgumentError("a worker does not expect envelope body " +
                                            std::to_string(envelope.body_case())));
  }
}

void Worker::OnHelloAck(const wire::HelloAck& ack) {
  if (phase_ != Phase::kAwaitingAck) return;  // a duplicate: the session already runs
  const Clock::time_point now = Clock::now();
  phase_ = Phase::kInSession;
  interval_ = std::chrono::milliseconds(ack.heartbeat_interval_ms());
  liveness_ = ack.heartbeat_liveness();
  const FrameLimits limits;
  const uint64_t coordinator_chunk = ack.max_frame_bytes() > limits.chunk_overhead_bytes
                                         ? ack.max_frame_bytes() - limits.chunk_overhead_bytes
                                         : limits.max_chunk_data_bytes();
  session_state_.StartSession(interval_,
                              std::min<uint64_t>(coordinator_chunk, limits.max_chunk_data_bytes()));
  coordinator_id_ = ack.coordinator_id();
  run_id_ = ack.run_id();
  ++summary_.sessions;
  const int64_t outage_ms = Millis(now - outage_started_.value_or(now));
  outage_started_.reset();
  hint_logged_ = false;
  backoff_.Reset();
  next_heartbeat_ = now + interval_;

  // Results the previous coordinator (or connection) may have lost; duplicates are ignored.
  std::vector<wire::TaskResult> resend = recent_.Current(now);
  for (wire::TaskResult& result : resend) {
    wire::Envelope envelope;
    *envelope.mutable_task_result() = std::move(result);
    Send(envelope);
  }
  LogInfo(ever_connected_ ? "worker_reconnected" : "worker_connected",
          {{"worker", options_.worker_id},
           {"coordinator", options_.connect},
           {"coordinator_id", coordinator_id_},
           {"run", run_id_},
           {"heartbeat_interval_ms", ack.heartbeat_interval_ms()},
           {"heartbeat_liveness", ack.heartbeat_liveness()},
           {"running", leases_.Reportable().size()},
           {"results_resent", resend.size()},
           {"waited_ms", outage_ms}});
  ever_connected_ = true;
}

void Worker::OnRefused(const wire::Refused& refused, uint32_t envelope_version) {
  const std::string said =
      refused.reason().empty() ? "" : " (coordinator: " + refused.reason() + ")";
  int code = 1;
  std::string message;
  switch (refused.code()) {
    case wire::Refused::PROTOCOL_VERSION: {
      const uint32_t theirs = refused.supported_protocol_version() != 0
                                  ? refused.supported_protocol_version()
                                  : envelope_version;
      message = "the coordinator refused this worker: it speaks protocol version " +
                std::to_string(theirs) + ", this worker speaks protocol version " +
                std::to_string(kProtocolVersion) + "; run the same clisc release on both" + said;
      break;
    }
    case wire::Refused::NOT_ALLOWED:
      message = "the coordinator does not allow worker " + options_.worker_id +
                " (its key or id is not on the allow-list)" + said;
      break;
    case wire::Refused::DUPLICATE_WORKER:
      message = "another live worker already uses the id " + options_.worker_id +
                "; give each worker its own --id" + said;
      break;
    case wire::Refused::SHUTTING_DOWN:
      code = 0;
      message = "the coordinator is shutting down" + said;
      break;
    case wire::Refused::NO_USEFUL_ROLES:
      code = 0;
      message =
          "the run has no work for this worker's roles (" + JoinNames(options_.roles) + ")" + said;
      break;
    case wire::Refused::MALFORMED:
      message = "the coordinator could not read this worker's last message" + said;
      break;
    default:
      message = "the coordinator refused this worker (" + RefusalName(refused.code()) + ")" + said;
      break;
  }
  if (code == 0) {
    LogInfo("coordinator_refused", {{"code", RefusalName(refused.code())}, {"message", message}});
  } else {
    LogError("coordinator_refused", {{"code", RefusalName(refused.code())}, {"message", message}});
  }
  leases_.CancelAll();
  Exit(code, message);
}

void Worker::OnDisconnect(const wire::Disconnect& disconnect) {
  if (disconnect.draining()) {
    BeginDrain("coordinator: " + disconnect.reason(), Clock::now(), /*coordinator_asked=*/true);
    return;
  }
  LogInfo("coordinator_disconnect", {{"coordinator_id", disconnect.sender_id()},
                                     {"reason", disconnect.reason()},
                                     {"abandoned", leases_.occupied()}});
  leases_.CancelAll();
  Exit(0, "the coordinator ended the session: " + disconnect.reason());
}

void Worker::OnAssign(const wire::TaskAssign& assign) {
  const LeaseKey key{assign.task_id(), assign.attempt()};
  if (leases_.Contains(key)) {
    LogDebug("task_assign_duplicate", {{"task_id", key.task_id}, {"attempt", key.attempt}});
    return;
  }
  if (draining_) {
    return Refuse(assign, UnavailableError("worker " + options_.worker_id +
                                           " is shutting down and takes no new tasks"));
  }
  if (roles_.count(assign.role()) == 0) {
    return Refuse(assign, FailedPreconditionError(
                              "worker " + options_.worker_id + " does not run role '" +
                              assign.role() + "' (its roles: " + JoinNames(options_.roles) + ")"));
  }
  const Clock::time_point now = Clock::now();
  const Clock::time_point deadline = assign.deadline_ms() > 0
                                         ? now + std::chrono::milliseconds(assign.deadline_ms())
                                         : Clock::time_point::max();
  auto control = std::make_shared<LeaseControl>(deadline);
  if (!leases_.Admit(key, control)) {
    return Refuse(assign,
                  ResourceExhaustedError("worker " + options_.worker_id + " has no free slot (" +
                                         std::to_string(leases_.occupied()) + " of " +
                                         std::to_string(leases_.slots()) + " busy)"));
  }
  ++summary_.tasks_run;
  LogDebug("task_started", {{"task_id", key.task_id},
                            {"attempt", key.attempt},
                            {"role", assign.role()},
                            {"stage", assign.stage()},
                            {"case", assign.case_id()}});
  pool_->Submit(
      [this, spec = TaskSpecFromAssign(assign), control] { runner_->Run(spec, control); });
}

void Worker::OnCancel(const wire::TaskCancel& cancel) {
  const LeaseKey key{cancel.task_id(), cancel.attempt()};
  if (leases_.Cancel(key)) {
    LogDebug("task_cancelled",
             {{"task_id", key.task_id}, {"attempt", key.attempt}, {"reason", cancel.reason()}});
  }
}

// ---------------------------------------------------------------------------------------------
// Outgoing

// FrameLimits::max_leases is 1024; leave room for the running leases themselves.
constexpr size_t kMaxHelloLeases = 1000;

wire::Envelope Worker::MakeHello() const {
  wire::Envelope envelope;
  wire::Hello* hello = envelope.mutable_hello();
  hello->set_worker_id(options_.worker_id);
  hello->set_protocol_version(kProtocolVersion);
  for (const std::string& role : options_.roles) hello->add_roles(role);
  hello->set_device(options_.device);
  hello->set_slots(options_.slots);
  hello->set_hostname(options_.hostname);
  hello->set_pid(options_.pid);
  wire::Capabilities* capabilities = hello->mutable_capabilities();
  capabilities->set_shared_filesystem(options_.artifact_root.has_value());
  if (options_.artifact_root) capabilities->set_artifact_root(options_.artifact_root->string());
  capabilities->set_software_version(options_.software_version);
  std::set<LeaseKey> listed;
  for (const LeaseKey& lease : leases_.Reportable()) {
    listed.insert(lease);
    wire::LeaseRef* running = hello->add_running();
    running->set_task_id(lease.task_id);
    running->set_attempt(lease.attempt);
  }
  // Finished leases whose results are re-sent after the ack (see RecentResults::Leases), within
  // the frame's limit on listed leases.
  const size_t room = kMaxHelloLeases > listed.size() ? kMaxHelloLeases - listed.size() : 0;
  for (const auto& [task_id, attempt] : recent_.Leases(RecentResults::Clock::now(), room)) {
    if (!listed.insert({task_id, attempt}).second) continue;
    wire::LeaseRef* running = hello->add_running();
    running->set_task_id(task_id);
    running->set_attempt(attempt);
  }
  return envelope;
}

void Worker::Send(wire::Envelope& envelope) {
  if (!socket_) return;
  envelope.set_protocol_version(kProtocolVersion);
  envelope.set_seq(++seq_);
  Status sent = socket_->Send(MakeDealerFrames(EncodeFrame(envelope)));
  if (!sent.ok()) {
    const Clock::time_point now = Clock::now();
    if (now - last_send_error_log_ >= options_.retry_log_interval) {
      last_send_error_log_ = now;
      LogWarn("send_failed", {{"coordinator", options_.connect}, {"error", sent.message()}});
    }
  }
}

void Worker::SendHeartbeat() {
  wire::Envelope envelope;
  wire::Heartbeat* heartbeat = envelope.mutable_heartbeat();
  heartbeat->set_sender_id(options_.worker_id);
  for (const LeaseKey& lease : leases_.Reportable()) {
    wire::LeaseRef* running = heartbeat->add_running();
    running->set_task_id(lease.task_id);
    running->set_attempt(lease.attempt);
  }
  heartbeat->set_load(static_cast<double>(leases_.occupied()) / leases_.slots());
  heartbeat->set_free_slots(leases_.free_slots());
  Send(envelope);
}

void Worker::SendDisconnect(const std::string& reason, bool draining) {
  if (phase_ != Phase::kInSession) return;
  wire::Envelope envelope;
  wire::Disconnect* disconnect = envelope.mutable_disconnect();
  disconnect->set_sender_id(options_.worker_id);
  disconnect->set_reason(SanitizeWireText(reason, FrameLimits().max_text_bytes));
  disconnect->set_draining(draining);
  Send(envelope);
}

void Worker::SendResult(wire::TaskResult result) {
  if (result.ok()) {
    ++summary_.tasks_succeeded;
  } else {
    ++summary_.tasks_failed;
  }
  wire::Envelope envelope;
  *envelope.mutable_task_result() = std::move(result);
  // Kept even when it cannot go now: the next HelloAck sends it.
  recent_.Add(envelope.task_result(), Clock::now());
  if (phase_ == Phase::kInSession) Send(envelope);
}

void Worker::Refuse(const wire::TaskAssign& assign, const Status& why) {
  ++summary_.tasks_refused;
  LogDebug(
      "task_refused",
      {{"task_id", assign.task_id()}, {"attempt", assign.attempt()}, {"error", why.ToString()}});
  wire::TaskResult result = FailedTaskResult(assign.task_id(), assign.attempt(), why);
  recent_.Add(result, Clock::now());
  wire::Envelope envelope;
  *envelope.mutable_task_result() = std::move(result);
  if (phase_ == Phase::kInSession) Send(envelope);
}

void Worker::ProcessOutbox() {
  for (wire::Envelope& envelope : outbox_->TakeAll()) {
    if (envelope.has_task_result()) {
      OnTaskFinished(*envelope.mutable_task_result());
    } else if (phase_ == Phase::kInSession) {
      // Progress and artifact requests: without a session they are dropped; the task thread
      // sends its request again after the next HelloAck, and progress is only a view.
      Send(envelope);
    }
  }
}

void Worker::OnTaskFinished(wire::TaskResult& result) {
  const LeaseKey key{result.task_id(), result.attempt()};
  switch (leases_.Finish(key)) {
    case LeaseTable::Fate::kReport:
      LogDebug("task_finished",
               {{"task_id", key.task_id},
                {"attempt", key.attempt},
                {"ok", result.ok()},
                {"duration_ms", result.duration_ms()},
                {"error", result.ok() ? std::string() : result.error().message()}});
      SendResult(std::move(result));
      return;
    case LeaseTable::Fate::kCancelled:
      ++summary_.tasks_cancelled;
      LogDebug("task_result_dropped",
               {{"task_id", key.task_id}, {"attempt", key.attempt}, {"why", "cancelled"}});
      return;
    case LeaseTable::Fate::kHandedBack:
    case LeaseTable::Fate::kUnknown:
      return;
  }
}

void Worker::SendDueProgress() {
  for (wire::Progress& progress : throttle_.TakeDue(Clock::now())) {
    if (phase_ != Phase::kInSession) continue;
    wire::Envelope envelope;
    *envelope.mutable_progress() = std::move(progress);
    Send(envelope);
  }
}

}  // namespace clisc::worker
