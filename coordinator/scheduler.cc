// Scheduler: the in-memory task view, results, and run control.
#include "coordinator/scheduler.h"

#include <algorithm>
#include <utility>

#include "common/logging.h"

namespace clisc {

StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(Ledger* ledger, RunId run,
                                                       const SchedulerOptions& options) {
  if (ledger == nullptr) return InvalidArgumentError("Scheduler needs a ledger");
  if (options.heartbeat_interval_ms <= 0 || options.missed_heartbeats < 1) {
    return InvalidArgumentError("heartbeat interval must be positive and missed_heartbeats >= 1");
  }
  if (options.restart_grace_ms < 0 || options.lease_timeout_ms < 0 || options.min_cases < 0) {
    return InvalidArgumentError("restart_grace_ms, lease_timeout_ms and min_cases must be >= 0");
  }
  std::unique_ptr<Scheduler> scheduler(new Scheduler(ledger, run, options));
  RETURN_IF_ERROR(scheduler->Reload());
  size_t leased = 0;
  for (const auto& [id, entry] : scheduler->tasks_) leased += entry.orphan ? 1 : 0;
  LogInfo("scheduler_resumed", {{"run", run},
                                {"open_tasks", scheduler->tasks_.size()},
                                {"leases_awaiting_workers", leased}});
  RETURN_IF_ERROR(scheduler->CheckRunOutcome());
  return scheduler;
}

Scheduler::Scheduler(Ledger* ledger, RunId run, const SchedulerOptions& options)
    : ledger_(ledger), clock_(&ledger->clock()), run_(run), options_(options) {}

// ---- In-memory view ---------------------------------------------------------------------------

Status Scheduler::Reload() {
  ASSIGN_OR_RETURN(RunRecord run, ledger_->GetRun(run_));
  ASSIGN_OR_RETURN(std::vector<OpenTask> open, ledger_->LoadOpenTasks(run_));
  int64_t now = clock_->NowMs();

  // A lease still waiting for its worker keeps its original grace deadline across reloads.
  std::unordered_map<TaskId, int64_t> orphan_expiry;
  for (const auto& [id, entry] : tasks_) {
    if (entry.orphan) orphan_expiry.emplace(id, entry.expiry_ms);
  }
  tasks_.clear();
  ready_.clear();
  delayed_.clear();
  expiries_.clear();
  for (auto& [id, worker] : workers_) worker.leases.clear();
  run_state_ = run.state;

  for (OpenTask& o : open) {
    TaskEntry entry;
    entry.unmet = static_cast<int>(o.unmet_deps.size());
    entry.record = std::move(o.task);
    tasks_.emplace(entry.record.id, std::move(entry));
  }
  for (const OpenTask& o : open) {
    for (TaskId dep : o.unmet_deps) {
      auto it = tasks_.find(dep);
      if (it != tasks_.end()) {
        it->second.dependents.push_back(o.task.id);
      } else {
        // Cannot happen in a consistent ledger (a closed, unsucceeded dependency blocks).
        LogWarn("scheduler_dangling_dependency", {{"task", o.task.id}, {"dependency", dep}});
        --tasks_.at(o.task.id).unmet;
      }
    }
  }
  for (auto& [id, entry] : tasks_) {
    if (entry.record.state == TaskState::kLeased) {
      int64_t hard = entry.record.lease_deadline_ms.value_or(0);
      auto worker = workers_.find(entry.record.lease_worker.value_or(""));
      if (worker != workers_.end() && worker->second.alive) {
        worker->second.leases.insert(id);
        SetExpiry(entry, hard);
      } else {
        // Leased by a worker that has not said hello since this scheduler started (or is dead).
        entry.orphan = true;
        auto known = orphan_expiry.find(id);
        int64_t grace = known != orphan_expiry.end() ? known->second
                        : worker != workers_.end()   ? now
                                                     : now + options_.restart_grace_ms;
        SetExpiry(entry, hard > 0 ? std::min(hard, grace) : grace);
      }
    } else if (entry.unmet == 0) {
      Enqueue(entry);
    }
  }
  return OkStatus();
}

void Scheduler::Enqueue(TaskEntry& entry) {
  if (entry.record.state != TaskState::kPending || entry.unmet > 0) return;
  if (entry.record.not_before_ms <= clock_->NowMs()) {
    ready_[entry.record.role].insert(entry.record.id);
  } else {
    delayed_.emplace(entry.record.not_before_ms, entry.record.id);
  }
}

void Scheduler::Unqueue(const TaskEntry& entry) {
  auto role = ready_.find(entry.record.role);
  if (role != ready_.end()) role->second.erase(entry.record.id);
  delayed_.erase({entry.record.not_before_ms, entry.record.id});
}

void Scheduler::SetExpiry(TaskEntry& entry, int64_t expiry_ms) {
  if (entry.expiry_ms > 0) expiries_.erase({entry.expiry_ms, entry.record.id});
  entry.expiry_ms = expiry_ms;
  if (expiry_ms > 0) expiries_.emplace(expiry_ms, entry.record.id);
}

void Scheduler::ForgetLease(TaskEntry& entry) {
  if (entry.record.lease_worker.has_value()) {
    auto worker = workers_.find(*entry.record.lease_worker);
    if (worker != workers_.end()) worker->second.leases.erase(entry.record.id);
  }
  SetExpiry(entry, 0);
  entry.orphan = false;
  entry.record.lease_worker.reset();
  entry.record.lease_deadline_ms.reset();
}

void Scheduler::PromoteDue(int64_t now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    TaskId id = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    auto it = tasks_.find(id);
    if (it != tasks_.end()) ready_[it->second.record.role].insert(id);
  }
}

