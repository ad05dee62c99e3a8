#include "coordinator/coordinator_server.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "common/wire/frame_codec.h"
#include "common/wire/router_framing.h"
#include "coordinator/task_plan_file.h"

namespace clisc {
namespace {

std::string DefaultCoordinatorId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "localhost");
  return std::string(host) + "-coordinator-" + std::to_string(getpid());
}

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

Coordinator::~Coordinator() {
  // Sockets close before the authenticator stops and before the context terminates.
  router_.reset();
  if (authenticator_) authenticator_->Stop();
}

StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options,
                                                           const Clock* clock) {
  if (options.coordinator_id.empty()) options.coordinator_id = DefaultCoordinatorId();
  if (options.curve_key.has_value() != options.curve_allow.has_value()) {
    return InvalidArgumentError(
        "CurveZMQ needs both the coordinator's key file and the allow-list of worker keys");
  }
  // Work is pushed to every registered worker; only the workers' own messages prove them alive.
  options.scheduler.assign_counts_as_heartbeat = false;
  std::unique_ptr<Coordinator> coordinator(new Coordinator(std::move(options), clock));
  RETURN_IF_ERROR(coordinator->Start());
  return coordinator;
}

Status Coordinator::Start() {
  started_ms_ = clock_->NowMs();
  started_steady_ = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(ledger_, Ledger::Open(options_.ledger_path, clock_, options_.ledger));
  ASSIGN_OR_RETURN(run_, ledger_->OpenRun(options_.run_name, options_.config_yaml,
                                          options_.config_fingerprint));
  ASSIGN_OR_RETURN(scheduler_, Scheduler::Create(ledger_.get(), run_, options_.scheduler));

  std::optional<ArtifactStore> store;
  if (options_.artifact_root) {
    ASSIGN_OR_RETURN(ArtifactStore opened, ArtifactStore::Open(*options_.artifact_root));
    store.emplace(std::move(opened));
  }
  relay_ = std::make_unique<ArtifactRelay>(std::move(store), options_.limits);

  if (options_.plan_path) {
    ASSIGN_OR_RETURN(std::vector<TaskSpec> specs,
                     ReadTaskPlanFile(*options_.plan_path, options_.default_max_attempts));
    UpsertOptions upsert;
    upsert.replace_plan = options_.replace_plan;
    upsert.retry_failed = options_.retry_failed;
    ASSIGN_OR_RETURN(UpsertResult planned, scheduler_->Plan(specs, upsert));
    LogInfo("plan_loaded", {{"path", options_.plan_path->string()},
                            {"tasks", static_cast<int64_t>(specs.size())},
                            {"inserted", planned.inserted},
                            {"reused", planned.reused},
                            {"reset", planned.reset},
                            {"superseded", planned.superseded}});
  }
  RETURN_IF_ERROR(CheckArtifactsOnResume());

  ASSIGN_OR_RETURN(context_, ZmqContext::Create(1));
  ZmqSocketOptions socket_options;
  socket_options.max_message_bytes =
      static_cast<int64_t>(options_.limits.max_frame_bytes) + 4096;
  if (options_.curve_key) {
    ASSIGN_OR_RETURN(CurveKeyPair keys, ReadCurveKeyFile(*options_.curve_key));
    if (keys.secret_z85.empty()) {
      return InvalidArgumentError(options_.curve_key->string() +
                                  " holds no secret key; the coordinator needs its .key file");
    }
    ASSIGN_OR_RETURN(std::set<std::string> allowed, ReadCurveAllowList(*options_.curve_allow));
    ASSIGN_OR_RETURN(authenticator_, CurveAuthenticator::Start(context_, allowed));
    socket_options.configure = [keys](void* raw) { return EnableCurveServer(raw, keys); };
    LogInfo("curve_enabled", {{"allowed_keys", static_cast<int64_t>(allowed.size())}});
  }
  ASSIGN_OR_RETURN(ZmqSocket router,
                   ZmqSocket::Open(context_, ZmqSocketType::kRouter, socket_options));
  RETURN_IF_ERROR(router.Bind(options_.bind));
  ASSIGN_OR_RETURN(endpoint_, router.LastEndpoint());
  router_.emplace(std::move(router));

  const SchedulerSnapshot snapshot = scheduler_->Snapshot();
  LogInfo("coordinator_started",
          {{"id", options_.coordinator_id},
           {"endpoint", endpoint_},
           {"run", options_.run_name},
           {"ledger", options_.ledger_path},
           {"open_tasks", static_cast<int64_t>(snapshot.open_tasks)},
           {"leased_from_before", static_cast<int64_t>(snapshot.leased)}});
  return OkStatus();
}

