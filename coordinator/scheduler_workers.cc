// Scheduler: the worker registry, heartbeats, leasing work out and taking leases back.
#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "common/logging.h"
#include "coordinator/scheduler.h"

namespace clisc {

StatusOr<HelloReply> Scheduler::RegisterWorker(const WorkerHello& hello) {
  if (hello.id.empty()) return InvalidArgumentError("a worker needs an id");
  if (hello.roles.empty()) return InvalidArgumentError("worker " + hello.id + " has no roles");
  if (hello.slots < 1) return InvalidArgumentError("worker " + hello.id + " has no slots");
  int64_t now = clock_->NowMs();
  WorkerRecord record;
  record.id = hello.id;
  record.roles = hello.roles;
  record.device = hello.device;
  record.slots = hello.slots;
  record.hostname = hello.hostname;
  RETURN_IF_ERROR(ledger_->UpsertWorker(record));

  auto [it, inserted] = workers_.try_emplace(hello.id);
  Worker& worker = it->second;
  worker.info = std::move(record);
  worker.alive = true;
  worker.last_heartbeat_ms = now;
  worker.last_touch_ms = now;

  // Reconcile: a lease the worker still runs is kept; one it does not mention is lost (the
  // worker restarted, or never got the assignment).
  std::set<std::pair<TaskId, int>> running;
  for (const RunningAttempt& r : hello.running) running.emplace(r.task_id, r.attempt);
  HelloReply reply;
  std::vector<std::pair<TaskId, std::string>> lost;
  std::set<std::pair<TaskId, int>> adopted;
  for (auto& [id, entry] : tasks_) {
    if (entry.record.state != TaskState::kLeased || entry.record.lease_worker != hello.id) continue;
    if (running.count({id, entry.record.attempt}) > 0) {
      entry.orphan = false;
      worker.leases.insert(id);
      SetExpiry(entry, entry.record.lease_deadline_ms.value_or(0));
      adopted.emplace(id, entry.record.attempt);
      reply.adopted.push_back({id, entry.record.attempt});
    } else {
      lost.emplace_back(id, "worker " + hello.id + " came back without it");
    }
  }
  for (const RunningAttempt& r : hello.running) {
    if (adopted.count({r.task_id, r.attempt}) == 0) reply.abandon.push_back(r);
  }
  LogInfo("worker_registered", {{"worker", hello.id},
                                {"slots", hello.slots},
                                {"adopted", reply.adopted.size()},
                                {"lost", lost.size()},
                                {"abandon", reply.abandon.size()},
                                {"reconnect", !inserted}});
  RETURN_IF_ERROR(ExpireLeases(lost, nullptr));
  return reply;
}

void Scheduler::TouchWorker(Worker& worker, int64_t now) {
  worker.last_heartbeat_ms = now;
  if (now - worker.last_touch_ms < options_.worker_touch_interval_ms) return;
  worker.last_touch_ms = now;
  Status status = ledger_->TouchWorker(worker.info.id);
  // last_seen in the ledger is informational; liveness is decided in memory.
  if (!status.ok())
    LogWarn("worker_touch_failed", {{"worker", worker.info.id}, {"error", status.ToString()}});
}

Status Scheduler::Heartbeat(std::string_view worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return NotFoundError("unknown worker " + std::string(worker_id) + "; say hello first");
  }
  if (!it->second.alive) {
    return FailedPreconditionError("worker " + std::string(worker_id) +
                                   " was declared dead; say hello again");
  }
  TouchWorker(it->second, clock_->NowMs());
  return OkStatus();
}

Status Scheduler::RemoveWorker(std::string_view worker_id, std::string_view reason) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return NotFoundError("unknown worker " + std::string(worker_id));
  std::vector<std::pair<TaskId, std::string>> leases;
  for (TaskId id : it->second.leases) {
    leases.emplace_back(id, "worker " + std::string(worker_id) + " left: " + std::string(reason));
  }
  RETURN_IF_ERROR(ExpireLeases(leases, nullptr));
  RETURN_IF_ERROR(ledger_->SetWorkerState(worker_id, WorkerState::kGone, reason));
  workers_.erase(it);
  return OkStatus();
}

