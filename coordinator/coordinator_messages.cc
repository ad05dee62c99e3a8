// The coordinator's handling of each incoming message, and the batched record/assign steps that
// follow every read.
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "common/logging.h"
#include "common/wire/frame_codec.h"
#include "common/wire/router_framing.h"
#include "common/wire/wire_error.h"
#include "coordinator/coordinator_server.h"

namespace clisc {
namespace {

std::optional<TaskId> ParseTaskId(const std::string& text) {
  TaskId id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

// The name a task sees an input under: the producer's stage and artifact name, with the
// producer's case when it is not the task's own (a global task reads every case's outputs).
std::string InputName(const InputArtifact& input, const std::optional<std::string>& own_case) {
  std::string name = input.stage + "/";
  if (input.case_id && input.case_id != own_case) name += *input.case_id + "/";
  return name + input.artifact.name;
}

}  // namespace

Coordinator::Session* Coordinator::FindSession(const std::string& identity) {
  auto it = sessions_.find(identity);
  return it == sessions_.end() ? nullptr : &it->second;
}

void Coordinator::DropSession(const std::string& identity) {
  auto it = sessions_.find(identity);
  if (it == sessions_.end()) return;
  auto owner = identity_of_.find(it->second.worker_id);
  if (owner != identity_of_.end() && owner->second == identity) identity_of_.erase(owner);
  relay_->DropPeer(identity);
  sessions_.erase(it);
}

Status Coordinator::ReadMessages(size_t* handled) {
  while (*handled < options_.max_messages_per_turn) {
    ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> frames, router_->Receive(0, 4));
    if (!frames) return OkStatus();
    ++*handled;
    ++counters_.frames_received;
    std::vector<std::string_view> views(frames->begin(), frames->end());
    FrameError reason{};
    StatusOr<RouterMessage> routed = ParseRouterFrames(views, &reason);
    if (!routed.ok()) {
      drops_.Record(reason);
      continue;
    }
    const std::string identity(routed->identity);
    StatusOr<wire::Envelope> envelope =
        DecodeFrame(routed->payload.data(), routed->payload.size(), options_.limits, &reason);
    if (!envelope.ok()) {
      drops_.Record(reason);
      if (reason == FrameError::kProtocolVersionMismatch) {
        RefuseVersion(identity, std::string(routed->payload));
      }
      LogDebug("frame_dropped", {{"reason", FrameErrorName(reason)},
                                 {"error", envelope.status().message()}});
      continue;
    }
    Dispatch(identity, *envelope);
  }
  return OkStatus();
}

void Coordinator::RefuseVersion(const std::string& identity, const std::string& payload) {
  ++counters_.refused_version;
  wire::Envelope theirs;
  const uint32_t their_version =
      theirs.ParseFromString(payload) ? theirs.protocol_version() : 0;
  wire::Envelope envelope = NewMessage();
  wire::Refused* refused = envelope.mutable_refused();
  refused->set_code(wire::Refused::PROTOCOL_VERSION);
  refused->set_supported_protocol_version(kProtocolVersion);
  refused->set_reason("the coordinator speaks protocol version " +
                      std::to_string(kProtocolVersion) + ", the peer sent version " +
                      std::to_string(their_version) + "; run the same clisc release on both");
  Send(identity, envelope);
  LogWarn("protocol_version_refused",
          {{"ours", static_cast<int64_t>(kProtocolVersion)},
           {"theirs", static_cast<int64_t>(their_version)}});
}

void Coordinator::Dispatch(const std::string& identity, wire::Envelope& envelope) {
  using Body = wire::Envelope::BodyCase;
  if (envelope.body_case() == Body::kHello) {
    HandleHello(identity, envelope.hello());
    return;
  }
  if (envelope.body_case() == Body::kStatusRequest) {
    // Clients need no session; the document is the one last built for the status endpoint.
    wire::Envelope reply = NewMessage();
    reply.mutable_status_reply()->set_json(status_json_.empty() ? "{}" : status_json_);
    Send(identity, reply);
    return;
  }
  if (envelope.body_case() == Body::kCancelRequest) {
    HandleCancel(identity, envelope.cancel_request());
    return;
  }
  Session* session = FindSession(identity);
  if (session == nullptr) {
    // Before hello, or after being declared dead: silence makes the worker say hello again.
    ++counters_.unknown_session;
    return;
  }
  // Any message is a sign of life.
  if (Status alive = scheduler_->Heartbeat(session->worker_id); !alive.ok()) {
    LogInfo("session_dropped", {{"worker", session->worker_id}, {"reason", alive.message()}});
    DropSession(identity);
    ++counters_.unknown_session;
    return;
  }
  switch (envelope.body_case()) {
    case Body::kHeartbeat:
      break;
    case Body::kTaskResult:
      HandleResult(*session, *envelope.mutable_task_result());
      break;
    case Body::kProgress:
      RecordProgress(envelope.progress());
      break;
    case Body::kDisconnect:
      HandleDisconnect(*session, envelope.disconnect());
      break;
    case Body::kArtifactFetch: {
      wire::Envelope reply = NewMessage();
      *reply.mutable_artifact_chunk() = relay_->Fetch(envelope.artifact_fetch());
      ++counters_.artifact_chunks_served;
      Send(identity, reply);
      break;
    }
    case Body::kArtifactPut: {
      wire::Envelope reply = NewMessage();
      *reply.mutable_artifact_put_ack() = relay_->Put(identity, envelope.artifact_put());
      ++counters_.artifact_puts;
      Send(identity, reply);
      break;
    }
    default:
      // Valid frames that a worker has no business sending (acks, assignments, replies).
      drops_.Record(FrameError::kUnknownMessageType);
      break;
  }
}

void Coordinator::HandleHello(const std::string& identity, const wire::Hello& hello) {
  ++counters_.hellos;
  WorkerHello registration;
  registration.id = hello.worker_id();
  registration.roles.assign(hello.roles().begin(), hello.roles().end());
  registration.device = hello.device();
  registration.slots = static_cast<int>(hello.slots());
  registration.hostname = hello.hostname();
  for (const wire::LeaseRef& lease : hello.running()) {
    if (std::optional<TaskId> id = ParseTaskId(lease.task_id())) {
      registration.running.push_back({*id, static_cast<int>(lease.attempt())});
    }
  }
  // A worker that reconnected on a new socket replaces its old connection.
  if (auto old = identity_of_.find(registration.id);
      old != identity_of_.end() && old->second != identity) {
    DropSession(old->second);
  }
  if (Session* existing = FindSession(identity);
      existing != nullptr && existing->worker_id != registration.id) {
    DropSession(identity);
  }
  StatusOr<HelloReply> reply = scheduler_->RegisterWorker(registration);
  if (!reply.ok()) {
    // The ledger was busy: no answer, and the worker says hello again after its timeout.
    LogWarn("hello_failed", {{"worker", registration.id}, {"error", reply.status().message()}});
    return;
  }
  sessions_[identity] = Session{identity, registration.id, false,
                                hello.capabilities().shared_filesystem()};
  identity_of_[registration.id] = identity;

  wire::Envelope ack = NewMessage();
  wire::HelloAck* body = ack.mutable_hello_ack();
  body->set_coordinator_id(options_.coordinator_id);
  body->set_protocol_version(kProtocolVersion);
  body->set_heartbeat_interval_ms(
      static_cast<uint32_t>(options_.scheduler.heartbeat_interval_ms));
  body->set_heartbeat_liveness(static_cast<uint32_t>(options_.scheduler.missed_heartbeats));
  body->set_max_frame_bytes(options_.limits.max_frame_bytes);
  body->set_run_id(options_.run_name);
  Send(identity, ack);
  for (const RunningAttempt& lease : reply->abandon) {
    wire::Envelope cancel = NewMessage();
    cancel.mutable_task_cancel()->set_task_id(std::to_string(lease.task_id));
    cancel.mutable_task_cancel()->set_attempt(static_cast<uint32_t>(lease.attempt));
    cancel.mutable_task_cancel()->set_reason("the lease is no longer this worker's");
    Send(identity, cancel);
  }
  LogInfo("worker_hello", {{"worker", registration.id},
                           {"roles", static_cast<int64_t>(registration.roles.size())},
                           {"slots", registration.slots},
                           {"device", registration.device},
                           {"adopted", static_cast<int64_t>(reply->adopted.size())},
                           {"abandoned", static_cast<int64_t>(reply->abandon.size())}});
  assign_needed_ = true;
}

void Coordinator::HandleDisconnect(Session& session, const wire::Disconnect& disconnect) {
  if (disconnect.draining()) {
    session.draining = true;
    LogInfo("worker_draining", {{"worker", session.worker_id}, {"reason", disconnect.reason()}});
    return;
  }
  LogInfo("worker_left", {{"worker", session.worker_id}, {"reason", disconnect.reason()}});
  if (Status removed = scheduler_->RemoveWorker(session.worker_id, disconnect.reason());
      !removed.ok()) {
    LogWarn("worker_remove_failed", {{"worker", session.worker_id}, {"error", removed.message()}});
  }
  DropSession(session.identity);
  assign_needed_ = true;
}

Status Coordinator::CheckReportedOutputs(const wire::TaskResult& result) const {
  if (!relay_->store()) return OkStatus();
  for (const wire::ArtifactRef& output : result.outputs()) {
    ASSIGN_OR_RETURN(std::filesystem::path path, relay_->store()->Resolve(output.path()));
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) {
      return DataLossError("reported output " + output.path() + " is not in the store: " +
                           ec.message());
    }
    if (size != output.size()) {
      return DataLossError("reported output " + output.path() + " has " + std::to_string(size) +
                           " bytes in the store, the worker reported " +
                           std::to_string(output.size()));
    }
  }
  return OkStatus();
}

