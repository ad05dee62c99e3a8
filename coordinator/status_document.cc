#include "coordinator/status_document.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>

namespace clisc {

using nlohmann::json;

namespace {

constexpr std::array<TaskState, 6> kTaskStates = {TaskState::kPending,   TaskState::kLeased,
                                                  TaskState::kSucceeded, TaskState::kFailed,
                                                  TaskState::kBlocked,   TaskState::kCancelled};

struct StateCounts {
  std::array<int64_t, kTaskStates.size()> by_state{};

  int64_t& operator[](TaskState s) { return by_state[static_cast<size_t>(s)]; }
  int64_t at(TaskState s) const { return by_state[static_cast<size_t>(s)]; }
  int64_t total() const {
    int64_t sum = 0;
    for (int64_t n : by_state) sum += n;
    return sum;
  }
  int64_t open() const { return at(TaskState::kPending) + at(TaskState::kLeased); }

  void AddTo(json& out) const {
    for (TaskState s : kTaskStates) out[std::string(TaskStateName(s))] = at(s);
    out["total"] = total();
  }
};

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// Free text (error messages, progress notes) may carry bytes that are not UTF-8, and
// nlohmann::json refuses to serialize those: the coordinator must not fail to serve its status
// because one worker reported a path with odd bytes. Invalid bytes become U+FFFD.
std::string Utf8Safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

json OptionalText(const std::optional<std::string>& value) {
  return value.has_value() ? json(Utf8Safe(*value)) : json(nullptr);
}

json RunJson(const RunRecord& run) {
  return {{"name", Utf8Safe(run.name)},
          {"id", run.id},
          {"state", RunStateName(run.state)},
          {"state_reason", Utf8Safe(run.state_reason)},
          {"created_ms", run.created_ms},
          {"updated_ms", run.updated_ms},
          {"config_fingerprint", Utf8Safe(run.config_fingerprint)}};
}

// Throughput since the stage's first success; it needs two finishes to span any time.
std::optional<double> RatePerSecond(const StageTiming& timing) {
  if (timing.succeeded < 2 || !timing.first_finished_ms || !timing.last_finished_ms) {
    return std::nullopt;
  }
  int64_t span_ms = *timing.last_finished_ms - *timing.first_finished_ms;
  if (span_ms <= 0) return std::nullopt;
  return static_cast<double>(timing.succeeded) * 1000.0 / static_cast<double>(span_ms);
}

json StageJson(const std::string& stage, const StateCounts& counts,
               const std::optional<StageTiming>& timing) {
  json out = {{"stage", Utf8Safe(stage)}};
  counts.AddTo(out);
  int64_t total = counts.total();
  int64_t open = counts.open();
  out["done_fraction"] =
      total == 0 ? 1.0 : static_cast<double>(total - open) / static_cast<double>(total);
  std::optional<double> rate = timing ? RatePerSecond(*timing) : std::nullopt;
  out["rate_per_s"] = rate ? json(*rate) : json(nullptr);
  if (open == 0) {
    out["eta_s"] = 0.0;
  } else if (rate) {
    out["eta_s"] = static_cast<double>(open) / *rate;
  } else {
    out["eta_s"] = nullptr;
  }
  return out;
}

// Totals and stages from two GROUP BY queries; stages keep plan order.
Status AddTaskCounts(Ledger& ledger, RunId run, json& doc) {
  ASSIGN_OR_RETURN(std::vector<StageStateCount> counts, ledger.CountByStageAndState(run));
  ASSIGN_OR_RETURN(std::vector<StageTiming> timings, ledger.StageTimings(run));
  std::vector<std::string> order;
  std::map<std::string, StateCounts> by_stage;
  std::map<std::string, StageTiming> timing_by_stage;
  for (const StageTiming& t : timings) {
    order.push_back(t.stage);
    timing_by_stage[t.stage] = t;
  }
  StateCounts totals;
  for (const StageStateCount& c : counts) {
    // The two queries are separate reads: a stage planned in between is shown last.
    if (!timing_by_stage.count(c.stage) && !by_stage.count(c.stage)) order.push_back(c.stage);
    by_stage[c.stage][c.state] += c.count;
    totals[c.state] += c.count;
  }
  json stages = json::array();
  for (const std::string& stage : order) {
    auto timing = timing_by_stage.find(stage);
    stages.push_back(StageJson(stage, by_stage[stage],
                               timing == timing_by_stage.end()
                                   ? std::nullopt
                                   : std::optional<StageTiming>(timing->second)));
  }
  json totals_json = json::object();
  totals.AddTo(totals_json);
  doc["totals"] = std::move(totals_json);
  doc["stages"] = std::move(stages);
  return OkStatus();
}

json RunningJson(const TaskRecord& task, const LiveTaskProgress* progress) {
  bool current = progress != nullptr && progress->attempt == task.attempt;
  return {{"task_id", task.id},
          {"task_key", Utf8Safe(task.task_key)},
          {"stage", Utf8Safe(task.stage)},
          {"case_id", OptionalText(task.case_id)},
          {"attempt", task.attempt},
          {"fraction", current ? json(progress->fraction) : json(nullptr)},
          {"message", current ? json(Utf8Safe(progress->message)) : json(nullptr)}};
}

json WorkerJson(const std::string& id, const std::vector<std::string>& roles,
                const WorkerRecord* record, int slots, std::string_view state, bool alive,
                int64_t last_heartbeat_ms, int64_t now_ms, json running) {
  json role_list = json::array();
  for (const std::string& role : roles) role_list.push_back(Utf8Safe(role));
  return {{"id", Utf8Safe(id)},
          {"roles", std::move(role_list)},
          {"device", record != nullptr ? Utf8Safe(record->device) : ""},
          {"slots", slots},
          {"hostname", record != nullptr ? Utf8Safe(record->hostname) : ""},
          {"state", state},
          {"alive", alive},
          {"last_heartbeat_ms", last_heartbeat_ms},
          {"age_ms", std::max<int64_t>(0, now_ms - last_heartbeat_ms)},
          {"running", std::move(running)}};
}

// The scheduler's workers, with device and host from the ledger and one task lookup per lease.
StatusOr<json> LiveWorkers(Ledger& ledger, const LiveView& live, int64_t now_ms) {
  ASSIGN_OR_RETURN(std::vector<WorkerRecord> records, ledger.ListWorkers());
  std::map<std::string, const WorkerRecord*> by_id;
  for (const WorkerRecord& r : records) by_id[r.id] = &r;
  json workers = json::array();
  for (const WorkerView& w : live.workers) {
    auto found = by_id.find(w.id);
    const WorkerRecord* record = found == by_id.end() ? nullptr : found->second;
    std::vector<TaskId> leases = w.leases;
    std::sort(leases.begin(), leases.end());
    json running = json::array();
    for (TaskId id : leases) {
      ASSIGN_OR_RETURN(TaskRecord task, ledger.GetTask(id));
      auto progress = live.progress.find(id);
      running.push_back(
          RunningJson(task, progress == live.progress.end() ? nullptr : &progress->second));
    }
    // A worker the scheduler declared dead may be "gone" (left on purpose) in the ledger.
    std::string_view state = w.alive ? WorkerStateName(WorkerState::kAlive)
                             : record != nullptr && record->state == WorkerState::kGone
                                 ? WorkerStateName(WorkerState::kGone)
                                 : WorkerStateName(WorkerState::kDead);
    workers.push_back(WorkerJson(w.id, w.roles, record, w.slots, state, w.alive,
                                 w.last_heartbeat_ms, now_ms, std::move(running)));
  }
  return workers;
}

// Every worker the ledger knows, with last_seen as the heartbeat (the ledger refreshes it only
// every few heartbeats) and the run's leased tasks as what they run.
StatusOr<json> LedgerWorkers(Ledger& ledger, RunId run, int64_t now_ms) {
  ASSIGN_OR_RETURN(std::vector<WorkerRecord> records, ledger.ListWorkers());
  ASSIGN_OR_RETURN(std::vector<TaskRecord> tasks, ledger.ListTasks(run));
  std::map<std::string, json> running;
  for (const TaskRecord& t : tasks) {
    if (t.state != TaskState::kLeased || !t.lease_worker.has_value()) continue;
    json& list = running[*t.lease_worker];
    if (list.is_null()) list = json::array();
    list.push_back(RunningJson(t, nullptr));
  }
  json workers = json::array();
  for (const WorkerRecord& r : records) {
    auto mine = running.find(r.id);
    workers.push_back(WorkerJson(r.id, r.roles, &r, r.slots, WorkerStateName(r.state),
                                 r.state == WorkerState::kAlive, r.last_seen_ms, now_ms,
                                 mine == running.end() ? json::array() : mine->second));
  }
  return workers;
}

StatusOr<json> FailuresJson(Ledger& ledger, RunId run, size_t* total) {
  ASSIGN_OR_RETURN(std::vector<FailureRecord> failures, ledger.ListFailures(run));
  *total = failures.size();
  json out = json::array();
  for (size_t i = 0; i < failures.size() && i < kMaxListedFailures; ++i) {
    const FailureRecord& f = failures[i];
    out.push_back({{"task_id", f.task_id},
                   {"task_key", Utf8Safe(f.task_key)},
                   {"stage", Utf8Safe(f.stage)},
                   {"case_id", OptionalText(f.case_id)},
                   {"state", TaskStateName(f.state)},
                   {"error_code", Utf8Safe(f.error_code)},
                   {"error_message", Utf8Safe(f.error_message)}});
  }
  return out;
}

json SchedulerJson(const SchedulerSnapshot& s) {
  return {{"open_tasks", s.open_tasks}, {"ready", s.ready},   {"delayed", s.delayed},
          {"waiting", s.waiting},       {"leased", s.leased}, {"workers_alive", s.workers_alive}};
}

json CoordinatorJson(const LiveCoordinatorInfo& c, int64_t now_ms) {
  json dropped = json::object();
  for (const auto& [reason, count] : c.frames_dropped) dropped[Utf8Safe(reason)] = count;
  json counters = json::object();
  for (const auto& [name, value] : c.counters) counters[Utf8Safe(name)] = value;
  json gauges = json::object();
  for (const auto& [name, value] : c.gauges) gauges[Utf8Safe(name)] = value;
  return {{"coordinator_id", Utf8Safe(c.coordinator_id)},
          {"pid", c.pid},
          {"started_ms", c.started_ms},
          {"uptime_ms", c.started_ms > 0 ? std::max<int64_t>(0, now_ms - c.started_ms) : 0},
          {"endpoint", Utf8Safe(c.endpoint)},
          {"http_endpoint", Utf8Safe(c.http_endpoint)},
          {"redis_state", Utf8Safe(c.redis_state)},
          {"frames_dropped", std::move(dropped)},
          {"counters", std::move(counters)},
          {"gauges", std::move(gauges)}};
}

}  // namespace

StatusOr<json> BuildStatusDocument(Ledger& ledger, RunId run, const LiveView* live,
                                   int64_t now_ms) {
  ASSIGN_OR_RETURN(RunRecord record, ledger.GetRun(run));
  json doc = {{"schema", kStatusSchemaVersion},
              {"generated_ms", now_ms},
              {"source", live != nullptr ? "coordinator" : "ledger"},
              {"run", RunJson(record)}};
  RETURN_IF_ERROR(AddTaskCounts(ledger, run, doc));
  ASSIGN_OR_RETURN(RunHealth health, ledger.GetRunHealth(run));
  doc["cases"] = {{"active", health.active_cases}, {"excluded", health.excluded_cases}};
  if (live != nullptr) {
    ASSIGN_OR_RETURN(doc["workers"], LiveWorkers(ledger, *live, now_ms));
  } else {
    ASSIGN_OR_RETURN(doc["workers"], LedgerWorkers(ledger, run, now_ms));
  }
  size_t failures_total = 0;
  ASSIGN_OR_RETURN(doc["failures"], FailuresJson(ledger, run, &failures_total));
  doc["failures_total"] = failures_total;
  if (live != nullptr) {
    doc["scheduler"] = SchedulerJson(live->scheduler);
    doc["coordinator"] = CoordinatorJson(live->coordinator, now_ms);
  }
  return doc;
}

}  // namespace clisc
