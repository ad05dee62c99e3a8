#include "workers/runtime/worker.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <system_error>
#include <thread>

#include "common/logging.h"
#include "common/wire/frame_validation.h"
#include "common/wire/protocol_version.h"
#include "common/wire/wire_error.h"

namespace clisc::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Longest wait in one poll, so that stop requests from signal handlers (which only set an
// atomic) are noticed promptly.
constexpr auto kMaxPollWait = std::chrono::milliseconds(50);

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string SignalName(int signal_number) {
  switch (signal_number) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal " + std::to_string(signal_number);
  }
}

StatusOr<std::filesystem::path> MakeTempScratch() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/clisc-worker-scratch-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return UnavailableError("cannot create a scratch directory from " + pattern + ": " +
                            std::generic_category().message(errno));
  }
  return std::filesystem::path(pattern);
}

}  // namespace

Worker::Worker(WorkerOptions options, const RoleRegistry& registry)
    : options_(std::move(options)),
      registry_(registry),
      roles_(options_.roles.begin(), options_.roles.end()),
      throttle_(options_.progress_interval),
      leases_(options_.slots),
      recent_(options_.result_memory, options_.max_remembered_results),
      backoff_(options_.backoff_initial, options_.backoff_max),
      stop_requests_(options_.stop_requests != nullptr ? options_.stop_requests
                                                       : &own_stop_requests_),
      interval_(options_.heartbeat_interval),
      liveness_(options_.heartbeat_liveness) {}

StatusOr<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options,
                                                 const RoleRegistry& registry) {
  if (options.connect.empty()) return InvalidArgumentError("no coordinator endpoint to connect to");
  if (options.slots < 1) return InvalidArgumentError("a worker needs at least one slot");
  if (options.heartbeat_interval.count() < 1 || options.heartbeat_liveness < 1) {
    return InvalidArgumentError("heartbeat interval and liveness must be positive");
  }
  for (const std::string& role : options.roles) {
    if (!registry.Has(role)) {
      return InvalidArgumentError("unknown role '" + role +
                                  "' (registered roles: " + JoinNames(registry.Names()) + ")");
    }
  }
  std::unique_ptr<Worker> worker(new Worker(std::move(options), registry));
  RETURN_IF_ERROR(worker->Init());
  return worker;
}

Status Worker::Init() {
  // The Hello is the worker's configuration as the coordinator sees it: refuse at start-up what
  // the coordinator would refuse later (an id with control characters, too many roles, ...).
  wire::Envelope hello = MakeHello();
  hello.set_protocol_version(kProtocolVersion);
  RETURN_IF_ERROR(ValidateEnvelope(hello, hello.ByteSizeLong(), FrameLimits())
                      .WithContext("the worker's hello would be refused"));

  ASSIGN_OR_RETURN(context_, ZmqContext::Create());
  ASSIGN_OR_RETURN(outbox_, Outbox::Create(context_));
  if (options_.artifact_root) {
    ASSIGN_OR_RETURN(ArtifactStore store, ArtifactStore::Open(*options_.artifact_root));
    store_.emplace(std::move(store));
  } else {
    std::filesystem::path scratch = options_.scratch_dir;
    if (scratch.empty()) {
      ASSIGN_OR_RETURN(scratch, MakeTempScratch());
      owned_scratch_ = scratch;
    }
    ASSIGN_OR_RETURN(ArtifactStore store, ArtifactStore::Open(scratch));
    store_.emplace(std::move(store));
    transfer_ =
        std::make_unique<ArtifactTransfer>(*outbox_, mailbox_, session_state_, options_.transfer);
  }
  session_state_.set_heartbeat_interval(interval_);
  TaskEnvironment environment;
  environment.registry = &registry_;
  environment.store = &*store_;
  environment.transfer = transfer_.get();
  environment.outbox = outbox_.get();
  environment.throttle = &throttle_;
  environment.device = options_.device;
  runner_ = std::make_unique<TaskRunner>(std::move(environment));
  pool_ = std::make_unique<SlotPool>(options_.slots);
  return OkStatus();
}

Worker::~Worker() {
  leases_.CancelAll();
  pool_.reset();
  socket_.reset();
  if (!owned_scratch_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(owned_scratch_, ec);
  }
}

void Worker::RequestDrain(int signal_number) { stop_requests_->Request(signal_number); }

bool Worker::StopTasks(std::chrono::milliseconds grace) {
  leases_.CancelAll();
  return pool_->WaitIdle(grace);
}

// ---------------------------------------------------------------------------------------------
// Main loop

