// The plug-in interface between the worker runtime and the code that does a task's work (a
// "role": clip, cam, sam, trainer, or one of the test roles). Roles are compiled in LibTorch
// translation units, so this header stays free of protobuf and ZeroMQ: plain structs in, plain
// structs out. The runtime owns everything about the wire: leases, artifact transfer, progress
// rate limits, deadlines and cancellation.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/artifact_store.h"
#include "common/status.h"

namespace clisc::worker {

// An artifact the task reads; present in context.store() when Run() is called (on a shared
// filesystem the role should Verify() it if it cares; without one the runtime already has).
struct TaskInput {
  std::string name;
  std::string path;  // relative to the store root
  std::string sha256;
  uint64_t size = 0;
};

// An artifact the task must write into context.store() and report in TaskOutput.
struct ExpectedOutput {
  std::string name;
  std::string path;
};

// One produced artifact, as ArtifactStore::PutFile describes it plus the role's name for it.
struct OutputArtifact {
  std::string name;
  std::string path;
  std::string sha256;
  uint64_t size = 0;
};

struct TaskOutput {
  std::vector<OutputArtifact> outputs;
  std::map<std::string, double> metrics;
};

// Everything the coordinator said about one lease, in plain types.
struct TaskSpec {
  std::string task_id;
  uint32_t attempt = 1;
  std::string role;
  std::string stage;
  std::string case_id;
  uint32_t round = 0;
  std::string params_json;  // a JSON object; the role validates it
  std::vector<TaskInput> inputs;
  std::vector<ExpectedOutput> expected_outputs;
  std::string run_id;
  uint64_t deadline_ms = 0;  // budget from receipt; 0 = none (the context enforces it)
};

// Cancellation state of one lease, shared by the IO thread (which cancels) and the task thread
// (which observes). The deadline is fixed when the lease is received.
class LeaseControl {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LeaseControl(Clock::time_point deadline = Clock::time_point::max())
      : deadline_(deadline) {}

  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const { return cancelled_.load(std::memory_order_relaxed); }
  bool deadline_passed() const {
    return deadline_ != Clock::time_point::max() && Clock::now() >= deadline_;
  }
  bool stopped() const { return cancel_requested() || deadline_passed(); }
  Clock::time_point deadline() const { return deadline_; }

 private:
  std::atomic<bool> cancelled_{false};
  Clock::time_point deadline_;
};

// The view a role has of its task. One context per task attempt; it outlives Run().
class TaskContext {
 public:
  // Receives rate-unlimited progress reports; the runtime throttles them before the wire.
  using ProgressSink = std::function<void(double fraction, std::string message,
                                          std::map<std::string, double> metrics)>;

  TaskContext(TaskSpec spec, const ArtifactStore* store, std::string device,
              std::shared_ptr<const LeaseControl> control, ProgressSink progress);

  const std::string& task_id() const { return spec_.task_id; }
  uint32_t attempt() const { return spec_.attempt; }
  const std::string& role() const { return spec_.role; }
  const std::string& stage() const { return spec_.stage; }
  const std::string& case_id() const { return spec_.case_id; }
  uint32_t round() const { return spec_.round; }
  const std::string& run_id() const { return spec_.run_id; }
  const std::string& params_json() const { return spec_.params_json; }
  const std::vector<TaskInput>& inputs() const { return spec_.inputs; }
  const std::vector<ExpectedOutput>& expected_outputs() const { return spec_.expected_outputs; }
  // "cpu" or "cuda:N", as the worker was started with.
  const std::string& device() const { return device_; }
  // Where inputs are read and outputs written (the shared store, or the worker's scratch store).
  const ArtifactStore& store() const { return *store_; }

  // Safe to call as often as convenient (every iteration): reports are coalesced to a few per
  // second before they reach the coordinator, and the last one is always delivered.
  void ReportProgress(double fraction, std::string message,
                      std::map<std::string, double> metrics = {});

  // True once the coordinator cancelled the lease, the worker is shutting down, or the task's
  // deadline passed. A role checks it between units of work and returns early (any status:
  // the runtime reports the right one).
  bool cancelled() const { return control_->stopped(); }
  // Sleeps up to `duration` in short steps; returns false (early) when cancelled.
  bool SleepFor(std::chrono::milliseconds duration) const;

 private:
  TaskSpec spec_;
  const ArtifactStore* store_;
  std::string device_;
  std::shared_ptr<const LeaseControl> control_;
  ProgressSink progress_;
};

// One unit of work. The registry creates a fresh instance per task attempt; a role with costly
// state (a loaded model) shares it through its factory's closure. Run() is called on a task
// thread, never on the worker's IO thread, and several instances run at once with --slots > 1.
class Role {
 public:
  virtual ~Role() = default;
  // Writes every expected output into context.store() and reports them. Errors are reported as
  // they are; Status::IsRetryable() decides whether the coordinator tries again.
  virtual StatusOr<TaskOutput> Run(TaskContext& context) = 0;
};

}  // namespace clisc::worker
