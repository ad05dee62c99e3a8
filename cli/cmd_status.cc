// `clisc status [--json] [--watch [SECONDS]] [--run NAME] [--redis URL] [--coordinator HOST:PORT]
// [--ledger FILE]`: the state of a run, from the first source that answers: the Redis mirror
// (from any host, without touching the coordinator), the coordinator's HTTP endpoint, or the
// ledger file itself (read-only, without the live worker view).
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/status.h"
#include "coordinator/clock.h"
#include "coordinator/http_get.h"
#include "coordinator/ledger.h"
#include "coordinator/redis_status_reader.h"
#include "coordinator/status_document.h"
#include "coordinator/status_render.h"

namespace clisc::cli {
namespace {

using nlohmann::json;

constexpr auto kSourceTimeout = std::chrono::milliseconds(2000);
constexpr char kDefaultCoordinator[] = "127.0.0.1:8470";
constexpr char kDefaultWatchSeconds[] = "2";

volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// Credentials in a Redis URL must not end up in terminals and logs.
std::string RedactUrl(const std::string& url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t at = url.find('@', start);
  size_t slash = url.find('/', start);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  return url.substr(0, start) + "***@" + url.substr(at + 1);
}

StatusOr<json> ParseDocument(const std::string& text, const std::string& where) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return DataLossError(where + " sent something that is not a JSON status document");
  }
  return doc;
}

int64_t NowMs() { return RealClock().NowMs(); }

// doc[outer][inner] (or doc[outer]) when it is a string; "?" otherwise.
std::string TextAt(const json& doc, const std::string& outer, const std::string& inner = "") {
  auto it = doc.find(outer);
  if (it == doc.end()) return "?";
  if (!inner.empty()) {
    if (!it->is_object()) return "?";
    auto nested = it->find(inner);
    if (nested == it->end()) return "?";
    it = nested;
  }
  return it->is_string() ? it->get<std::string>() : "?";
}

struct SourceOptions {
  std::string run_name;
  std::string redis_url;
  std::string redis_prefix;
  std::string coordinator;
  std::string ledger_path;
};

// The sources in their order, asked afresh for every document; the ledger stays open between
// documents in --watch mode.
class StatusSources {
 public:
  explicit StatusSources(SourceOptions options) : options_(std::move(options)) {}

  // The first document any source gives. `tried` says, per source asked before it (or every
  // source, on failure), why it gave none.
  StatusOr<json> Fetch(std::vector<std::string>* tried) {
    tried->clear();
    if (!options_.redis_url.empty()) {
      StatusOr<json> doc = FromRedis();
      if (doc.ok()) return doc;
      tried->push_back("redis " + RedactUrl(options_.redis_url) + ": " + doc.status().message());
    }
    {
      StatusOr<json> doc = FromCoordinator();
      if (doc.ok()) return doc;
      tried->push_back("coordinator " + options_.coordinator + ": " + doc.status().message());
    }
    if (!options_.ledger_path.empty()) {
      StatusOr<json> doc = FromLedger();
      if (doc.ok()) return doc;
      tried->push_back("ledger " + options_.ledger_path + ": " + doc.status().message());
    } else {
      tried->push_back("ledger: no --ledger FILE given");
    }
    return UnavailableError("no status source answered");
  }

 private:
  StatusOr<json> FromRedis() {
    ASSIGN_OR_RETURN(MirroredStatus mirrored,
                     ReadMirroredStatus(options_.redis_url, options_.run_name,
                                        options_.redis_prefix, kSourceTimeout));
    ASSIGN_OR_RETURN(json doc, ParseDocument(mirrored.status_json, "redis"));
    doc["source"] = "redis";
    doc["reader"] = {{"address", RedactUrl(options_.redis_url)}, {"read_ms", NowMs()}};
    if (mirrored.mirrored_ms > 0) doc["reader"]["mirrored_ms"] = mirrored.mirrored_ms;
    return doc;
  }

