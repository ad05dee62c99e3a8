#include "coordinator/status_render.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

namespace clisc {

using nlohmann::json;

namespace {

// ---- Reading the document without trusting it -------------------------------------------------

const json* Field(const json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::optional<double> Number(const json& j, const std::string& key) {
  const json* f = Field(j, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return f->get<double>();
}

int64_t Int(const json& j, const std::string& key) {
  const json* f = Field(j, key);
  if (f == nullptr || !f->is_number()) return 0;
  if (f->is_number_float()) return static_cast<int64_t>(f->get<double>());
  if (f->is_number_unsigned()) return static_cast<int64_t>(f->get<uint64_t>());
  return f->get<int64_t>();
}

std::string Text(const json& j, const std::string& key, const std::string& fallback = "") {
  const json* f = Field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : fallback;
}

bool Bool(const json& j, const std::string& key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

const json& Items(const json& j, const std::string& key) {
  static const json kEmpty = json::array();
  const json* f = Field(j, key);
  return f != nullptr && f->is_array() ? *f : kEmpty;
}

const json& Object(const json& j, const std::string& key) {
  static const json kEmpty = json::object();
  const json* f = Field(j, key);
  return f != nullptr && f->is_object() ? *f : kEmpty;
}

// ---- Text ---------------------------------------------------------------------------------------

std::string PadRight(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string PadLeft(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// Long messages and task lists must not wrap the table.
std::string Fit(std::string line, int width) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
  if (width > 3 && line.size() > static_cast<size_t>(width)) {
    line.resize(static_cast<size_t>(width) - 3);
    line += "...";
  }
  return line;
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

std::string AgeMs(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 10'000) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1fs", static_cast<double>(ms) / 1000.0);
    return buf;
  }
  return FormatDurationSeconds(static_cast<double>(ms) / 1000.0);
}

std::string Bar(double fraction, int width) {
  fraction = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
  // Full only when everything is done: 199/200 must not look finished.
  int filled = fraction >= 1.0 ? width : std::min(width - 1, static_cast<int>(fraction * width));
  return "[" + std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(width - filled), '.') + "]";
}

void RenderRun(const json& doc, std::ostringstream& out) {
  const json& run = Object(doc, "run");
  int64_t age_ms = Int(doc, "generated_ms") - Int(run, "created_ms");
  out << "run " << Text(run, "name", "?") << "  " << Text(run, "state", "?") << "  age "
      << FormatDurationSeconds(static_cast<double>(age_ms) / 1000.0);
  std::string reason = Text(run, "state_reason");
  if (!reason.empty()) out << "  (" << OneLine(reason) << ")";
  out << "\n";
  const json& totals = Object(doc, "totals");
  int64_t total = Int(totals, "total");
  int64_t done = total - Int(totals, "pending") - Int(totals, "leased");
  const json& cases = Object(doc, "cases");
  out << "tasks " << done << "/" << total << " done, " << Int(totals, "leased") << " running, "
      << Int(totals, "failed") << " failed, " << Int(totals, "blocked") << " blocked, "
      << Int(totals, "cancelled") << " cancelled; cases " << Int(cases, "active") << " active, "
      << Int(cases, "excluded") << " excluded\n";
}

void RenderStages(const json& doc, int width, std::ostringstream& out) {
  const json& stages = Items(doc, "stages");
  if (stages.empty()) {
    out << "stages: none planned\n";
    return;
  }
  struct Row {
    std::string name;
    double fraction = 0;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows;
  size_t name_width = 0;
  std::vector<size_t> cell_widths;
  for (const json& s : stages) {
    Row row;
    row.name = Text(s, "stage", "?");
    row.fraction = Number(s, "done_fraction").value_or(0);
    int64_t total = Int(s, "total");
    int64_t done = total - Int(s, "pending") - Int(s, "leased");
    std::optional<double> eta = Number(s, "eta_s");
    row.cells = {std::to_string(done) + "/" + std::to_string(total),
                 std::to_string(Int(s, "leased")) + " running",
                 std::to_string(Int(s, "failed")) + " failed",
                 std::to_string(Int(s, "blocked")) + " blocked",
                 "eta " + (eta ? FormatDurationSeconds(*eta) : std::string("-"))};
    name_width = std::max(name_width, row.name.size());
    cell_widths.resize(row.cells.size(), 0);
    for (size_t i = 0; i < row.cells.size(); ++i) {
      cell_widths[i] = std::max(cell_widths[i], row.cells[i].size());
    }
    rows.push_back(std::move(row));
  }
  size_t cells_width = 0;
  for (size_t w : cell_widths) cells_width += w + 2;
  // Indent, name, gaps and brackets around the bar take the rest of the line.
  int bar_width = width - static_cast<int>(2 + name_width + 2 + 2 + 2 + cells_width);
  bar_width = std::clamp(bar_width, 10, 50);
  out << "stages:\n";
  for (const Row& row : rows) {
    std::string line = "  " + PadRight(row.name, name_width) + "  " + Bar(row.fraction, bar_width);
    for (size_t i = 0; i < row.cells.size(); ++i) {
      // Counts align right, so the numbers line up; the ETA aligns left.
      line +=
          "  " + (i + 1 == row.cells.size() ? row.cells[i] : PadLeft(row.cells[i], cell_widths[i]));
    }
    out << Fit(line, std::max(width, 60)) << "\n";
  }
}

std::string RunningCell(const json& worker) {
  std::string cell;
  for (const json& task : Items(worker, "running")) {
    if (!cell.empty()) cell += "; ";
    cell += Text(task, "task_key", "task " + std::to_string(Int(task, "task_id")));
    if (std::optional<double> fraction = Number(task, "fraction")) {
      cell += " " + std::to_string(static_cast<int>(std::lround(*fraction * 100))) + "%";
    }
    std::string message = Text(task, "message");
    if (!message.empty()) cell += " " + OneLine(message);
  }
  return cell.empty() ? "-" : cell;
}

void RenderWorkers(const json& doc, int width, std::ostringstream& out) {
  const json& workers = Items(doc, "workers");
  if (workers.empty()) {
    out << "workers: none\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"id", "device", "roles", "alive", "heartbeat", "task"}};
  int alive = 0;
  for (const json& w : workers) {
    std::string roles;
    for (const json& role : Items(w, "roles")) {
      if (!role.is_string()) continue;
      roles += (roles.empty() ? "" : ",") + role.get<std::string>();
    }
    bool is_alive = Bool(w, "alive");
    alive += is_alive ? 1 : 0;
    std::string state = Text(w, "state");
    rows.push_back({Text(w, "id", "?"), Text(w, "device", "-"), roles.empty() ? "-" : roles,
                    is_alive ? "yes" : (state.empty() ? "no" : "no (" + state + ")"),
                    AgeMs(Int(w, "age_ms")) + " ago", RunningCell(w)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  out << "workers: " << alive << " alive of " << workers.size() << "\n";
  for (const auto& row : rows) {
    std::string line = " ";
    for (size_t i = 0; i < row.size(); ++i) {
      line += " " + (i + 1 == row.size() ? row[i] : PadRight(row[i], widths[i]) + " ");
    }
    out << Fit(line, std::max(width, 60)) << "\n";
  }
}

void RenderFailures(const json& doc, int width, std::ostringstream& out) {
  const json& failures = Items(doc, "failures");
  int64_t total = std::max<int64_t>(Int(doc, "failures_total"), failures.size());
  if (total == 0) return;
  out << "failures: " << total << "\n";
  constexpr size_t kShown = 10;
  size_t shown = 0;
  for (const json& f : failures) {
    if (shown == kShown) break;
    std::string where = Text(f, "task_key", "task " + std::to_string(Int(f, "task_id")));
    std::string line = "  " + where + "  " + Text(f, "state", "?") + "  " +
                       Text(f, "error_code", "?") + ": " + OneLine(Text(f, "error_message"));
    out << Fit(line, std::max(width, 60)) << "\n";
    ++shown;
  }
  if (total > static_cast<int64_t>(shown)) {
    out << "  ... and " << total - static_cast<int64_t>(shown) << " more\n";
  }
}

void RenderCoordinator(const json& doc, std::ostringstream& out) {
  const json* coordinator = Field(doc, "coordinator");
  if (coordinator == nullptr || !coordinator->is_object()) return;
  uint64_t dropped = 0;
  for (const auto& [reason, count] : Object(*coordinator, "frames_dropped").items()) {
    if (count.is_number()) dropped += count.get<uint64_t>();
  }
  out << "coordinator " << Text(*coordinator, "coordinator_id", "?") << "  pid "
      << Int(*coordinator, "pid") << "  up "
      << FormatDurationSeconds(static_cast<double>(Int(*coordinator, "uptime_ms")) / 1000.0)
      << "  zmq " << Text(*coordinator, "endpoint", "-") << "  redis "
      << Text(*coordinator, "redis_state", "?") << "  frames dropped " << dropped << "\n";
}

void RenderSource(const json& doc, std::ostringstream& out) {
  std::string source = Text(doc, "source", "?");
  const json& reader = Object(doc, "reader");
  std::string address = Text(reader, "address");
  if (source == "redis") {
    out << "from redis" << (address.empty() ? "" : " " + address);
    if (Field(reader, "mirrored_ms") != nullptr && Field(reader, "read_ms") != nullptr) {
      char buf[64];
      double age_s =
          static_cast<double>(Int(reader, "read_ms") - Int(reader, "mirrored_ms")) / 1000.0;
      std::snprintf(buf, sizeof(buf), " (mirrored %.1f s ago)", std::max(age_s, 0.0));
      out << buf;
    }
    out << "\n";
  } else if (source == "coordinator") {
    if (address.empty()) address = Text(Object(doc, "coordinator"), "http_endpoint");
    out << "from coordinator" << (address.empty() ? "" : " " + address) << "\n";
  } else if (source == "ledger") {
    out << "from ledger file" << (address.empty() ? "" : " " + address)
        << " (no live worker view)\n";
  } else {
    out << "from " << source << "\n";
  }
}

// ---- Prometheus -------------------------------------------------------------------------------

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Free-form counter and gauge names become metric name parts: [a-zA-Z0-9_] only.
std::string MetricNamePart(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  return out.empty() ? "_" : out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

std::string FormatValue(const json& value) {
  if (value.is_number_unsigned()) return std::to_string(value.get<uint64_t>());
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_number_float()) return FormatValue(value.get<double>());
  if (value.is_boolean()) return value.get<bool>() ? "1" : "0";
  return "NaN";
}

class Exposition {
 public:
  // Starts a metric family; a name already used is refused (its samples are dropped) so the
  // output never holds two TYPE lines for one name.
  void Family(std::string name, std::string help, std::string type) {
    bool fresh = names_.insert(name).second;
    families_.push_back({std::move(name), std::move(help), std::move(type), {}, fresh});
  }
  void Sample(const Labels& labels, const std::string& value) {
    Metric& family = families_.back();
    std::string line = family.name;
    if (!labels.empty()) {
      line += "{";
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) line += ",";
        line += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
      }
      line += "}";
    }
    family.samples.push_back(line + " " + value);
  }
  std::string Render() const {
    std::string out;
    for (const Metric& m : families_) {
      if (!m.fresh || m.samples.empty()) continue;
      out += "# HELP " + m.name + " " + EscapeHelp(m.help) + "\n";
      out += "# TYPE " + m.name + " " + m.type + "\n";
      for (const std::string& line : m.samples) out += line + "\n";
    }
    return out;
  }

 private:
  struct Metric {
    std::string name, help, type;
    std::vector<std::string> samples;
    bool fresh = true;
  };
  std::vector<Metric> families_;
  std::set<std::string> names_;
};

constexpr std::string_view kTaskStates[] = {"pending", "leased",  "succeeded",
                                            "failed",  "blocked", "cancelled"};
constexpr std::string_view kRunStates[] = {"running", "succeeded", "failed", "cancelled"};
constexpr std::string_view kWorkerStates[] = {"alive", "dead", "gone"};

void AddRunMetrics(const json& doc, Exposition& metrics) {
  std::string run = Text(Object(doc, "run"), "name");
  std::string state = Text(Object(doc, "run"), "state");
  metrics.Family("clisc_run_state", "State of the run: 1 for the current state, 0 for the others.",
                 "gauge");
  for (std::string_view s : kRunStates) {
    metrics.Sample({{"run", run}, {"state", std::string(s)}}, s == state ? "1" : "0");
  }
  metrics.Family("clisc_tasks", "Tasks of the run by stage and state.", "gauge");
  for (const json& stage : Items(doc, "stages")) {
    for (std::string_view s : kTaskStates) {
      metrics.Sample({{"run", run}, {"stage", Text(stage, "stage")}, {"state", std::string(s)}},
                     std::to_string(Int(stage, std::string(s))));
    }
  }
  metrics.Family("clisc_stage_eta_seconds",
                 "Estimated seconds until the stage's open tasks are done (when known).", "gauge");
  for (const json& stage : Items(doc, "stages")) {
    if (std::optional<double> eta = Number(stage, "eta_s")) {
      metrics.Sample({{"run", run}, {"stage", Text(stage, "stage")}}, FormatValue(*eta));
    }
  }
  metrics.Family("clisc_cases", "Cases of the run by state.", "gauge");
  const json& cases = Object(doc, "cases");
  for (std::string_view s : {"active", "excluded"}) {
    metrics.Sample({{"run", run}, {"state", std::string(s)}},
                   std::to_string(Int(cases, std::string(s))));
  }
}

void AddWorkerMetrics(const json& doc, Exposition& metrics) {
  std::map<std::string, int64_t> by_state;
  for (std::string_view s : kWorkerStates) by_state[std::string(s)] = 0;
  for (const json& w : Items(doc, "workers")) ++by_state[Text(w, "state", "unknown")];
  metrics.Family("clisc_workers", "Workers by state.", "gauge");
  for (const auto& [state, count] : by_state) {
    metrics.Sample({{"state", state}}, std::to_string(count));
  }
  metrics.Family("clisc_worker_last_heartbeat_age_seconds",
                 "Seconds since the worker's last heartbeat when the status was generated.",
                 "gauge");
  for (const json& w : Items(doc, "workers")) {
    metrics.Sample({{"worker", Text(w, "id")}},
                   FormatValue(static_cast<double>(Int(w, "age_ms")) / 1000.0));
  }
}

void AddCoordinatorMetrics(const json& doc, Exposition& metrics) {
  const json& coordinator = Object(doc, "coordinator");
  metrics.Family("clisc_frames_dropped_total", "Frames the coordinator dropped, by reason.",
                 "counter");
  for (const auto& [reason, count] : Object(coordinator, "frames_dropped").items()) {
    metrics.Sample({{"reason", reason}}, FormatValue(count));
  }
  for (const auto& [name, value] : Object(coordinator, "counters").items()) {
    std::string metric = "clisc_coordinator_" + MetricNamePart(name);
    if (metric.size() < 6 || metric.compare(metric.size() - 6, 6, "_total") != 0) {
      metric += "_total";
    }
    metrics.Family(metric, "Coordinator counter " + name + ".", "counter");
    metrics.Sample({}, FormatValue(value));
  }
  for (const auto& [name, value] : Object(coordinator, "gauges").items()) {
    metrics.Family("clisc_coordinator_" + MetricNamePart(name), "Coordinator gauge " + name + ".",
                   "gauge");
    metrics.Sample({}, FormatValue(value));
  }
}

}  // namespace

std::string FormatDurationSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string RenderStatusText(const json& doc, int width) {
  std::ostringstream out;
  RenderRun(doc, out);
  RenderStages(doc, width, out);
  RenderWorkers(doc, width, out);
  RenderFailures(doc, width, out);
  RenderCoordinator(doc, out);
  RenderSource(doc, out);
  return out.str();
}

std::string RenderPrometheus(const json& doc) {
  Exposition metrics;
  AddRunMetrics(doc, metrics);
  AddWorkerMetrics(doc, metrics);
  AddCoordinatorMetrics(doc, metrics);
  return metrics.Render();
}

}  // namespace clisc
