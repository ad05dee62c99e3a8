// `clisc worker --connect ADDR --roles a,b [...]`: a worker process. It registers with the
// coordinator, runs the tasks it is given in parallel slots with the named roles, and survives
// coordinator restarts; SIGTERM or SIGINT drain it (a second signal stops it at once).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/torch_exec.h"
#include "cli/worker_backends.h"
#include "common/logging.h"
#include "common/wire/curve_auth.h"
#include "version.h"
#include "workers/roles/method_roles.h"
#include "workers/runtime/role_registry.h"
#include "workers/runtime/test_roles.h"
#include "workers/runtime/worker.h"

namespace clisc::cli {
namespace {

// Written only by the signal handler (lock-free atomics), read by the worker's IO thread.
worker::StopRequests g_stop_requests;

extern "C" void OnStopSignal(int signal_number) { g_stop_requests.Request(signal_number); }

Status InstallSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal_number : {SIGTERM, SIGINT}) {
    if (sigaction(signal_number, &action, nullptr) != 0) {
      return InternalError("sigaction(" + std::to_string(signal_number) + ") failed");
    }
  }
  return OkStatus();
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    const size_t first = item.find_first_not_of(" \t");
    const size_t last = item.find_last_not_of(" \t");
    items.push_back(first == std::string::npos ? "" : item.substr(first, last - first + 1));
    start = end + 1;
  }
  return items;
}

std::string DefaultHostname() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "localhost";
  return buffer;
}

// The test roles and the method's roles, with the models this executable has.
Status RegisterRoles(worker::RoleRegistry& registry) {
  RETURN_IF_ERROR(worker::RegisterTestRoles(registry));
  return roles::RegisterMethodRoles(registry, WorkerMethodBackends());
}

int UsageError(const std::string& message) {
  std::cerr << "error: clisc worker: " << message << " (see clisc worker --help)\n";
  return kExitUsage;
}