void Scheduler::OnSucceeded(TaskId task) {
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return;
  ForgetLease(it->second);
  Unqueue(it->second);
  std::vector<TaskId> dependents = std::move(it->second.dependents);
  tasks_.erase(it);
  for (TaskId id : dependents) {
    auto dep = tasks_.find(id);
    if (dep == tasks_.end()) continue;
    if (--dep->second.unmet == 0) Enqueue(dep->second);
  }
}

// ---- Results ----------------------------------------------------------------------------------

Status Scheduler::CheckFence(TaskId task, int attempt, std::string_view worker) const {
  auto it = tasks_.find(task);
  std::string name = "task " + std::to_string(task);
  if (it == tasks_.end() || it->second.record.state != TaskState::kLeased) {
    return FailedPreconditionError(name + " is not leased: result of attempt " +
                                   std::to_string(attempt) + " is stale");
  }
  const TaskRecord& r = it->second.record;
  if (r.attempt != attempt) {
    return FailedPreconditionError(name + ": stale attempt " + std::to_string(attempt) +
                                   ", current lease is attempt " + std::to_string(r.attempt));
  }
  if (r.lease_worker.value_or("") != worker) {
    return FailedPreconditionError(name + " is leased to " + r.lease_worker.value_or("nobody") +
                                   ", not " + std::string(worker));
  }
  return OkStatus();
}

Status Scheduler::ReportSuccess(const Completion& completion) {
  ASSIGN_OR_RETURN(std::vector<Status> results, ReportSuccessBatch({completion}));
  return results.front();
}