  StatusOr<json> FromCoordinator() {
    ASSIGN_OR_RETURN(std::string body,
                     HttpGet(options_.coordinator, "/api/status", kSourceTimeout));
    ASSIGN_OR_RETURN(json doc, ParseDocument(body, "the coordinator"));
    if (!options_.run_name.empty()) {
      std::string served = TextAt(doc, "run", "name");
      if (served != options_.run_name) {
        return NotFoundError("serves run " + served + ", not " + options_.run_name);
      }
    }
    doc["reader"] = {{"address", options_.coordinator}, {"read_ms", NowMs()}};
    return doc;
  }

  StatusOr<json> FromLedger() {
    if (ledger_ == nullptr) {
      LedgerOptions options;
      options.read_only = true;
      ASSIGN_OR_RETURN(ledger_, Ledger::Open(options_.ledger_path, &clock_, options));
    }
    ASSIGN_OR_RETURN(RunId run, FindRun());
    ASSIGN_OR_RETURN(json doc, BuildStatusDocument(*ledger_, run, nullptr, clock_.NowMs()));
    doc["reader"] = {{"address", options_.ledger_path}, {"read_ms", clock_.NowMs()}};
    return doc;
  }

  // The named run, or the current one: the running run changed last, else the run changed last.
  StatusOr<RunId> FindRun() {
    if (!options_.run_name.empty()) {
      ASSIGN_OR_RETURN(std::optional<RunId> id, ledger_->FindRun(options_.run_name));
      if (!id.has_value()) return NotFoundError("no run named " + options_.run_name);
      return *id;
    }
    // Runs are numbered from 1 and never deleted.
    std::optional<RunRecord> best;
    for (RunId id = 1;; ++id) {
      StatusOr<RunRecord> run = ledger_->GetRun(id);
      if (!run.ok()) {
        if (run.status().code() != StatusCode::kNotFound) return run.status();
        break;
      }
      auto rank = [](const RunRecord& r) {
        return std::make_pair(r.state == RunState::kRunning, r.updated_ms);
      };
      if (!best.has_value() || rank(*run) >= rank(*best)) best = *run;
    }
    if (!best.has_value()) return NotFoundError("the ledger holds no run");
    return best->id;
  }

  SourceOptions options_;
  RealClock clock_;
  std::unique_ptr<Ledger> ledger_;
};

std::string SourceNote(const json& doc, const std::vector<std::string>& tried) {
  std::string source = TextAt(doc, "source");
  std::string address = TextAt(doc, "reader", "address");
  std::string note = "clisc status: from " + source + (address == "?" ? "" : " " + address);
  for (const std::string& why : tried) note += "; " + why;
  return note;
}

int TerminalWidth() {
  winsize size{};
  if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 &&
      size.ws_col > 0) {
    return size.ws_col;
  }
  if (const char* columns = std::getenv("COLUMNS")) {
    int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 100;
}

// --watch takes an optional value; ArgParser options always take one, so supply the default.
std::vector<std::string> ExpandWatch(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    out.push_back(args[i]);
    if (args[i] != "--watch") continue;
    bool has_value = i + 1 < args.size() && !args[i + 1].empty() && args[i + 1][0] != '-';
    if (!has_value) out.push_back(kDefaultWatchSeconds);
  }
  return out;
}

void PrintDocument(const json& doc, bool as_json, bool watching, bool clear) {
  if (as_json) {
    std::cout << (watching ? doc.dump(-1, ' ', false, json::error_handler_t::replace)
                           : doc.dump(2, ' ', false, json::error_handler_t::replace))
              << "\n";
  } else {
    if (clear) std::cout << "\033[H\033[2J";
    std::cout << RenderStatusText(doc, TerminalWidth());
  }
  std::cout.flush();
}

std::string TriedList(const std::vector<std::string>& tried) {
  std::string out = "error: no status source answered; tried:\n";
  for (const std::string& why : tried) out += "  " + why + "\n";
  return out;
}

