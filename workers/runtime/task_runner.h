// Runs one lease on a task thread, start to end: inputs in (fetched through the coordinator
// without a shared filesystem), the role, outputs out, then the TaskResult. Everything it says
// to the coordinator goes through the outbox; the IO thread decides whether it is still wanted
// (a cancelled or handed-back lease's result is dropped there).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/artifact_store.h"
#include "common/status.h"
#include "schemas/clisc.pb.h"
#include "workers/runtime/artifact_transfer.h"
#include "workers/runtime/outbox.h"
#include "workers/runtime/progress_throttle.h"
#include "workers/runtime/role.h"
#include "workers/runtime/role_registry.h"

namespace clisc::worker {

struct TaskEnvironment {
  const RoleRegistry* registry = nullptr;
  // The shared store, or the worker's scratch store when `transfer` is set.
  const ArtifactStore* store = nullptr;
  // Set when there is no shared filesystem: inputs and outputs move through the coordinator.
  ArtifactTransfer* transfer = nullptr;
  Outbox* outbox = nullptr;
  ProgressThrottle* throttle = nullptr;
  std::string device;
};

class TaskRunner {
 public:
  explicit TaskRunner(TaskEnvironment environment) : env_(std::move(environment)) {}

  // Runs the lease and posts its last progress report and its result.
  void Run(const TaskSpec& spec, const std::shared_ptr<LeaseControl>& control);
  // The lease's outcome without posting it.
  wire::TaskResult Execute(const TaskSpec& spec, const std::shared_ptr<LeaseControl>& control);

 private:
  StatusOr<TaskOutput> RunRole(const TaskSpec& spec, const std::shared_ptr<LeaseControl>& control);
  void ReportProgress(const TaskSpec& spec, double fraction, std::string message,
                      std::map<std::string, double> metrics);

  TaskEnvironment env_;
};

TaskSpec TaskSpecFromAssign(const wire::TaskAssign& assign);
// A failed result for a lease that never ran (or was handed back).
wire::TaskResult FailedTaskResult(const std::string& task_id, uint32_t attempt, const Status& error,
                                  uint64_t duration_ms = 0);

}  // namespace clisc::worker