Status Coordinator::CheckArtifactsOnResume() {
  if (!relay_->store() || options_.resume_check == ResumeArtifactCheck::kNone) return OkStatus();
  const ArtifactStore& store = *relay_->store();
  ASSIGN_OR_RETURN(std::vector<RunArtifact> artifacts, ledger_->ListRunArtifacts(run_));
  std::vector<std::pair<TaskId, std::string>> bad;
  for (const RunArtifact& item : artifacts) {
    if (!bad.empty() && bad.back().first == item.task_id) continue;
    Status check;
    if (options_.resume_check == ResumeArtifactCheck::kChecksum) {
      check = store.Verify({item.artifact.relative_path,
                            static_cast<uint64_t>(item.artifact.size_bytes),
                            item.artifact.sha256});
    } else {
      StatusOr<std::filesystem::path> path = store.Resolve(item.artifact.relative_path);
      std::error_code ec;
      const auto size = path.ok() ? std::filesystem::file_size(*path, ec) : 0;
      if (!path.ok()) {
        check = path.status();
      } else if (ec) {
        check = NotFoundError(item.artifact.relative_path + ": " + ec.message());
      } else if (static_cast<int64_t>(size) != item.artifact.size_bytes) {
        check = DataLossError(item.artifact.relative_path + " has " + std::to_string(size) +
                              " bytes, the ledger recorded " +
                              std::to_string(item.artifact.size_bytes));
      }
    }
    if (!check.ok()) bad.emplace_back(item.task_id, check.message());
  }
  for (const auto& [task, reason] : bad) {
    LogWarn("artifact_invalid_on_resume", {{"task_id", task}, {"reason", reason}});
    // A task whose dependency was already invalidated in this loop is pending again: skip it.
    StatusOr<TaskRecord> record = ledger_->GetTask(task);
    if (!record.ok() || record->state != TaskState::kSucceeded) continue;
    ASSIGN_OR_RETURN(GraphEffects effects,
                     scheduler_->Invalidate(task, "artifact missing or corrupt: " + reason));
    counters_.invalidated_on_resume += 1 + effects.reset.size();
  }
  LogInfo("artifacts_checked", {{"artifacts", static_cast<int64_t>(artifacts.size())},
                                {"bad", static_cast<int64_t>(bad.size())}});
  return OkStatus();
}

Status Coordinator::Serve(const std::atomic<bool>& stop) {
  ZmqSocket* sockets[] = {&*router_};
  while (!stop.load(std::memory_order_relaxed)) {
    const int64_t now = clock_->NowMs();
    RETURN_IF_ERROR(RunTimers(now));
    if (RunEnded() && options_.exit_when_done) break;

    int64_t wake = std::min({next_heartbeat_ms_, next_tick_ms_, next_status_ms_});
    if (std::optional<int64_t> due = scheduler_->NextWakeupMs()) wake = std::min(wake, *due);
    const int timeout = static_cast<int>(std::clamp<int64_t>(wake - clock_->NowMs(), 0, 100));
    ASSIGN_OR_RETURN(std::vector<bool> readable, PollReadable(sockets, timeout));

    size_t handled = 0;
    if (readable[0]) RETURN_IF_ERROR(ReadMessages(&handled));
    RETURN_IF_ERROR(FlushResults());
    if (assign_needed_) RETURN_IF_ERROR(AssignWork());
  }
  if (RunEnded()) {
    SayGoodbye("run " + options_.run_name + " ended: " +
               std::string(RunStateName(scheduler_->run_state())));
  }
  if (status_hook_) status_hook_(*this);
  RETURN_IF_ERROR(WriteSummary());
  return RunOutcome();
}

Status Coordinator::RunTimers(int64_t now) {
  if (now >= next_tick_ms_ ||
      (scheduler_->NextWakeupMs() && now >= *scheduler_->NextWakeupMs())) {
    ASSIGN_OR_RETURN(TickReport report, scheduler_->Tick());
    for (const std::string& worker : report.dead_workers) {
      LogWarn("worker_dead", {{"worker", worker}});
      auto it = identity_of_.find(worker);
      if (it != identity_of_.end()) DropSession(it->second);
    }
    for (const LeaseRef& lease : report.expired_leases) {
      auto it = identity_of_.find(lease.worker_id);
      if (it == identity_of_.end()) continue;
      wire::Envelope envelope = NewMessage();
      wire::TaskCancel* cancel = envelope.mutable_task_cancel();
      cancel->set_task_id(std::to_string(lease.task_id));
      cancel->set_attempt(static_cast<uint32_t>(lease.attempt));
      cancel->set_reason("lease expired");
      Send(it->second, envelope);
    }
    if (!report.expired_leases.empty() || !report.dead_workers.empty()) assign_needed_ = true;
    next_tick_ms_ = now + std::max<int64_t>(options_.scheduler.heartbeat_interval_ms / 4, 10);
    assign_needed_ = true;  // backoffs may have ended
  }
  if (now >= next_heartbeat_ms_) {
    SendHeartbeats();
    next_heartbeat_ms_ = now + options_.scheduler.heartbeat_interval_ms;
  }
  if (now >= next_status_ms_) {
    const auto hook_start = std::chrono::steady_clock::now();
    if (status_hook_) status_hook_(*this);
    // The status document queries the whole run; on very large runs it must not eat the loop,
    // so refreshes are spaced to keep them under ~5% of the coordinator's time.
    const int64_t hook_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - hook_start)
                                .count();
    const uint64_t dropped = drops_.total();
    if (dropped > 0 && now - last_drop_log_ms_ >= 10'000) {
      std::string reasons;
      for (const auto& [reason, count] : drops_.NonZero()) {
        reasons += std::string(reason) + "=" + std::to_string(count) + " ";
      }
      LogWarn("frames_dropped", {{"total", static_cast<int64_t>(dropped)}, {"by_reason", reasons}});
      last_drop_log_ms_ = now;
    }
    next_status_ms_ = now + std::max<int64_t>(options_.status_interval_ms, 20 * hook_ms);
  }
  return OkStatus();
}

