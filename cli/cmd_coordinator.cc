// `clisc coordinator`: serves one run to the workers over ZeroMQ, with the SQLite ledger as the
// source of truth. Restarting it with the same --ledger and --run resumes the run: finished
// tasks are not redone, leases of workers that come back in the grace period are kept.
#include <signal.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/args.h"
#include "cli/command.h"
#include "common/config.h"
#include "common/logging.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/coordinator_services.h"

namespace clisc::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnStopSignal(int) { g_stop.store(true); }

void InstallStopHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

StatusOr<ResumeArtifactCheck> ParseResumeCheck(const std::string& text) {
  if (text == "none") return ResumeArtifactCheck::kNone;
  if (text == "size") return ResumeArtifactCheck::kSize;
  if (text == "checksum") return ResumeArtifactCheck::kChecksum;
  return InvalidArgumentError("--resume-check must be none, size or checksum, not '" + text + "'");
}

// Runtime settings: the config file's runtime section, then the flags given explicitly.
Status ApplyRuntimeSettings(const ArgParser& args, CoordinatorOptions& options,
                            ServiceOptions& services) {
  SchedulerOptions& scheduler = options.scheduler;
  if (args.Has("config")) {
    ASSIGN_OR_RETURN(Config config, LoadConfigFile(args.Get("config")));
    scheduler.heartbeat_interval_ms = config.GetInt("runtime.heartbeat_interval_ms");
    scheduler.missed_heartbeats = static_cast<int>(config.GetInt("runtime.heartbeat_liveness"));
    options.default_max_attempts = static_cast<int>(config.GetInt("runtime.max_attempts"));
    scheduler.retry.initial_delay_ms = config.GetInt("runtime.retry_backoff_ms");
    if (auto redis = config.GetOptionalString("runtime.redis_url")) services.redis_url = *redis;
    services.http_bind = config.GetString("runtime.http_bind");
    std::ifstream in(args.Get("config"));
    std::ostringstream text;
    text << in.rdbuf();
    options.config_yaml = text.str();
    options.config_fingerprint = config.Fingerprint("runtime");
  }
  struct IntFlag {
    const char* name;
    int64_t* target;
    int64_t min;
  };
  int64_t liveness = scheduler.missed_heartbeats;
  int64_t max_attempts = options.default_max_attempts;
  const IntFlag flags[] = {
      {"heartbeat-ms", &scheduler.heartbeat_interval_ms, 10},
      {"liveness", &liveness, 1},
      {"max-attempts", &max_attempts, 1},
      {"retry-backoff-ms", &scheduler.retry.initial_delay_ms, 0},
      {"restart-grace-ms", &scheduler.restart_grace_ms, 0},
      {"lease-timeout-ms", &scheduler.lease_timeout_ms, 0},
  };
  for (const IntFlag& flag : flags) {
    if (!args.Has(flag.name)) continue;
    ASSIGN_OR_RETURN(long long value, args.GetInt(flag.name));
    if (value < flag.min) {
      return InvalidArgumentError("--" + std::string(flag.name) + " must be >= " +
                                  std::to_string(flag.min));
    }
    *flag.target = value;
  }
  scheduler.missed_heartbeats = static_cast<int>(liveness);
  options.default_max_attempts = static_cast<int>(max_attempts);
  scheduler.retry.max_delay_ms = std::max<int64_t>(scheduler.retry.initial_delay_ms * 16, 1000);
  scheduler.retry.jitter = 0.25;
  if (args.Has("http")) services.http_bind = args.Get("http");
  if (services.http_bind == "off") services.http_bind.clear();
  if (args.Has("redis")) services.redis_url = args.Get("redis");
  return OkStatus();
}