void Coordinator::HandleResult(Session& session, wire::TaskResult& result) {
  const auto now = std::chrono::steady_clock::now();
  std::optional<TaskId> task = ParseTaskId(result.task_id());
  if (!task) {
    ++counters_.results_refused;
    return;
  }
  const int attempt = static_cast<int>(result.attempt());
  latency_.Finished(*task, attempt, now);
  progress_.erase(*task);
  last_result_ = now;
  if (result.ok()) {
    if (Status outputs = CheckReportedOutputs(result); !outputs.ok()) {
      ++counters_.results_bad_artifacts;
      LogWarn("result_outputs_invalid", {{"task_id", *task}, {"error", outputs.message()}});
      pending_failures_.push_back({*task, attempt, session.worker_id,
                                   UnavailableError("outputs failed the store check: " +
                                                    outputs.message())});
      return;
    }
    Completion completion;
    completion.task_id = *task;
    completion.attempt = attempt;
    completion.worker_id = session.worker_id;
    nlohmann::json outputs = {{"duration_ms", result.duration_ms()}};
    if (!result.metrics().empty()) {
      nlohmann::json metrics = nlohmann::json::object();
      for (const auto& [name, value] : result.metrics()) {
        metrics[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json();
      }
      outputs["metrics"] = std::move(metrics);
    }
    completion.outputs_json = outputs.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const wire::ArtifactRef& ref : result.outputs()) {
      completion.artifacts.push_back(
          {ref.name(), ref.path(), static_cast<int64_t>(ref.size()), ref.sha256()});
    }
    pending_completions_.push_back(std::move(completion));
    return;
  }
  Status error = FromWireError(result.error());
  pending_failures_.push_back({*task, attempt, session.worker_id, error});
}