int RunStatus(const std::vector<std::string>& args) {
  ArgParser parser(
      "status",
      "status [--json] [--watch [SECONDS]] [--run NAME] [--redis URL] [--coordinator HOST:PORT] "
      "[--ledger FILE]",
      "Show a run's progress: tasks per stage with ETA, workers and what they run, failures "
      "with their reasons.");
  parser.Flag("json", "print the status document as JSON (one line per document with --watch)")
      .Option("watch", "SECONDS",
              "redraw every SECONDS until Ctrl-C (SECONDS is optional) "
              "[default: 2]")
      .Option("run", "NAME", "the run to show [default: the current run]")
      .Option("redis", "URL",
              "read the Redis mirror first, e.g. redis://host:6379/0 "
              "[default: $CLISC_REDIS_URL]")
      .Option("redis-prefix", "PREFIX", "key prefix of the Redis mirror", "clisc")
      .Option("coordinator", "HOST:PORT", "the coordinator's HTTP status endpoint",
              kDefaultCoordinator)
      .Option("ledger", "FILE", "read this ledger file (read-only) when nothing live answers")
      .Epilog(
          "Sources, in order: Redis (with --redis or CLISC_REDIS_URL), the coordinator's\n"
          "GET /api/status, then the ledger file (with --ledger; it has no live worker view:\n"
          "heartbeats are as last recorded, progress is unknown). One line on stderr says which\n"
          "source answered and why the ones before it did not.\n"
          "Examples:\n"
          "  clisc status --watch\n"
          "  clisc status --redis redis://redis.internal:6379 --run brats-2021 --json\n"
          "  clisc status --ledger runs/brats/ledger.db\n"
          "Exit status: 0 when a source answered, 1 when none did, 2 for usage errors.\n");
  if (int rc = ParseCommandLine(parser, ExpandWatch(args)); rc >= 0) return rc;

  SourceOptions options;
  options.run_name = parser.Get("run");
  options.redis_url = parser.Get("redis");
  if (options.redis_url.empty()) {
    if (const char* env = std::getenv("CLISC_REDIS_URL")) options.redis_url = env;
  }
  options.redis_prefix = parser.Get("redis-prefix");
  options.coordinator = parser.Get("coordinator");
  options.ledger_path = parser.Get("ledger");
  if (Status valid = SplitHostPort(options.coordinator).status(); !valid.ok()) {
    std::cerr << "error: --coordinator: " << valid.message() << "\n";
    return kExitUsage;
  }
  std::optional<double> watch_seconds;
  if (parser.Has("watch")) {
    StatusOr<double> seconds = parser.GetDouble("watch");
    if (!seconds.ok() || !(*seconds >= 0.1) || *seconds > 86400) {
      std::cerr << "error: --watch expects seconds from 0.1 to 86400\n";
      return kExitUsage;
    }
    watch_seconds = *seconds;
  }
  bool as_json = parser.GetFlag("json");

  StatusSources sources(std::move(options));
  std::vector<std::string> tried;
  if (!watch_seconds.has_value()) {
    StatusOr<json> doc = sources.Fetch(&tried);
    if (!doc.ok()) {
      std::cerr << TriedList(tried);
      return kExitFailure;
    }
    std::cerr << SourceNote(*doc, tried) << "\n";
    PrintDocument(*doc, as_json, false, false);
    return kExitOk;
  }

  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  bool clear = !as_json && ::isatty(STDOUT_FILENO);
  bool answered_once = false;
  std::string last_note;
  while (g_interrupted == 0) {
    StatusOr<json> doc = sources.Fetch(&tried);
    if (doc.ok()) {
      answered_once = true;
      std::string note = SourceNote(*doc, tried);
      if (note != last_note) std::cerr << note << "\n";
      last_note = note;
      PrintDocument(*doc, as_json, true, clear);
    } else if (!answered_once) {
      std::cerr << TriedList(tried);
      return kExitFailure;
    } else {
      // A coordinator restarting is no reason to stop watching.
      last_note.clear();
      std::cerr << TriedList(tried);
    }
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(*watch_seconds * 1000));
    while (g_interrupted == 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return kExitOk;
}

}  // namespace
CLISC_REGISTER_COMMAND("status",
                       "show a run's progress, workers and failures (live or from the "
                       "ledger)",
                       RunStatus);
}  // namespace clisc::cli