void Coordinator::SendHeartbeats() {
  std::vector<std::string> identities;
  identities.reserve(sessions_.size());
  for (const auto& [identity, session] : sessions_) identities.push_back(identity);
  for (const std::string& identity : identities) {
    wire::Envelope envelope = NewMessage();
    envelope.mutable_heartbeat()->set_sender_id(options_.coordinator_id);
    Send(identity, envelope);
  }
}

void Coordinator::SayGoodbye(const std::string& reason) {
  LogInfo("run_ended", {{"run", options_.run_name}, {"reason", reason}});
  for (const auto& [identity, session] : sessions_) {
    wire::Envelope envelope = NewMessage();
    wire::Disconnect* goodbye = envelope.mutable_disconnect();
    goodbye->set_sender_id(options_.coordinator_id);
    goodbye->set_reason(reason);
    goodbye->set_draining(false);
    Send(identity, envelope);
  }
}

wire::Envelope Coordinator::NewMessage() { return NewEnvelope(++seq_); }

void Coordinator::Send(const std::string& identity, wire::Envelope& envelope) {
  const std::vector<std::string> frames = MakeRouterFrames(identity, EncodeFrame(envelope));
  if (Status sent = router_->Send(frames); !sent.ok()) {
    ++counters_.send_failures;
    LogDebug("send_failed", {{"error", sent.ToString()}});
  }
}

Status Coordinator::WriteSummary() {
  if (!options_.summary_path) return OkStatus();
  ASSIGN_OR_RETURN(std::vector<StageStateCount> counts, ledger_->CountByStageAndState(run_));
  int64_t succeeded = 0;
  int64_t total = 0;
  nlohmann::json by_state = nlohmann::json::object();
  for (const StageStateCount& c : counts) {
    total += c.count;
    if (c.state == TaskState::kSucceeded) succeeded += c.count;
    by_state[std::string(TaskStateName(c.state))] =
        by_state.value(std::string(TaskStateName(c.state)), int64_t{0}) + c.count;
  }
  // Throughput over the time tasks were actually flowing (first assignment to last result),
  // so start-up and shutdown do not dilute it.
  double flow_s = 0;
  if (first_assign_ && last_result_) {
    flow_s = std::chrono::duration<double>(*last_result_ - *first_assign_).count();
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_steady_).count();
  nlohmann::json summary = {
      {"run", options_.run_name},
      {"state", std::string(RunStateName(scheduler_->run_state()))},
      {"tasks_total", total},
      {"tasks_succeeded", succeeded},
      {"tasks_by_state", by_state},
      {"results_this_process", counters_.results_ok},
      {"wall_s", wall_s},
      {"flow_s", flow_s},
      {"tasks_per_s", flow_s > 0 ? static_cast<double>(counters_.results_ok) / flow_s : 0.0},
      {"roundtrip_ms",
       {{"count", latency_.count()},
        {"mean", latency_.MeanMs()},
        {"p50", latency_.QuantileMs(0.5)},
        {"p99", latency_.QuantileMs(0.99)}}},
      {"frames_dropped", drops_.total()},
      {"results_refused", counters_.results_refused},
      {"artifact_chunks_served", counters_.artifact_chunks_served},
      {"artifact_puts", counters_.artifact_puts},
      {"invalidated_on_resume", counters_.invalidated_on_resume}};
  return WriteFileAtomically(*options_.summary_path, summary.dump(2) + "\n");
}

Status Coordinator::RunOutcome() {
  if (scheduler_->run_state() == RunState::kFailed ||
      scheduler_->run_state() == RunState::kCancelled) {
    StatusOr<RunRecord> record = ledger_->GetRun(run_);
    const std::string why = record.ok() ? record->state_reason : record.status().message();
    return AbortedError("run " + options_.run_name + " " +
                        std::string(RunStateName(scheduler_->run_state())) + ": " + why);
  }
  return OkStatus();
}

}  // namespace clisc