void Coordinator::RecordProgress(const wire::Progress& progress) {
  ++counters_.progress_reports;
  std::optional<TaskId> task = ParseTaskId(progress.task_id());
  if (!task) return;
  TaskProgress& entry = progress_[*task];
  entry.attempt = static_cast<int>(progress.attempt());
  entry.fraction = progress.fraction();
  entry.message = progress.message();
  entry.updated_ms = clock_->NowMs();
}

Status Coordinator::FlushResults() {
  if (!pending_completions_.empty()) {
    StatusOr<std::vector<Status>> outcomes = scheduler_->ReportSuccessBatch(pending_completions_);
    if (!outcomes.ok()) {
      // Nothing was recorded; the results stay queued for the next turn.
      LogWarn("record_results_failed", {{"error", outcomes.status().message()},
                                        {"pending", static_cast<int64_t>(
                                                        pending_completions_.size())}});
      return outcomes.status().IsRetryable() ? OkStatus() : outcomes.status();
    }
    for (size_t i = 0; i < outcomes->size(); ++i) {
      if ((*outcomes)[i].ok()) {
        ++counters_.results_ok;
      } else {
        ++counters_.results_refused;
        LogDebug("result_refused", {{"task_id", pending_completions_[i].task_id},
                                    {"reason", (*outcomes)[i].message()}});
      }
    }
    pending_completions_.clear();
    assign_needed_ = true;
  }
  while (!pending_failures_.empty()) {
    const TaskFailure& failure = pending_failures_.back();
    Status reported = scheduler_->ReportFailure(failure);
    if (reported.ok()) {
      ++counters_.results_failed;
      LogInfo("task_failed", {{"task_id", failure.task_id},
                              {"attempt", failure.attempt},
                              {"worker", failure.worker_id},
                              {"error", failure.error.ToString()}});
    } else if (reported.code() == StatusCode::kFailedPrecondition ||
               reported.code() == StatusCode::kNotFound) {
      ++counters_.results_refused;
    } else {
      LogWarn("record_failure_failed", {{"error", reported.message()}});
      return reported.IsRetryable() ? OkStatus() : reported;
    }
    pending_failures_.pop_back();
    assign_needed_ = true;
  }
  return OkStatus();
}

