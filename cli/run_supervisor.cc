#include "cli/run_supervisor.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "cli/child_process.h"
#include "cli/run_progress.h"
#include "coordinator/http_get.h"

namespace clisc::cli {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

struct LocalWorker {
  std::string id;
  std::string device;
  std::filesystem::path log;
  ChildProcess process;
  int restarts = 0;
};

std::vector<std::string> CoordinatorArgs(const RunWorkdir& workdir,
                                         const SupervisorOptions& options) {
  std::vector<std::string> args = {options.binary.string(),
                                   "coordinator",
                                   "--ledger",
                                   workdir.ledger().string(),
                                   "--run",
                                   kRunName,
                                   "--plan",
                                   workdir.plan().string(),
                                   "--config",
                                   workdir.config().string(),
                                   "--artifact-root",
                                   workdir.root().string(),
                                   "--bind",
                                   options.bind,
                                   "--http",
                                   options.http,
                                   "--exit-when-done",
                                   "--replace-plan"};
  if (options.retry_failed) args.push_back("--retry-failed");
  if (!options.redis_url.empty()) {
    args.push_back("--redis");
    args.push_back(options.redis_url);
  }
  if (!options.curve_key.empty()) {
    args.insert(args.end(), {"--curve-key", options.curve_key, "--curve-allow",
                             options.curve_allow});
  }
  return args;
}

std::vector<std::string> WorkerArgs(const RunWorkdir& workdir, const SupervisorOptions& options,
                                    const LocalWorker& worker) {
  std::vector<std::string> args = {options.binary.string(),
                                   "worker",
                                   "--connect",
                                   options.connect,
                                   "--roles",
                                   options.roles,
                                   "--artifact-root",
                                   workdir.root().string(),
                                   "--id",
                                   worker.id};
  if (!worker.device.empty()) {
    args.push_back("--device");
    args.push_back(worker.device);
  }
  return args;
}

}  // namespace

StatusOr<int> PickFreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return UnavailableError("cannot open a socket to find a free port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return UnavailableError("cannot find a free loopback port");
  }
  const int port = ntohs(address.sin_port);
  close(fd);
  return port;
}

StatusOr<SupervisedOutcome> SuperviseRun(const RunWorkdir& workdir,
                                         const SupervisorOptions& options,
                                         const std::atomic<bool>& stop, std::ostream& out) {
  const auto start = Clock::now();
  RunProgressPrinter progress(out, start, workdir.resuming());
  SupervisedOutcome outcome;
  std::map<std::string, std::string> worker_env;
  if (options.threads_per_worker > 0) {
    worker_env["OMP_NUM_THREADS"] = std::to_string(options.threads_per_worker);
  }

  ChildProcess coordinator;
  const std::filesystem::path coordinator_log = workdir.logs() / "coordinator.log";
  RETURN_IF_ERROR(coordinator.Start(CoordinatorArgs(workdir, options), coordinator_log));
  int coordinator_restarts = 0;

  std::vector<std::unique_ptr<LocalWorker>> workers;
  for (size_t i = 0; i < options.worker_devices.size(); ++i) {
    auto worker = std::make_unique<LocalWorker>();
    worker->id = "local-" + std::to_string(i + 1);
    worker->device = options.worker_devices[i];
    worker->log = workdir.logs() / ("worker-" + std::to_string(i + 1) + ".log");
    RETURN_IF_ERROR(
        worker->process.Start(WorkerArgs(workdir, options, *worker), worker->log, worker_env));
    workers.push_back(std::move(worker));
  }
  auto stop_workers = [&](milliseconds grace) {
    for (auto& w : workers) w->process.Signal(SIGTERM);
    for (auto& w : workers) w->process.Stop(grace);
  };

  auto last_poll = Clock::now() - seconds(10);
  bool first_status = true;
  while (true) {
    if (stop.load()) {
      out << progress.Elapsed() << " stopping (signal): the coordinator and workers shut down; "
          << "run the same command again to resume\n";
      coordinator.Signal(SIGTERM);
      stop_workers(seconds(30));
      coordinator.Stop(seconds(30));
      outcome.interrupted = true;
      outcome.description = "interrupted";
      return outcome;
    }

    if (!coordinator.Running()) {
      const int status = coordinator.ExitStatus().value_or(-1);
      if (ExitedCleanly(status)) {
        outcome.succeeded = true;
        outcome.description = "the run succeeded";
        break;
      }
      if (WIFSIGNALED(status) && coordinator_restarts < options.max_coordinator_restarts) {
        ++coordinator_restarts;
        out << progress.Elapsed() << " the coordinator ended (" << DescribeWaitStatus(status)
            << "); restarting it on the same ledger (" << coordinator_restarts << "/"
            << options.max_coordinator_restarts << ")\n";
        RETURN_IF_ERROR(coordinator.Start(CoordinatorArgs(workdir, options), coordinator_log));
        continue;
      }
      outcome.description = "the coordinator ended (" + DescribeWaitStatus(status) +
                            "): the run failed or could not go on; see " + coordinator_log.string();
      break;
    }

    for (auto& w : workers) {
      if (!w->process.started() || w->process.Running()) continue;
      const int status = w->process.ExitStatus().value_or(-1);
      // A clean exit is a worker the coordinator told to leave: the run is ending.
      if (ExitedCleanly(status)) continue;
      if (w->restarts >= options.max_worker_restarts) {
        coordinator.Signal(SIGTERM);
        stop_workers(seconds(30));
        coordinator.Stop(seconds(30));
        outcome.description = "worker " + w->id + " keeps ending (" + DescribeWaitStatus(status) +
                              "); see " + w->log.string();
        outcome.last_status = nlohmann::json();
        return outcome;
      }
      ++w->restarts;
      out << progress.Elapsed() << " worker " << w->id << " ended (" << DescribeWaitStatus(status)
          << "); restarting it (" << w->restarts << "/" << options.max_worker_restarts << ")\n";
      RETURN_IF_ERROR(w->process.Start(WorkerArgs(workdir, options, *w), w->log, worker_env));
    }

    if (Clock::now() - last_poll >= seconds(2)) {
      last_poll = Clock::now();
      StatusOr<std::string> body = HttpGet(options.http, "/api/status", milliseconds(1500));
      if (body.ok()) {
        nlohmann::json doc = nlohmann::json::parse(*body, nullptr, false);
        if (!doc.is_discarded()) {
          if (first_status && workdir.resuming()) {
            const nlohmann::json totals = doc.value("totals", nlohmann::json::object());
            out << progress.Elapsed() << " resuming: " << totals.value("succeeded", 0) << " of "
                << totals.value("total", 0) << " tasks of this plan were already done\n";
          }
          first_status = false;
          progress.Update(doc);
          outcome.last_status = std::move(doc);
        }
      }
    }
    std::this_thread::sleep_for(milliseconds(200));
  }

  // The coordinator has told the connected workers to leave; a worker that never got to connect
  // (the run was already finished) is stopped after a moment.
  const auto leave_deadline = Clock::now() + seconds(5);
  for (auto& w : workers) {
    w->process.WaitFor(std::chrono::duration_cast<milliseconds>(
        std::max(Clock::duration::zero(), leave_deadline - Clock::now())));
  }
  stop_workers(seconds(20));
  return outcome;
}

}  // namespace clisc::cli