StatusOr<std::vector<Assignment>> Scheduler::AssignWork(std::string_view worker_id) {
  ASSIGN_OR_RETURN(auto per_worker, AssignWorkBatch({std::string(worker_id)}));
  return std::move(per_worker.front());
}

void Scheduler::PickTasks(const Worker& worker, std::set<TaskId>& taken,
                          std::vector<TaskId>* picks) {
  // Oldest ready task first across the worker's roles (ids follow plan order).
  int free = worker.info.slots - static_cast<int>(worker.leases.size());
  std::vector<std::pair<std::set<TaskId>::iterator, std::set<TaskId>::iterator>> cursors;
  for (const std::string& role : worker.info.roles) {
    auto queue = ready_.find(role);
    if (queue != ready_.end() && !queue->second.empty()) {
      cursors.emplace_back(queue->second.begin(), queue->second.end());
    }
  }
  int picked = 0;
  while (picked < free) {
    auto best = cursors.end();
    for (auto c = cursors.begin(); c != cursors.end(); ++c) {
      while (c->first != c->second && taken.count(*c->first) > 0) ++c->first;
      if (c->first != c->second && (best == cursors.end() || *c->first < *best->first)) best = c;
    }
    if (best == cursors.end()) break;
    taken.insert(*best->first);
    picks->push_back(*best->first);
    ++best->first;
    ++picked;
  }
}

StatusOr<std::vector<StatusOr<std::vector<Assignment>>>> Scheduler::AssignWorkBatch(
    const std::vector<std::string>& worker_ids) {
  int64_t now = clock_->NowMs();
  std::vector<StatusOr<std::vector<Assignment>>> out;
  out.reserve(worker_ids.size());
  if (run_state_ == RunState::kRunning) PromoteDue(now);
  std::optional<int64_t> deadline;
  if (options_.lease_timeout_ms > 0) deadline = now + options_.lease_timeout_ms;

  std::vector<LeaseRequest> requests;
  std::vector<size_t> requester;  // index into worker_ids for each request
  std::set<TaskId> taken;
  std::set<std::string_view> served;
  for (size_t w = 0; w < worker_ids.size(); ++w) {
    if (!served.insert(worker_ids[w]).second) {
      out.push_back(std::vector<Assignment>());  // asked twice: its free slots are filled once
      continue;
    }
    auto it = workers_.find(worker_ids[w]);
    if (it == workers_.end()) {
      out.push_back(NotFoundError("unknown worker " + worker_ids[w] + "; say hello first"));
      continue;
    }
    if (!it->second.alive) {
      out.push_back(FailedPreconditionError("worker " + worker_ids[w] +
                                            " was declared dead; say hello again"));
      continue;
    }
    if (options_.assign_counts_as_heartbeat) TouchWorker(it->second, now);
    out.push_back(std::vector<Assignment>());
    if (run_state_ != RunState::kRunning) continue;
    std::vector<TaskId> picks;
    PickTasks(it->second, taken, &picks);
    for (TaskId id : picks) {
      requests.push_back({id, it->second.info.id, deadline});
      requester.push_back(w);
    }
  }
  if (requests.empty()) return out;

  ASSIGN_OR_RETURN(std::vector<StatusOr<LeaseGrant>> grants, ledger_->LeaseBatch(requests));
  bool resync = false;
  for (size_t i = 0; i < grants.size(); ++i) {
    auto task = tasks_.find(requests[i].task_id);
    if (!grants[i].ok() || task == tasks_.end()) {
      LogWarn("lease_refused",
              {{"task", requests[i].task_id}, {"error", grants[i].status().ToString()}});
      resync = true;
      continue;
    }
    Worker& worker = workers_.at(requests[i].worker_id);
    TaskEntry& entry = task->second;
    Unqueue(entry);
    entry.record.state = TaskState::kLeased;
    entry.record.attempt = grants[i]->attempt;
    entry.record.lease_worker = worker.info.id;
    entry.record.lease_deadline_ms = grants[i]->deadline_ms;
    SetExpiry(entry, grants[i]->deadline_ms.value_or(0));
    worker.leases.insert(entry.record.id);
    const TaskRecord& r = entry.record;
    out[requester[i]]->push_back(Assignment{r.id, r.attempt, r.task_key, r.stage, r.case_id,
                                            r.round, r.role, r.params_json, r.lease_deadline_ms});
  }
  if (resync) RETURN_IF_ERROR(Reload());
  return out;
}