StatusOr<std::vector<Status>> Scheduler::ReportSuccessBatch(
    const std::vector<Completion>& completions) {
  int64_t now = clock_->NowMs();
  std::vector<Status> results(completions.size());
  std::vector<Completion> fresh;
  std::vector<size_t> where;
  std::set<TaskId> in_batch;
  for (size_t i = 0; i < completions.size(); ++i) {
    const Completion& c = completions[i];
    auto worker = workers_.find(c.worker_id);
    if (worker != workers_.end() && worker->second.alive) {
      worker->second.last_heartbeat_ms = now;  // any message from a worker shows it is alive
    }
    results[i] = CheckFence(c.task_id, c.attempt, c.worker_id);
    if (results[i].ok() && !in_batch.insert(c.task_id).second) {
      // A worker resending a result (at-least-once delivery): the first copy counts.
      results[i] = FailedPreconditionError("task " + std::to_string(c.task_id) +
                                           " reported twice in one batch");
    }
    if (!results[i].ok()) {
      LogInfo("stale_result_ignored",
              {{"task", c.task_id}, {"attempt", c.attempt}, {"worker", c.worker_id}});
      continue;
    }
    fresh.push_back(c);
    where.push_back(i);
  }
  if (fresh.empty()) return results;
  ASSIGN_OR_RETURN(std::vector<Status> outcomes, ledger_->CompleteBatch(fresh));
  bool resync = false;
  for (size_t j = 0; j < outcomes.size(); ++j) {
    results[where[j]] = outcomes[j];
    if (outcomes[j].ok()) {
      OnSucceeded(fresh[j].task_id);
    } else if (outcomes[j].code() == StatusCode::kFailedPrecondition ||
               outcomes[j].code() == StatusCode::kNotFound) {
      resync = true;  // memory said leased, the ledger disagrees: the ledger wins
    }
  }
  if (resync) RETURN_IF_ERROR(Reload());
  if (tasks_.empty()) RETURN_IF_ERROR(CheckRunOutcome());
  return results;
}

Status Scheduler::ReportFailure(const TaskFailure& failure) {
  auto worker = workers_.find(failure.worker_id);
  if (worker != workers_.end() && worker->second.alive) {
    worker->second.last_heartbeat_ms = clock_->NowMs();
  }
  RETURN_IF_ERROR(CheckFence(failure.task_id, failure.attempt, failure.worker_id));
  FailureReport report;
  report.task_id = failure.task_id;
  report.attempt = failure.attempt;
  report.worker_id = failure.worker_id;
  report.error =
      failure.error.ok() ? Status(StatusCode::kUnknown, "failed without a reason") : failure.error;
  report.retryable = report.error.IsRetryable();
  report.retry_delay_ms = options_.retry.DelayMs(failure.task_id, failure.attempt);
  ASSIGN_OR_RETURN(FailResult result, ledger_->FailBatch({report}));
  if (!result.outcomes.front().ok()) {
    RETURN_IF_ERROR(Reload());
    return result.outcomes.front().status();
  }
  return ApplyFailResult({failure.task_id}, result);
}

Status Scheduler::ApplyFailResult(const std::vector<TaskId>& tasks, const FailResult& result) {
  // Read after the ledger's transition so memory never thinks a backoff ends before the
  // ledger does (the ledger would refuse the lease).
  int64_t now = clock_->NowMs();
  bool reload = !result.effects.empty();
  for (size_t i = 0; i < tasks.size() && i < result.outcomes.size(); ++i) {
    const StatusOr<TaskState>& outcome = result.outcomes[i];
    auto it = tasks_.find(tasks[i]);
    if (!outcome.ok() || it == tasks_.end()) {
      reload = true;
      continue;
    }
    if (*outcome != TaskState::kPending) {
      reload = true;  // failed for good: dependents block, the case may go
      continue;
    }
    TaskEntry& entry = it->second;
    int attempt = entry.record.attempt;
    ForgetLease(entry);
    entry.record.state = TaskState::kPending;
    entry.record.not_before_ms = now + options_.retry.DelayMs(entry.record.id, attempt);
    Enqueue(entry);
  }
  if (!reload) return OkStatus();
  RETURN_IF_ERROR(Reload());
  return CheckRunOutcome();
}

// ---- Run control ------------------------------------------------------------------------------