WorkerSummary Worker::Run() {
  LogInfo("worker_starting",
          {{"worker", options_.worker_id},
           {"coordinator", options_.connect},
           {"roles", JoinNames(options_.roles)},
           {"device", options_.device},
           {"slots", options_.slots},
           {"artifacts", options_.artifact_root
                             ? "shared:" + options_.artifact_root->string()
                             : "via coordinator, scratch " + store_->root().string()}});
  next_connect_ = Clock::now();
  while (!exit_code_) {
    Clock::time_point now = Clock::now();
    CheckStopRequests(now);
    if (exit_code_) break;
    if (phase_ == Phase::kIdle && now >= next_connect_) OpenSession(now);
    if (exit_code_) break;
    PollOnce(now);
    if (exit_code_) break;
    ProcessOutbox();
    SendDueProgress();
    RunTimers(Clock::now());
    CheckDrainDone();
  }
  FlushAndClose();
  summary_.frames_dropped = drops_.total();
  LogInfo("worker_exit", {{"worker", options_.worker_id},
                          {"exit_code", summary_.exit_code},
                          {"reason", summary_.reason},
                          {"tasks_run", summary_.tasks_run},
                          {"succeeded", summary_.tasks_succeeded},
                          {"failed", summary_.tasks_failed},
                          {"cancelled", summary_.tasks_cancelled},
                          {"refused", summary_.tasks_refused},
                          {"sessions", summary_.sessions},
                          {"frames_dropped", summary_.frames_dropped}});
  return summary_;
}

void Worker::PollOnce(Clock::time_point now) {
  Clock::time_point until = now + kMaxPollWait;
  switch (phase_) {
    case Phase::kInSession:
      until = std::min({until, next_heartbeat_, last_heard_ + Liveness()});
      break;
    case Phase::kAwaitingAck:
      until = std::min(until, hello_sent_ + Liveness());
      break;
    case Phase::kIdle:
      until = std::min(until, next_connect_);
      break;
  }
  const int timeout_ms =
      static_cast<int>(std::max<int64_t>(0, Millis(until - now + std::chrono::microseconds(999))));
  std::vector<ZmqSocket*> sockets{&outbox_->wake_socket()};
  if (socket_) sockets.push_back(&*socket_);
  StatusOr<std::vector<bool>> readable = PollReadable(sockets, timeout_ms);
  if (!readable.ok()) {
    // Not expected from libzmq; keep serving rather than spin.
    LogWarn("poll_failed", {{"error", readable.status().message()}});
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return;
  }
  if (socket_ && (*readable)[1]) ReadMessages();
}

