// `clisc run`: the whole method over a dataset in one command. Local mode starts a coordinator and
// N worker processes on this machine; cluster mode (--coordinator-only) runs the coordinator and
// waits for workers started elsewhere (deploy/slurm, deploy/k8s). The workdir holds everything;
// running the command again on it resumes, and a changed config reruns exactly what it changes.
#include <atomic>
#include <iostream>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/run_command.h"

namespace clisc::cli {
namespace {

int RunRun(const std::vector<std::string>& raw_args) {
  ArgParser parser("run",
                   "run --config FILE --data DIR --workdir W [--workers N] [--resume] "
                   "[--set KEY=VALUE]... [--coordinator-only] [options]",
                   "Run the whole method (stages 0-13) over a dataset: plan, coordinator, workers, "
                   "report. Running it again on the same workdir resumes.");
  parser.Option("config", "FILE", "the run config (YAML)", std::nullopt, true)
      .Option("data", "DIR", "dataset folder (default: the workdir's dataset, then data.root)")
      .Option("workdir", "DIR", "ledger, plan, logs, artifacts and report of the run", std::nullopt,
              true)
      .Option("workers", "N", "local worker processes (all roles)", "1")
      .Option("set", "KEY=VALUE", "override a config key (repeatable, applied in order)")
      .Option("device", "DEV",
              "device of the local workers: cpu, cuda:N, a list cuda:0,cuda:1 dealt out to the "
              "workers, or cuda (worker i gets cuda:i); default: the config's device")
      .Option("bind", "ENDPOINT",
              "the coordinator's ZeroMQ endpoint (default: a free loopback port; "
              "tcp://0.0.0.0:5555 with --coordinator-only)")
      .Option("http", "HOST:PORT",
              "status endpoint (/api/status, /metrics, /healthz; default: a free loopback port; "
              "0.0.0.0:8470 with --coordinator-only); off disables it and the progress lines")
      .Option("redis", "URL", "mirror the live view to Redis (default: runtime.redis_url)")
      .Option("curve-key", "FILE",
              "cluster mode: the coordinator's CurveZMQ key file (clisc keygen); needs "
              "--curve-allow")
      .Option("curve-allow", "PATH", "cluster mode: allow-list of worker public keys")
      .Flag("resume", "require an existing run in the workdir (a second run resumes anyway)")
      .Flag("coordinator-only", "cluster mode: start no workers; wait for remote ones")
      .Flag("retry-failed", "give failed tasks and the cases they excluded a fresh retry budget")
      .Flag("no-report", "do not write the report at the end")
      .Epilog(
          "The workdir is the run's artifact root. Running the command again on it resumes: "
          "finished tasks\nare not redone. A task's identity is its stage config and its inputs, "
          "so a changed config or\ninput file reruns exactly the tasks it reaches.\n"
          "\nexit codes: 0 the run succeeded, 1 it failed or was interrupted, 2 bad arguments, "
          "config or data\n"
          "\nexamples:\n"
          "  clisc run --config configs/demo.yaml --data /tmp/synth --workdir /tmp/run --workers "
          "2\n"
          "  clisc run --config configs/brats2020.yaml --data /data/BraTS2020 --workdir "
          "/shared/run \\\n      --coordinator-only --bind tcp://0.0.0.0:5555\n");
  std::vector<std::string> args = raw_args;
  RunRequest request;
  if (Status s = TakeRepeatedOption(args, "set", request.overrides); !s.ok()) {
    std::cerr << "error: clisc run: " << s.message() << "\n";
    return kExitUsage;
  }
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;
  StatusOr<long long> workers = parser.GetInt("workers");
  if (!workers.ok()) {
    std::cerr << "error: " << workers.status().message() << "\n";
    return kExitUsage;
  }
  request.coordinator_only = parser.GetFlag("coordinator-only");
  if (request.coordinator_only && parser.Has("workers") && *workers != 1) {
    std::cerr << "error: clisc run: --coordinator-only starts no workers; drop --workers\n";
    return kExitUsage;
  }
  if (*workers < 1 || *workers > 64) {
    std::cerr << "error: clisc run: --workers must be 1 to 64\n";
    return kExitUsage;
  }
  request.curve_key = parser.Get("curve-key");
  request.curve_allow = parser.Get("curve-allow");
  if (request.curve_key.empty() != request.curve_allow.empty()) {
    std::cerr << "error: clisc run: --curve-key and --curve-allow go together\n";
    return kExitUsage;
  }
  if (!request.curve_key.empty() && !request.coordinator_only) {
    std::cerr << "error: clisc run: CurveZMQ keys are for cluster mode (--coordinator-only); "
                 "local workers talk over the loopback\n";
    return kExitUsage;
  }
  request.workers = request.coordinator_only ? 0 : static_cast<int>(*workers);
  request.config_path = parser.Get("config");
  request.data = parser.Get("data");
  request.workdir = parser.Get("workdir");
  request.must_resume = parser.GetFlag("resume");
  request.bind = parser.Get("bind");
  request.http = parser.Get("http");
  request.redis = parser.Get("redis");
  request.device = parser.Get("device");
  request.retry_failed = parser.GetFlag("retry-failed");
  request.write_report = !parser.GetFlag("no-report");
  return ExecuteRun(request, InstallRunStopHandlers());
}

}  // namespace
CLISC_REGISTER_COMMAND("run", "run the whole method over a dataset (local or cluster mode)",
                       RunRun);
}  // namespace clisc::cli