int RunCoordinator(const std::vector<std::string>& argv) {
  ArgParser args("coordinator",
                 "coordinator --ledger FILE --run NAME [--plan FILE] [--bind ENDPOINT] [options]",
                 "Serve a run to the workers: lease tasks, record results, survive restarts.");
  args.Option("ledger", "FILE", "SQLite ledger of the run (created if missing)", std::nullopt,
              true)
      .Option("run", "NAME", "run name in the ledger (an existing run is resumed)", std::nullopt,
              true)
      .Option("bind", "ENDPOINT", "ZeroMQ endpoint the workers connect to",
              "tcp://127.0.0.1:5555")
      .Option("plan", "FILE",
              "task graph as JSON ({\"tasks\": [{\"key\", \"stage\", \"role\", \"case\", "
              "\"params\", \"deps\"}]}); planned idempotently by key")
      .Option("artifact-root", "DIR",
              "artifact store: outputs are checked here, and workers without the shared "
              "filesystem fetch and push artifacts through the coordinator")
      .Option("config", "FILE", "config file; its runtime section sets the defaults below")
      .Option("heartbeat-ms", "MS", "heartbeat interval both ways (default 1000)")
      .Option("liveness", "N", "missed heartbeats before a worker is dead (default 3)")
      .Option("max-attempts", "N", "tries of a task before it fails for good (default 3)")
      .Option("retry-backoff-ms", "MS", "first retry delay; doubles per attempt (default 1000)")
      .Option("restart-grace-ms", "MS",
              "after a restart, how long leases wait for their worker to come back (default "
              "10000)")
      .Option("lease-timeout-ms", "MS", "hard limit on one lease, 0 = none (default 0)")
      .Option("resume-check", "MODE",
              "at start, check finished tasks' artifacts: none, size or checksum; a missing or "
              "corrupt artifact re-runs its task and what depends on it",
              "checksum")
      .Option("http", "HOST:PORT",
              "status endpoint (/api/status, /metrics); 'off' disables it (default "
              "127.0.0.1:8470)")
      .Option("redis", "URL", "mirror the live view to Redis (redis://[:password@]host:port/db)")
      .Option("curve-key", "FILE", "the coordinator's CurveZMQ key file (clisc keygen)")
      .Option("curve-allow", "PATH", "allow-list of worker public keys: a file or a dir of .pub")
      .Option("summary", "FILE", "write a JSON summary (counts, throughput, latency) at exit")
      .Flag("replace-plan",
            "open tasks the --plan no longer names are superseded (cancelled): a changed config "
            "gave them new keys")
      .Flag("retry-failed", "failed and blocked tasks of the --plan get a fresh retry budget")
      .Flag("exit-when-done", "stop when the run has ended and tell the workers to leave")
      .Flag("sync-full", "fsync the ledger on every commit (survives power loss; slower)")
      .Epilog(
          "Exit status: 0 when the run succeeded (or is still running at a signal), 1 when it "
          "failed or was cancelled or the coordinator could not start, 2 for usage errors.\n"
          "SIGTERM/SIGINT stop serving cleanly; the ledger keeps everything needed to resume.");
  if (int code = ParseCommandLine(args, argv); code >= 0) return code;

  CoordinatorOptions options;
  ServiceOptions services;
  options.ledger_path = args.Get("ledger");
  options.run_name = args.Get("run");
  options.bind = args.Get("bind");
  if (args.Has("plan")) options.plan_path = args.Get("plan");
  if (args.Has("artifact-root")) options.artifact_root = args.Get("artifact-root");
  if (args.Has("summary")) options.summary_path = args.Get("summary");
  if (args.Has("curve-key")) options.curve_key = args.Get("curve-key");
  if (args.Has("curve-allow")) options.curve_allow = args.Get("curve-allow");
  options.exit_when_done = args.GetFlag("exit-when-done");
  options.replace_plan = args.GetFlag("replace-plan");
  options.retry_failed = args.GetFlag("retry-failed");
  options.ledger.sync_full = args.GetFlag("sync-full");
  services.http_bind = "127.0.0.1:8470";
  StatusOr<ResumeArtifactCheck> check = ParseResumeCheck(args.Get("resume-check"));
  Status settings = check.ok() ? ApplyRuntimeSettings(args, options, services) : check.status();
  if (!settings.ok()) {
    std::cerr << "error: " << settings.message() << "\n";
    return kExitUsage;
  }
  options.resume_check = *check;

  InstallStopHandlers();
  static RealClock clock;
  StatusOr<std::unique_ptr<Coordinator>> coordinator = Coordinator::Create(options, &clock);
  if (!coordinator.ok()) {
    std::cerr << "error: coordinator did not start: " << coordinator.status().ToString() << "\n";
    return kExitFailure;
  }
  StatusOr<std::unique_ptr<CoordinatorServices>> attached =
      CoordinatorServices::Attach(**coordinator, services);
  if (!attached.ok()) {
    std::cerr << "error: " << attached.status().ToString() << "\n";
    return kExitFailure;
  }
  Status served = (*coordinator)->Serve(g_stop);
  (*attached)->Stop();
  if (!served.ok()) {
    std::cerr << "error: " << served.ToString() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

CLISC_REGISTER_COMMAND("coordinator", "serve a run to the workers over ZeroMQ", RunCoordinator);

}  // namespace clisc::cli