int RunWorker(const std::vector<std::string>& args) {
  worker::RoleRegistry registry;
  if (Status registered = RegisterRoles(registry); !registered.ok()) {
    std::cerr << "error: " << registered.message() << "\n";
    return kExitFailure;
  }
  const std::string role_names = worker::JoinNames(registry.Names());

  ArgParser parser(
      "worker",
      "worker --connect ADDR --roles LIST [--device DEV] [--slots N] [--id ID] "
      "[--artifact-root DIR | --scratch DIR] [--drain-timeout-ms N] "
      "[--curve-server-key FILE --curve-key FILE] [--log-format text|json]",
      "Run a worker: register with the coordinator at ADDR, run the tasks it assigns in "
      "parallel slots with the given roles, and keep going across coordinator restarts.");
  parser
      .Option("connect", "ADDR", "the coordinator's ZeroMQ endpoint, e.g. tcp://10.0.0.5:5555",
              std::nullopt,
              /*required=*/true)
      .Option("roles", "LIST", "comma-separated roles this worker runs; known roles: " + role_names,
              std::nullopt,
              /*required=*/true)
      .Option("device", "DEV",
              "where roles compute: cpu or cuda:N; a list (cuda:0,cuda:1) trains the U-Net data "
              "parallel over those GPUs, the other roles use the first",
              "cpu")
      .Option("slots", "N", "tasks run at once, 1 to 1024", "1")
      .Option("id", "ID",
              "worker id, stable across restarts of this worker and unique in the cluster "
              "[default: <hostname>-<pid>]")
      .Option("artifact-root", "DIR",
              "the artifact store on a shared filesystem, as this node sees it; without it "
              "inputs and outputs are transferred through the coordinator")
      .Option("scratch", "DIR",
              "without a shared filesystem: where fetched inputs and outputs are kept "
              "[default: a fresh directory under $TMPDIR, removed at exit]")
      .Option("drain-timeout-ms", "N",
              "on SIGTERM/SIGINT, how long running tasks may take to finish before they are "
              "handed back to the coordinator",
              "60000")
      .Option("heartbeat-interval-ms", "N",
              "heartbeat interval until the coordinator's HelloAck supplies its own", "1000")
      .Option("heartbeat-liveness", "N",
              "missed heartbeats (intervals without any message) after which the coordinator "
              "counts as gone and the worker reconnects; also the Hello timeout",
              "3")
      .Option("curve-server-key", "FILE",
              "the coordinator's public key (.pub, or its .key of which only the public half is "
              "used); enables CurveZMQ together with --curve-key")
      .Option("curve-key", "FILE",
              "this worker's key pair (.key from clisc keygen); its public key must be on the "
              "coordinator's allow-list")
      .Option("log-format", "FORMAT", "text or json (one JSON object per line)")
      .Option("log-level", "LEVEL", "debug (task start/end lines), info, warn, error or off")
      .Epilog(
          "Signals: the first SIGTERM or SIGINT drains the worker (no new tasks; running ones\n"
          "finish and report, then it leaves); past --drain-timeout-ms or on a second signal,\n"
          "unfinished tasks are handed back as retryable failures.\n"
          "Exit status: 0 after a drain or when the coordinator ends the run, 1 when the\n"
          "coordinator refuses the worker (protocol version, key not allowed, duplicate id),\n"
          "2 for usage errors.\n"
          "Example: clisc worker --connect tcp://10.0.0.5:5555 --roles cam,sam --device cuda:0 "
          "--slots 2\n");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;

  // Before anything else: the plain binary does not know the roles that run networks.
  if (!WorkerHasTorch()) {
    if (const std::optional<std::string> role =
            FirstRoleNeedingTorch(SplitList(parser.Get("roles")), roles::RoleNeedsTorch)) {
      const Status failed = ExecTorchBinaryFor(*role);  // returns only when it could not exec
      std::cerr << "error: clisc worker: " << failed.message() << "\n";
      return kExitFailure;
    }
  }

  if (parser.Has("log-format") || parser.Has("log-level")) {
    // The flag given here overrides the global one; the other keeps its global setting.
    StatusOr<LogFormat> format = parser.Has("log-format") ? ParseLogFormat(parser.Get("log-format"))
                                                          : StatusOr<LogFormat>(CurrentLogFormat());
    StatusOr<LogLevel> level = parser.Has("log-level") ? ParseLogLevel(parser.Get("log-level"))
                                                       : StatusOr<LogLevel>(CurrentLogLevel());
    if (!format.ok()) return UsageError("--log-format: " + format.status().message());
    if (!level.ok()) return UsageError("--log-level: " + level.status().message());
    InitLogging(*level, *format);
  }

  worker::WorkerOptions options;
  options.connect = parser.Get("connect");
  if (options.connect.find("://") == std::string::npos) {
    return UsageError("--connect expects a ZeroMQ endpoint like tcp://HOST:PORT, got '" +
                      options.connect + "'");
  }

  std::set<std::string> seen;
  for (const std::string& role : SplitList(parser.Get("roles"))) {
    if (role.empty()) return UsageError("--roles has an empty entry");
    if (!registry.Has(role)) {
      return UsageError("unknown role '" + role + "' in --roles; known roles: " + role_names);
    }
    if (seen.insert(role).second) options.roles.push_back(role);
  }

  options.device = parser.Get("device");
  static const std::regex kDevice("cpu|cuda:[0-9]{1,3}(,cuda:[0-9]{1,3}){0,15}");
  if (!std::regex_match(options.device, kDevice)) {
    return UsageError("--device must be cpu, cuda:N or a list cuda:N,cuda:M, got '" +
                      options.device + "'");
  }

  auto slots = parser.GetInt("slots");
  if (!slots.ok() || *slots < 1 || *slots > 1024) {
    return UsageError("--slots must be an integer from 1 to 1024, got '" + parser.Get("slots") +
                      "'");
  }
  options.slots = static_cast<uint32_t>(*slots);

  auto drain = parser.GetInt("drain-timeout-ms");
  if (!drain.ok() || *drain < 0) {
    return UsageError("--drain-timeout-ms must be a non-negative integer");
  }
  options.drain_timeout = std::chrono::milliseconds(*drain);
  auto interval = parser.GetInt("heartbeat-interval-ms");
  if (!interval.ok() || *interval < 1 || *interval > 3'600'000) {
    return UsageError("--heartbeat-interval-ms must be an integer from 1 to 3600000");
  }
  options.heartbeat_interval = std::chrono::milliseconds(*interval);
  auto liveness = parser.GetInt("heartbeat-liveness");
  if (!liveness.ok() || *liveness < 1 || *liveness > 1000) {
    return UsageError("--heartbeat-liveness must be an integer from 1 to 1000");
  }
  options.heartbeat_liveness = static_cast<uint32_t>(*liveness);

  options.hostname = DefaultHostname();
  options.pid = static_cast<uint32_t>(getpid());
  options.worker_id =
      parser.Has("id") ? parser.Get("id") : options.hostname + "-" + std::to_string(options.pid);
  options.software_version = kVersion;

  if (parser.Has("artifact-root") && parser.Has("scratch")) {
    return UsageError(
        "--artifact-root (shared filesystem) and --scratch (transfer through the coordinator) "
        "exclude each other");
  }
  if (parser.Has("artifact-root")) options.artifact_root = parser.Get("artifact-root");
  if (parser.Has("scratch")) options.scratch_dir = parser.Get("scratch");

  if (parser.Has("curve-server-key") != parser.Has("curve-key")) {
    return UsageError("CurveZMQ needs both --curve-server-key and --curve-key");
  }
  if (parser.Has("curve-key")) {
    auto configure = CurveClientFromFiles(parser.Get("curve-server-key"), parser.Get("curve-key"));
    if (!configure.ok()) {
      std::cerr << "error: clisc worker: " << configure.status().message() << "\n";
      return kExitUsage;
    }
    options.configure_socket = std::move(*configure);
    options.curve = true;
  }

  if (Status installed = InstallSignalHandlers(); !installed.ok()) {
    std::cerr << "error: " << installed.message() << "\n";
    return kExitFailure;
  }
  options.stop_requests = &g_stop_requests;

  auto created = worker::Worker::Create(std::move(options), registry);
  if (!created.ok()) {
    std::cerr << "error: clisc worker: " << created.status().message() << "\n";
    return created.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  std::unique_ptr<worker::Worker> runtime = std::move(*created);
  const worker::WorkerSummary summary = runtime->Run();
  if (summary.exit_code != 0) std::cerr << "error: clisc worker: " << summary.reason << "\n";
  // A role that ignores cancellation must not keep the process alive after it decided to exit.
  if (!runtime->StopTasks(std::chrono::seconds(2))) {
    LogWarn("worker_exit_abandoning_tasks",
            {{"worker", runtime->id()}, {"reason", "a role did not stop within 2 s"}});
    std::fflush(nullptr);
    _exit(summary.exit_code);
  }
  return summary.exit_code;
}

}  // namespace
CLISC_REGISTER_COMMAND("worker", "run a worker that executes tasks for a coordinator", RunWorker);
}  // namespace clisc::cli