Status Scheduler::CheckRunOutcome() {
  if (run_state_ != RunState::kRunning) return OkStatus();
  ASSIGN_OR_RETURN(RunHealth health, ledger_->GetRunHealth(run_));
  std::string reason;
  if (health.failed_global_tasks > 0) {
    reason = std::to_string(health.failed_global_tasks) +
             " global task(s) failed or blocked; the run cannot complete";
  } else if (health.active_cases + health.excluded_cases > 0 &&
             health.active_cases < options_.min_cases) {
    reason = "only " + std::to_string(health.active_cases) + " active case(s) remain (" +
             std::to_string(health.excluded_cases) + " excluded), fewer than min_cases " +
             std::to_string(options_.min_cases);
  }
  if (!reason.empty()) {
    LogWarn("run_failed", {{"run", run_}, {"reason", reason}});
    RETURN_IF_ERROR(ledger_->CancelRun(run_, reason, RunState::kFailed).status());
    return Reload();
  }
  if (options_.finish_when_idle && tasks_.empty()) return Finish();
  return OkStatus();
}

Status Scheduler::Finish() {
  if (run_state_ != RunState::kRunning) return OkStatus();
  if (!tasks_.empty()) {
    return FailedPreconditionError(std::to_string(tasks_.size()) + " task(s) are still open");
  }
  ASSIGN_OR_RETURN(RunHealth health, ledger_->GetRunHealth(run_));
  if (health.open_tasks > 0) return Reload();  // the ledger knows of more work
  RETURN_IF_ERROR(ledger_->SetRunState(
      run_, RunState::kSucceeded, std::to_string(health.excluded_cases) + " case(s) excluded"));
  run_state_ = RunState::kSucceeded;
  LogInfo("run_succeeded", {{"run", run_}, {"excluded_cases", health.excluded_cases}});
  return OkStatus();
}

StatusOr<UpsertResult> Scheduler::Plan(const std::vector<TaskSpec>& specs,
                                       const UpsertOptions& options) {
  ASSIGN_OR_RETURN(UpsertResult result, ledger_->UpsertTasks(run_, specs, options));
  RETURN_IF_ERROR(Reload());
  RETURN_IF_ERROR(CheckRunOutcome());
  return result;
}

StatusOr<GraphEffects> Scheduler::CancelTask(TaskId task, std::string_view reason) {
  ASSIGN_OR_RETURN(GraphEffects effects, ledger_->CancelTask(task, reason));
  RETURN_IF_ERROR(Reload());
  RETURN_IF_ERROR(CheckRunOutcome());
  return effects;
}

StatusOr<GraphEffects> Scheduler::CancelRun(std::string_view reason) {
  ASSIGN_OR_RETURN(GraphEffects effects, ledger_->CancelRun(run_, reason, RunState::kCancelled));
  RETURN_IF_ERROR(Reload());
  return effects;
}

StatusOr<GraphEffects> Scheduler::Invalidate(TaskId task, std::string_view reason) {
  ASSIGN_OR_RETURN(GraphEffects effects, ledger_->Invalidate(task, reason));
  RETURN_IF_ERROR(Reload());
  RETURN_IF_ERROR(CheckRunOutcome());
  return effects;
}

StatusOr<GraphEffects> Scheduler::ExcludeCase(std::string_view case_id, std::string_view reason) {
  ASSIGN_OR_RETURN(GraphEffects effects, ledger_->ExcludeCase(run_, case_id, reason));
  RETURN_IF_ERROR(Reload());
  RETURN_IF_ERROR(CheckRunOutcome());
  return effects;
}

SchedulerSnapshot Scheduler::Snapshot() const {
  SchedulerSnapshot s;
  s.run_state = run_state_;
  s.open_tasks = tasks_.size();
  for (const auto& [role, ids] : ready_) s.ready += ids.size();
  s.delayed = delayed_.size();
  for (const auto& [id, entry] : tasks_) {
    if (entry.record.state == TaskState::kLeased) {
      ++s.leased;
    } else if (entry.unmet > 0) {
      ++s.waiting;
    }
  }
  for (const auto& [id, worker] : workers_) s.workers_alive += worker.alive ? 1 : 0;
  return s;
}

}  // namespace clisc
