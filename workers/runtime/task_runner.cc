#include "workers/runtime/task_runner.h"

#include <chrono>
#include <cmath>
#include <exception>

#include "common/wire/frame_limits.h"
#include "common/wire/frame_validation.h"
#include "common/wire/wire_error.h"

namespace clisc::worker {
namespace {

using Clock = std::chrono::steady_clock;

// Metric names become ledger and Redis keys: the wire refuses empty, long or control-character
// names, and one bad name would cost the whole frame, so such entries are left out instead.
bool IsWireName(const std::string& name) {
  if (name.empty() || name.size() > FrameLimits().max_name_bytes) return false;
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

template <typename WireMap>
void CopyMetrics(const std::map<std::string, double>& metrics, WireMap* out) {
  const size_t max_metrics = FrameLimits().max_metrics;
  for (const auto& [name, value] : metrics) {
    if (out->size() >= max_metrics) break;
    if (IsWireName(name)) (*out)[name] = value;
  }
}

}  // namespace

TaskSpec TaskSpecFromAssign(const wire::TaskAssign& assign) {
  TaskSpec spec;
  spec.task_id = assign.task_id();
  spec.attempt = assign.attempt();
  spec.role = assign.role();
  spec.stage = assign.stage();
  spec.case_id = assign.case_id();
  spec.round = assign.round();
  spec.params_json = assign.params_json();
  spec.run_id = assign.run_id();
  spec.deadline_ms = assign.deadline_ms();
  spec.inputs.reserve(assign.inputs_size());
  for (const wire::ArtifactRef& input : assign.inputs()) {
    spec.inputs.push_back({input.name(), input.path(), input.sha256(), input.size()});
  }
  spec.expected_outputs.reserve(assign.expected_outputs_size());
  for (const wire::ExpectedOutput& output : assign.expected_outputs()) {
    spec.expected_outputs.push_back({output.name(), output.path()});
  }
  return spec;
}

wire::TaskResult FailedTaskResult(const std::string& task_id, uint32_t attempt, const Status& error,
                                  uint64_t duration_ms) {
  wire::TaskResult result;
  result.set_task_id(task_id);
  result.set_attempt(attempt);
  result.set_ok(false);
  *result.mutable_error() = ToWireError(error);
  result.set_duration_ms(duration_ms);
  return result;
}

void TaskRunner::ReportProgress(const TaskSpec& spec, double fraction, std::string message,
                                std::map<std::string, double> metrics) {
  wire::Progress progress;
  progress.set_task_id(spec.task_id);
  progress.set_attempt(spec.attempt);
  progress.set_fraction(std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0);
  progress.set_message(SanitizeWireText(message, FrameLimits().max_text_bytes));
  CopyMetrics(metrics, progress.mutable_metrics());
  if (std::optional<wire::Progress> now = env_.throttle->Offer(std::move(progress), Clock::now())) {
    wire::Envelope envelope;
    *envelope.mutable_progress() = std::move(*now);
    env_.outbox->Post(std::move(envelope));
  }
}

StatusOr<TaskOutput> TaskRunner::RunRole(const TaskSpec& spec,
                                         const std::shared_ptr<LeaseControl>& control) {
  if (env_.transfer != nullptr) {
    for (const TaskInput& input : spec.inputs) {
      RETURN_IF_ERROR(env_.transfer->Fetch(spec, input, *env_.store, *control));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Role> role, env_.registry->Create(spec.role));
  TaskContext context(
      spec, env_.store, env_.device, control,
      [this, &spec](double fraction, std::string message, std::map<std::string, double> metrics) {
        ReportProgress(spec, fraction, std::move(message), std::move(metrics));
      });
  StatusOr<TaskOutput> output = InternalError("role returned nothing");
  // Roles are plug-ins around third-party libraries (LibTorch throws c10::Error): an exception
  // that escapes one must fail its task, not terminate every task of the worker.
  try {
    output = role->Run(context);
  } catch (const std::exception& e) {
    output = InternalError(std::string("role threw an exception: ") + e.what());
  } catch (...) {
    output = InternalError("role threw a non-standard exception");
  }
  if (!output.ok() || control->stopped()) return output;
  if (env_.transfer != nullptr) {
    for (const OutputArtifact& artifact : output->outputs) {
      RETURN_IF_ERROR(env_.transfer->Push(spec, artifact, *env_.store, *control));
    }
  }
  return output;
}

wire::TaskResult TaskRunner::Execute(const TaskSpec& spec,
                                     const std::shared_ptr<LeaseControl>& control) {
  const Clock::time_point start = Clock::now();
  StatusOr<TaskOutput> output = RunRole(spec, control);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  const uint64_t duration_ms = static_cast<uint64_t>(elapsed.count());

  Status status = output.status();
  if (control->cancel_requested()) {
    status = CancelledError("the lease was cancelled");
  } else if (control->deadline_passed()) {
    // Late work is not reported as done: the coordinator may already have re-leased the task.
    status = DeadlineExceededError("the task ran past its deadline of " +
                                   std::to_string(spec.deadline_ms) + " ms");
  }
  if (!status.ok()) {
    return FailedTaskResult(spec.task_id, spec.attempt, status, duration_ms);
  }
  wire::Envelope envelope;
  wire::TaskResult* result = envelope.mutable_task_result();
  result->set_task_id(spec.task_id);
  result->set_attempt(spec.attempt);
  result->set_ok(true);
  result->set_duration_ms(duration_ms);
  for (const OutputArtifact& artifact : output->outputs) {
    wire::ArtifactRef* ref = result->add_outputs();
    ref->set_name(artifact.name);
    ref->set_path(artifact.path);
    ref->set_sha256(artifact.sha256);
    ref->set_size(artifact.size);
  }
  CopyMetrics(output->metrics, result->mutable_metrics());
  // A malformed output list would make the coordinator drop the whole frame and wait for a
  // result that never comes; failing here names the problem instead.
  envelope.set_protocol_version(FrameLimits().protocol_version);
  if (Status valid = ValidateEnvelope(envelope, envelope.ByteSizeLong(), FrameLimits());
      !valid.ok()) {
    return FailedTaskResult(
        spec.task_id, spec.attempt,
        InternalError("role " + spec.role +
                      " produced a result that is not valid on the wire: " + valid.message()),
        duration_ms);
  }
  return std::move(*result);
}

void TaskRunner::Run(const TaskSpec& spec, const std::shared_ptr<LeaseControl>& control) {
  wire::TaskResult result = Execute(spec, control);
  if (std::optional<wire::Progress> last = env_.throttle->Finish(spec.task_id, spec.attempt)) {
    wire::Envelope progress;
    *progress.mutable_progress() = std::move(*last);
    env_.outbox->Post(std::move(progress));
  }
  wire::Envelope envelope;
  *envelope.mutable_task_result() = std::move(result);
  env_.outbox->Post(std::move(envelope));
}

}  // namespace clisc::worker