StatusOr<TickReport> Scheduler::Tick() {
  int64_t now = clock_->NowMs();
  TickReport report;
  std::vector<std::pair<TaskId, std::string>> expire;
  std::set<TaskId> seen;
  for (auto& [id, worker] : workers_) {
    if (!worker.alive || now - worker.last_heartbeat_ms <= DeadAfterMs()) continue;
    worker.alive = false;
    report.dead_workers.push_back(id);
    std::string reason =
        "worker " + id + " missed " + std::to_string(options_.missed_heartbeats) + " heartbeats";
    LogWarn("worker_dead", {{"worker", id}, {"leases", worker.leases.size()}});
    RETURN_IF_ERROR(ledger_->SetWorkerState(id, WorkerState::kDead, reason));
    for (TaskId task : worker.leases) {
      if (seen.insert(task).second) expire.emplace_back(task, reason);
    }
  }
  for (auto e = expiries_.begin(); e != expiries_.end() && e->first <= now; ++e) {
    TaskId task = e->second;
    if (!seen.insert(task).second) continue;
    const TaskEntry& entry = tasks_.at(task);
    std::string worker = entry.record.lease_worker.value_or("?");
    expire.emplace_back(task, entry.orphan
                                  ? "worker " + worker + " did not come back after a restart"
                                  : "lease deadline passed on worker " + worker);
  }
  RETURN_IF_ERROR(ExpireLeases(expire, &report));
  PromoteDue(now);
  return report;
}

Status Scheduler::ExpireLeases(const std::vector<std::pair<TaskId, std::string>>& leases,
                               TickReport* report) {
  std::vector<LeaseExpiry> expiries;
  std::vector<TaskId> ids;
  for (const auto& [task, reason] : leases) {
    auto it = tasks_.find(task);
    if (it == tasks_.end() || it->second.record.state != TaskState::kLeased) continue;
    const TaskRecord& r = it->second.record;
    expiries.push_back({task, r.attempt, reason, options_.retry.DelayMs(task, r.attempt)});
    ids.push_back(task);
    if (report != nullptr)
      report->expired_leases.push_back({task, r.attempt, r.lease_worker.value_or("")});
    LogWarn("lease_expired", {{"task", task}, {"attempt", r.attempt}, {"reason", reason}});
  }
  if (expiries.empty()) return OkStatus();
  ASSIGN_OR_RETURN(FailResult result, ledger_->ExpireLeases(expiries));
  return ApplyFailResult(ids, result);
}

std::optional<int64_t> Scheduler::NextWakeupMs() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  if (!delayed_.empty()) next = std::min(next, delayed_.begin()->first);
  if (!expiries_.empty()) next = std::min(next, expiries_.begin()->first);
  for (const auto& [id, worker] : workers_) {
    if (worker.alive) next = std::min(next, worker.last_heartbeat_ms + DeadAfterMs() + 1);
  }
  if (next == std::numeric_limits<int64_t>::max()) return std::nullopt;
  return next;
}

std::vector<WorkerView> Scheduler::Workers() const {
  std::vector<WorkerView> views;
  for (const auto& [id, worker] : workers_) {
    views.push_back(WorkerView{id, worker.info.roles, worker.info.slots, worker.alive,
                               worker.last_heartbeat_ms,
                               std::vector<TaskId>(worker.leases.begin(), worker.leases.end())});
  }
  return views;
}

}  // namespace clisc