StatusOr<wire::TaskAssign> Coordinator::MakeAssign(const Assignment& assignment) {
  wire::TaskAssign assign;
  assign.set_task_id(std::to_string(assignment.task_id));
  assign.set_attempt(static_cast<uint32_t>(assignment.attempt));
  assign.set_role(assignment.role);
  assign.set_stage(assignment.stage);
  if (assignment.case_id) assign.set_case_id(*assignment.case_id);
  assign.set_round(static_cast<uint32_t>(assignment.round));
  assign.set_params_json(assignment.params_json);
  assign.set_run_id(options_.run_name);
  if (assignment.lease_deadline_ms) {
    assign.set_deadline_ms(
        static_cast<uint64_t>(std::max<int64_t>(1, *assignment.lease_deadline_ms -
                                                       clock_->NowMs())));
  }
  ASSIGN_OR_RETURN(std::vector<InputArtifact> inputs,
                   ledger_->ListInputArtifacts(assignment.task_id));
  for (const InputArtifact& input : inputs) {
    wire::ArtifactRef* ref = assign.add_inputs();
    ref->set_name(InputName(input, assignment.case_id));
    ref->set_path(input.artifact.relative_path);
    ref->set_sha256(input.artifact.sha256);
    ref->set_size(static_cast<uint64_t>(input.artifact.size_bytes));
  }
  // Only parse params that declare outputs; most tasks' params are small and have none.
  if (assignment.params_json.find("\"outputs\"") != std::string::npos) {
    nlohmann::json params = nlohmann::json::parse(assignment.params_json, nullptr, false);
    if (params.is_object() && params.contains("outputs") && params["outputs"].is_array()) {
      for (const nlohmann::json& output : params["outputs"]) {
        if (!output.is_object() || !output.value("name", nlohmann::json()).is_string() ||
            !output.value("path", nlohmann::json()).is_string()) {
          return InvalidArgumentError("params.outputs entries need string name and path");
        }
        wire::ExpectedOutput* expected = assign.add_expected_outputs();
        expected->set_name(output["name"].get<std::string>());
        expected->set_path(output["path"].get<std::string>());
      }
    }
  }
  return assign;
}