void Worker::RunTimers(Clock::time_point now) {
  switch (phase_) {
    case Phase::kAwaitingAck:
      if (now - hello_sent_ >= Liveness()) OnHelloTimeout(now);
      break;
    case Phase::kInSession:
      if (now - last_heard_ >= Liveness()) {
        LoseSession(now, "no message from the coordinator for " +
                             std::to_string(Millis(now - last_heard_)) + " ms");
      } else if (now >= next_heartbeat_) {
        SendHeartbeat();
        next_heartbeat_ = std::max(next_heartbeat_ + interval_, now);
      }
      break;
    case Phase::kIdle:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Session

void Worker::OpenSession(Clock::time_point now) {
  ZmqSocketOptions socket_options;
  socket_options.configure = options_.configure_socket;
  StatusOr<ZmqSocket> socket = ZmqSocket::Open(context_, ZmqSocketType::kDealer, socket_options);
  if (!socket.ok()) {
    Exit(1, "cannot open a socket for the coordinator: " + socket.status().message());
    return;
  }
  if (Status connected = socket->Connect(options_.connect); !connected.ok()) {
    Exit(1,
         "cannot connect to the coordinator at " + options_.connect + ": " + connected.message());
    return;
  }
  socket_.emplace(std::move(*socket));
  phase_ = Phase::kAwaitingAck;
  hello_sent_ = now;
  last_heard_ = now;
  if (!outage_started_) {
    outage_started_ = now;
    last_retry_log_ = now;
    LogInfo("coordinator_connecting", {{"worker", options_.worker_id},
                                       {"coordinator", options_.connect},
                                       {"running", leases_.Reportable().size()}});
  }
  wire::Envelope hello = MakeHello();
  Send(hello);
}

void Worker::CloseSocket() {
  // A fresh socket per attempt: libzmq would otherwise keep queueing for the dead connection,
  // and messages of the old session must not reach a restarted coordinator out of order.
  socket_.reset();
  phase_ = Phase::kIdle;
}

void Worker::ScheduleReconnect(Clock::time_point now) {
  CloseSocket();
  next_connect_ = now + backoff_.Next();
}

void Worker::LoseSession(Clock::time_point now, const std::string& why) {
  LogWarn("coordinator_lost", {{"coordinator", options_.connect},
                               {"coordinator_id", coordinator_id_},
                               {"reason", why},
                               {"running", leases_.Reportable().size()}});
  outage_started_ = now;
  last_retry_log_ = now;
  hint_logged_ = false;
  ScheduleReconnect(now);
}

void Worker::OnHelloTimeout(Clock::time_point now) {
  ScheduleReconnect(now);
  const Clock::duration waited = now - outage_started_.value_or(now);
  if (backoff_.failures() == 1 || now - last_retry_log_ >= options_.retry_log_interval) {
    last_retry_log_ = now;
    LogWarn("coordinator_no_answer", {{"coordinator", options_.connect},
                                      {"attempts", backoff_.failures()},
                                      {"waited_ms", Millis(waited)},
                                      {"next_try_ms", Millis(next_connect_ - now)}});
  }
  if (!hint_logged_ && waited >= options_.silence_hint_after) {
    hint_logged_ = true;
    if (options_.curve) {
      LogWarn("coordinator_silent_hint",
              {{"coordinator", options_.connect},
               {"hint",
                "a coordinator with CURVE drops workers whose key it does not know without a "
                "word: check that this worker's public key (--curve-key) is on the "
                "coordinator's allow-list and that --curve-server-key is the coordinator's "
                "key"}});
    } else {
      LogWarn("coordinator_silent_hint",
              {{"coordinator", options_.connect},
               {"hint",
                "no coordinator answers at this endpoint: check that it runs and that the "
                "address is reachable; a coordinator with CURVE on also ignores workers "
                "started without --curve-key/--curve-server-key"}});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shutdown

void Worker::CheckStopRequests(Clock::time_point now) {
  const int count = stop_requests_->count.load(std::memory_order_acquire);
  if (count > stop_requests_seen_) {
    const std::string name = SignalName(stop_requests_->last_signal.load());
    if (stop_requests_seen_ == 0 && count == 1) {
      BeginDrain(name, now, /*coordinator_asked=*/false);
    } else {
      HandBackAndExit(name + " again: stopping without waiting for the running tasks");
    }
    stop_requests_seen_ = count;
  }
  if (!exit_code_ && draining_ && now >= drain_deadline_) {
    HandBackAndExit(drain_reason_ + ": drain timeout of " +
                    std::to_string(options_.drain_timeout.count()) + " ms passed");
  }
}

void Worker::BeginDrain(const std::string& reason, Clock::time_point now, bool coordinator_asked) {
  if (draining_) return;
  draining_ = true;
  drain_reason_ = reason;
  drain_deadline_ = now + options_.drain_timeout;
  LogInfo("worker_draining", {{"worker", options_.worker_id},
                              {"reason", reason},
                              {"running", leases_.occupied()},
                              {"drain_timeout_ms", options_.drain_timeout.count()}});
  // Tells the coordinator to stop assigning; its own drain request needs no answer.
  if (!coordinator_asked) SendDisconnect(reason, /*draining=*/true);
}

void Worker::HandBackAndExit(const std::string& reason) {
  const std::vector<LeaseKey> handed_back = leases_.HandBackAll();
  const Status why =
      UnavailableError("worker " + options_.worker_id + " shut down before the task finished");
  for (const LeaseKey& lease : handed_back) {
    SendResult(FailedTaskResult(lease.task_id, lease.attempt, why));
  }
  LogWarn("tasks_handed_back",
          {{"worker", options_.worker_id}, {"reason", reason}, {"tasks", handed_back.size()}});
  SendDisconnect(reason, /*draining=*/false);
  Exit(0, reason);
}

void Worker::CheckDrainDone() {
  if (exit_code_ || !draining_ || leases_.occupied() > 0) return;
  const std::string reason = drain_reason_ + ": drained";
  SendDisconnect(reason, /*draining=*/false);
  Exit(0, reason);
}

void Worker::Exit(int code, std::string reason) {
  if (exit_code_) return;
  exit_code_ = code;
  summary_.exit_code = code;
  summary_.reason = std::move(reason);
}

void Worker::FlushAndClose() {
  if (socket_ && phase_ == Phase::kInSession) {
    // libzmq drops unsent messages when a socket closes (linger 0, which reconnects need): give
    // the goodbye and the last results a moment to leave, reading (and ignoring) what arrives.
    const Clock::time_point end = Clock::now() + options_.exit_flush;
    while (true) {
      const int64_t left = Millis(end - Clock::now());
      if (left <= 0) break;
      StatusOr<std::optional<std::vector<std::string>>> frames =
          socket_->Receive(static_cast<int>(left), 4);
      if (!frames.ok()) break;
    }
  }
  socket_.reset();
  phase_ = Phase::kIdle;
}

}  // namespace clisc::worker