Status Coordinator::AssignWork() {
  assign_needed_ = false;
  if (RunEnded()) return OkStatus();
  std::vector<std::string> workers;
  std::vector<std::string> identities;
  for (const auto& [identity, session] : sessions_) {
    if (session.draining) continue;
    workers.push_back(session.worker_id);
    identities.push_back(identity);
  }
  if (workers.empty()) return OkStatus();
  StatusOr<std::vector<StatusOr<std::vector<Assignment>>>> batch =
      scheduler_->AssignWorkBatch(workers);
  if (!batch.ok()) {
    LogWarn("assign_failed", {{"error", batch.status().message()}});
    assign_needed_ = true;
    return batch.status().IsRetryable() ? OkStatus() : batch.status();
  }
  const auto now = std::chrono::steady_clock::now();
  for (size_t w = 0; w < batch->size(); ++w) {
    StatusOr<std::vector<Assignment>>& assigned = (*batch)[w];
    if (!assigned.ok()) {
      DropSession(identities[w]);
      continue;
    }
    for (const Assignment& assignment : *assigned) {
      StatusOr<wire::TaskAssign> assign = MakeAssign(assignment);
      if (!assign.ok()) {
        pending_failures_.push_back({assignment.task_id, assignment.attempt, workers[w],
                                     assign.status()});
        continue;
      }
      wire::Envelope envelope = NewMessage();
      *envelope.mutable_task_assign() = std::move(*assign);
      latency_.Started(assignment.task_id, assignment.attempt, now);
      if (!first_assign_) first_assign_ = now;
      ++counters_.tasks_assigned;
      Send(identities[w], envelope);
    }
  }
  return OkStatus();
}

void Coordinator::HandleCancel(const std::string& identity, const wire::CancelRequest& request) {
  wire::Envelope reply = NewMessage();
  wire::CancelAck* ack = reply.mutable_cancel_ack();
  StatusOr<GraphEffects> effects = InvalidArgumentError("cancel request names no target");
  if (request.has_run_id()) {
    effects = request.run_id() == options_.run_name
                  ? scheduler_->CancelRun(request.reason())
                  : StatusOr<GraphEffects>(NotFoundError("this coordinator serves run " +
                                                         options_.run_name + ", not " +
                                                         request.run_id()));
  } else if (request.has_task_id()) {
    std::optional<TaskId> task = ParseTaskId(request.task_id());
    effects = task ? scheduler_->CancelTask(*task, request.reason())
                   : StatusOr<GraphEffects>(InvalidArgumentError("bad task id"));
  }
  if (effects.ok()) {
    ack->set_accepted(true);
    ack->set_cancelled_tasks(static_cast<uint32_t>(effects->cancelled.size()));
    for (const LeaseRef& lease : effects->revoked_leases) {
      auto it = identity_of_.find(lease.worker_id);
      if (it == identity_of_.end()) continue;
      wire::Envelope cancel = NewMessage();
      cancel.mutable_task_cancel()->set_task_id(std::to_string(lease.task_id));
      cancel.mutable_task_cancel()->set_attempt(static_cast<uint32_t>(lease.attempt));
      cancel.mutable_task_cancel()->set_reason("cancelled: " + request.reason());
      Send(it->second, cancel);
    }
    LogInfo("cancelled", {{"tasks", static_cast<int64_t>(effects->cancelled.size())},
                          {"reason", request.reason()}});
  } else {
    *ack->mutable_error() = ToWireError(effects.status());
  }
  Send(identity, reply);
}

}  // namespace clisc
